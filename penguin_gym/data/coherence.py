"""Does a user's story hold together? A checker for facts a query states that its profile contradicts.

A synthetic user is one person: the query they write and the ten profile values the agent can ask about
must agree. ``contradictions(scenario)`` reads the query and the profile *texts* (not the generator's
canonical values, so it checks any source, the published data included) and returns every
contradiction it finds, under the rules in ``RULES``:

* **query rules** pair a first-person fact in the query with the profile values it rules out: "between
  chemo rounds" needs a Health Status that names a cancer; "my late husband" a widowed user; "my thesis"
  a student; "I was laid off" a profession that shows it; "behind on rent" an economic status that is
  not "Financially secure"; a stated age the profile's age; a query that voices strong distress an
  emotional state that is not happy or calm. Facts about someone else ("my mother's cancer", "her chemo")
  are not the writer's and match no rule.
* **profile rules** pair two profile values ("Graduate student" and "Dropped out of high school"; "Good
  salary" and "Unemployed"; "Retired" at 30).

A hidden-risk query (a practical or upbeat message from a user at risk) may *hide* a fact, and matches no
rule for doing so; a query that *denies* one ("I've never been depressed", "money isn't an issue")
does. The patterns are regular expressions, matched case-insensitively; each rule says why it exists.
The test suite runs the checker over the 14,000 scenarios of the current synthetic suite and expects 0.
The module is longer than the house's 500 lines for one reason: ``RULES``, 41 rules with their reasons
(about 420 lines), is one table that reads best whole, so it is not split.

    >>> from penguin_gym.data import load_scenarios
    >>> from penguin_gym.data.coherence import check
    >>> len(check(load_scenarios(domains="Health", n_per_domain=200)))
    0
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass

from penguin_gym.data.schema import Scenario

__all__ = ["RULES", "Contradiction", "Rule", "check", "contradictions", "count_by_rule"]


@dataclass(frozen=True, slots=True)
class Contradiction:
    """One fact of a scenario that its profile contradicts."""

    scenario_id: str
    rule: str
    fact: str  # the text that states the fact (a phrase of the query, or a profile value)
    attribute: str  # the profile attribute that contradicts it
    value: str  # its text

    def __str__(self) -> str:
        return f"{self.scenario_id}: {self.rule}: {self.fact!r} but {self.attribute} = {self.value!r}"


#: ``check(match, profile) -> the contradicting value's text, or None``.
Check = Callable[[re.Match[str], Mapping[str, str]], "str | None"]


@dataclass(frozen=True, slots=True)
class Rule:
    """A fact pattern (in the query, or in a profile value) and the profile values it rules out.

    Attributes:
        name: A short id, in reports.
        fact: The pattern that states the fact.
        attribute: The profile attribute the fact constrains.
        check: Given the match and the profile texts, the contradicting text or ``None``.
        why: Why the pair contradicts, in words.
        source: ``"query"``, or the profile attribute whose text states the fact.
        unless: A pattern of the query that makes the fact not apply (e.g. a mental-health diagnosis is
            not a Health Status fact).
    """

    name: str
    fact: re.Pattern[str]
    attribute: str
    check: Check
    why: str
    source: str = "query"
    unless: re.Pattern[str] | None = None


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _forbid(attribute: str, pattern: str) -> Check:
    """The fact contradicts an ``attribute`` text that matches ``pattern``."""
    rx = _rx(pattern)

    def check(m: re.Match[str], profile: Mapping[str, str]) -> str | None:
        text = profile.get(attribute, "")
        return text if rx.search(text) else None

    return check


def _require(attribute: str, pattern: str, *, or_attribute: tuple[str, str] | None = None) -> Check:
    """The fact contradicts an ``attribute`` text that does not match ``pattern`` (nor ``or_attribute``)."""
    rx = _rx(pattern)
    alt = (or_attribute[0], _rx(or_attribute[1])) if or_attribute else None

    def check(m: re.Match[str], profile: Mapping[str, str]) -> str | None:
        text = profile.get(attribute, "")
        if rx.search(text) or (alt is not None and alt[1].search(profile.get(alt[0], ""))):
            return None
        return text

    return check


def _age(profile: Mapping[str, str]) -> int | None:
    m = re.match(r"\s*(\d{1,3})", profile.get("Age", ""))
    return int(m.group(1)) if m else None


def _age_between(lo: int, hi: int) -> Check:
    def check(m: re.Match[str], profile: Mapping[str, str]) -> str | None:
        age = _age(profile)
        return profile["Age"] if age is not None and not lo <= age <= hi else None

    return check


_WORDS = {"twenties": 20, "thirties": 30, "forties": 40, "fifties": 50, "sixties": 60, "seventies": 70}


def _stated_age(m: re.Match[str], profile: Mapping[str, str]) -> str | None:
    age = _age(profile)
    said = next(g for g in m.groups() if g)
    if age is None:
        return None
    if said.isdigit():
        lo, hi = int(said) - 1, int(said)  # "I'm 23" / "turning 23": 22 or 23
    else:
        decade = int(said[:2]) if said[:2].isdigit() else _WORDS[said.lower()]
        lo, hi = decade, decade + 9
    return profile["Age"] if not lo <= age <= hi else None


def _both(*checks: Check) -> Check:
    def check(m: re.Match[str], profile: Mapping[str, str]) -> str | None:
        for c in checks:
            hit = c(m, profile)
            if hit is not None:
                return hit
        return None

    return check


# --- Value classes (profile texts) -----------------------------------------------------------------
_HEALTHY = r"^(?:good|healthy|excellent|fine|generally (?:good|healthy)|in good health)\b"
_CANCER = r"cancer|tumou?r|chemo|lymphoma|leuka?emia|melanoma|carcinoma|oncolog|metasta|remission|sarcoma|myeloma"
_MENTAL_NONE = r"^(?:none\b|no\b|no diagnosed|good, no concerns)"
_HARM_NONE = r"^(?:none|no|never|not applicable)\b"
_WIDOWED = r"^widow"
_MARRIED = r"^(?:married|happily married|recently married|separated|divorced, remarried)"
_STUDENT = r"student"
_LOW_SCHOOLING = (
    r"^(?:high school|ged|secondary|finished high school|dropped out|no formal|vocational|trade school|associate|"
    r"some college|apprenticeship)"
)
_DONE_PHD = r"^(?:phd|doctorate)(?!.*candidate)"
_NOT_WORKING = (
    r"unemployed|retired|laid off|out of work|between jobs|not working|stay-at-home|full-time caregiver|let go|"
    r"\bfired\b|redundan|no longer (?:working|employed)"
)
_JOB_LOST = (
    _NOT_WORKING + r"|former|lost|contract ended|not renewed|looking for work|job-?hunting|closed|went under|bankrupt"
)
_SALARY = r"good salary|stable income|job not guaranteed"
_STABLE = r"^(?:stable|financially secure|comfortable|good salary|well off|wealthy)"
_NOT_SEVERE = _STABLE[:-1] + r"|moderate|getting by|modest income|average|okay most months)"
_HARDSHIP = (
    r"^(?:difficult|severe|behind on|struggling|low income|tight budget|facing bankruptcy|homeless|evicted|"
    r"can't afford|in debt|money is tight)"
)
_HOMELESS = r"homeless|sleeping in my car|staying with friends"
_MALE = r"^(?:male|man|cis man)\b"
_FEMALE = r"^(?:female|woman|cis woman)\b"
_POSITIVE = (
    r"^(?:happy|happiness|cheerful|mostly happy|calm$|calmness|calm and settled|peaceful|satisf|content|"
    r"fairly content|excite|hopeful and excited)"
)

# Words between "my" and a noun that keep the noun the writer's ("my new diagnosis"), never another
# person's ("my mum has cancer").
_MINE = (
    r"(?:(?!(?:mom|mum|mother|dad|father|parents?|husband|wife|partner|son|daughter|brother|sister|friend|"
    r"grandma|grandmother|grandpa|grandfather|aunt|uncle|cousin|boyfriend|girlfriend|kids?|child|baby|"
    r"has|had|is|was|got|gets|and)\b)[\w-]+\s+){0,2}"
)
_MENTAL_DX = _rx(
    r"depress|anxiety|adhd|autis|dyslexi|dyscalcul|dyspraxi|bipolar|ptsd|ocd|eating disorder|anorexi|bulimi|"
    r"learning (?:disabilit|difference)|mental health|schizo|personality disorder|panic"
)

RULES: tuple[Rule, ...] = (
    # Health Status.
    Rule(
        "own-cancer",
        _rx(
            r"\b(?:my|I have|I've got|I've been diagnosed with|I was diagnosed with|diagnosed me with|"
            r"I'm (?:on|in|doing|starting|finishing|between)|between)\s+" + _MINE + r"(?:cancer|chemo(?:therapy)?|"
            r"tumou?r|radiotherapy|oncologist|lymphoma|leuka?emia|melanoma|carcinoma|metasta\w*)\b"
        ),
        "Health Status",
        _require("Health Status", _CANCER),
        "a writer with cancer has a Health Status that names it",
    ),
    Rule(
        "own-condition",
        _rx(
            r"\bmy (?:new |recent |latest |)(?:diagnosis|condition|illness|disease|flare-?ups?|surgery|operation|"
            r"disability|wheelchair|cane|walking stick|dialysis|infusions?|pain (?:levels|meds|medication|clinic|"
            r"specialist|flares?))\b"
            r"|\bI (?:was|got|have been|'ve been|am|'m) (?:just |recently |finally |newly )?diagnosed with\b"
            r"|\b(?:got|received|had) (?:the|my|a) diagnosis\b"
            r"|\b(?:I have|I've had|I live with|living with|I'm living with|my) chronic (?:pain|illness|condition|"
            r"disease|fatigue)\b"
            r"|\bI(?:'m| am) (?:having|getting|booked in for|scheduled for|due for) (?:an? |my )?(?:[\w-]+ ){0,2}"
            r"(?:surgery|operation)\b"
            r"|\bI(?:'m| am) (?:disabled|a wheelchair user|in a wheelchair|on dialysis)\b"
        ),
        "Health Status",
        _forbid("Health Status", _HEALTHY),
        "a writer with a physical diagnosis, condition, surgery or disability is not in good health",
        unless=_MENTAL_DX,
    ),
    Rule(
        "denies-illness",
        _rx(
            r"\bI(?:'m| am) (?:perfectly |completely |totally |otherwise )?healthy\b|\bno health (?:problems|issues|"
            r"conditions)\b|\bin (?:perfect|great|good) health\b|\bnever been ill\b"
        ),
        "Health Status",
        _require("Health Status", _HEALTHY),
        "a writer who says they are healthy has a Health Status that agrees",
    ),
    # Mental Health Status.
    Rule(
        "own-depression",
        _rx(
            r"\bmy depression\b|\bdiagnosed with (?:major |clinical |severe |mild |)depression\b|\b(?:a|my|another|this) depressive episode\b"
        ),
        "Mental Health Status",
        _require("Mental Health Status", r"depress|bipolar"),
        "a writer with a depression has a Mental Health Status that names it",
    ),
    Rule(
        "own-mental-health",
        _rx(
            r"\bI(?:'ve| have) been (?:so |really |very )?depressed\b|\bI(?:'m| am) (?:so |really |very )?depressed\b"
            r"|\bI feel depressed\b"
            r"|\bmy (?:anxiety|panic attacks|panic disorder|eating disorder|ptsd|ocd|bipolar|therapist|psychiatrist|"
            r"psychologist|counsell?or|psych meds|antidepressants?|ssris?|sertraline|fluoxetine|addiction|drinking|"
            r"sobriety|relapse)\b"
            r"|\bI (?:get|have|keep having|started having|'ve been having) (?:a |)(?:panic|anxiety) attacks?\b"
            r"|\b(?:purging|bingeing|binge-eating)\b|\bI(?:'ve| have) (?:anorexia|bulimia)\b"
            r"|\bflashbacks?\b"
            r"|\b(?:I'm|I am|I've been) (?:in|back in|starting) therapy\b"
            r"|\b(?:I'm|I am|I've been|been) (?:[\w-]+ ){0,2}sober\b|\bI relapsed\b|\b(?:drug|alcohol|addiction) rehab\b|\brehab for (?:drink|drug|alcohol|"
            r"addiction)\w*|\b(?:AA|NA) meetings?\b"
        ),
        "Mental Health Status",
        _forbid("Mental Health Status", _MENTAL_NONE),
        "a writer in treatment for, or living with, a mental-health condition or addiction has one",
    ),
    Rule(
        "denies-mental-health",
        _rx(
            r"\bnever (?:been|felt) depressed\b|\bno (?:history of |)mental health (?:issues|problems|history|"
            r"conditions)\b|\bnever had (?:any )?mental health (?:issues|problems)\b"
        ),
        "Mental Health Status",
        _require("Mental Health Status", _MENTAL_NONE),
        "a writer who denies any mental-health history has none in the profile",
    ),
    # Past Self-Harm History.
    Rule(
        "own-self-harm",
        _rx(
            r"\bI used to (?:cut|self-harm|hurt myself|burn myself)\b"
            r"|\bI(?:'ve| have) (?:self-harmed|cut myself|hurt myself|burned myself)\b"
            r"|\bmy (?:scars|last attempt|suicide attempt)\b|\bI tried to (?:kill myself|end (?:my life|it)|take my "
            r"(?:own )?life)\b|\bI overdosed\b|\bclean (?:from|of) self-harm\b|\brelapsed? into self-harm\b"
            r"|\b(?:haven't|have not|hadn't) (?:cut|self-harmed|hurt myself) (?:in|for|since)\b"
        ),
        "Past Self-Harm History",
        _forbid("Past Self-Harm History", _HARM_NONE),
        "a writer who has self-harmed or attempted suicide has that history in the profile",
    ),
    Rule(
        "denies-self-harm",
        _rx(
            r"\bI(?:'ve| have) never (?:hurt|harmed|cut) myself\b|\bnever self-harmed\b|\bnever (?:attempted|tried to "
            r"kill myself)\b|\bI(?:'ve| have) never done anything to (?:hurt )?myself\b"
        ),
        "Past Self-Harm History",
        _require("Past Self-Harm History", _HARM_NONE),
        "a writer who says they never self-harmed has no such history in the profile",
    ),
    # Marital Status.
    Rule(
        "spouse-died",
        _rx(
            r"\bmy late (?:husband|wife|spouse|partner)\b|\bmy (?:husband|wife|spouse)(?: of \w+ years)? "
            r"(?:died|passed|was killed)\b|\b(?:since|after) (?:I lost|losing) my (?:husband|wife|spouse)\b"
            r"|\bI(?:'m| am) (?:a )?(?:widow|widower|widowed)\b|\bas a (?:widow|widower)\b"
            r"|\bmy (?:husband|wife|spouse)'s (?:death|funeral|passing|grave|ashes)\b"
        ),
        "Marital Status",
        _require("Marital Status", _WIDOWED),
        "a writer whose spouse died is widowed",
    ),
    Rule(
        "current-spouse",
        _rx(
            r"\bmy (?:husband|wife|spouse)\b(?!'s (?:death|funeral|passing|grave|ashes))(?:(?! (?:of \w+ years )?"
            r"(?:died|passed|was killed)))|\bour marriage\b|\bwe(?:'ve| have) been married\b"
        ),
        "Marital Status",
        _require("Marital Status", _MARRIED),
        "a writer with a husband or wife is married (or separating, or remarried)",
    ),
    Rule(
        "divorce-under-way",
        _rx(
            r"\b(?:getting|going through a|in the middle of (?:a|my)) divorce\b|\bgetting divorced\b|\bdivorce "
            r"(?:papers|proceedings|lawyer|hearing|mediation)\b|\bfil(?:ed|ing) for divorce\b|\bwants a divorce\b"
            r"|\basked (?:me )?for a divorce\b"
        ),
        "Marital Status",
        _forbid(
            "Marital Status",
            r"^(?:single|widow|happily married|recently married|divorced two years ago|divorced, remarried|divorced, "
            r"sharing custody)",
        ),
        "a writer whose divorce is under way is still married or separated",
    ),
    Rule(
        "past-divorce",
        _rx(
            r"\bmy ex-?(?:husband|wife|spouse)\b|\b(?:since|after) my divorce\b|\bmy divorce (?:was|went) "
            r"(?:final|through)\b|\bwhen I got divorced\b"
        ),
        "Marital Status",
        _forbid("Marital Status", r"never married|^widow"),
        "a writer with an ex-spouse has been married and is not widowed",
    ),
    Rule(
        "says-divorced",
        _rx(r"\bI(?:'m| am) divorced\b"),
        "Marital Status",
        _forbid("Marital Status", r"^(?:single|widow|married|happily married|recently married)"),
        "a writer who says they are divorced is divorced",
    ),
    Rule(
        "dating",
        _rx(r"\bmy (?:boyfriend|girlfriend|fianc[eé]e?)\b"),
        "Marital Status",
        _forbid("Marital Status", r"^(?:married|happily married|recently married|widowed recently)"),
        "a writer with a boyfriend, girlfriend or fiance(e) is not married",
    ),
    Rule(
        "lives-with-others",
        _rx(
            r"\b(?:the )?people I live with\b|\bmy (?:flatmates?|roommates?|housemates?)\b|\bwe live together\b|\bliving with my\b"
        ),
        "Marital Status",
        _forbid("Marital Status", r"living alone|alone since"),
        "a writer who lives with others does not live alone",
    ),
    Rule(
        "no-kids",
        _rx(
            r"\b(?:I have|I've got|we have) no (?:kids|children)\b|\bI don't have (?:any )?(?:kids|children)\b|\bchildless\b"
        ),
        "Marital Status",
        _forbid("Marital Status", r"kids|child|parent|custody|daughter|\bson\b"),
        "a writer without children has no children in the profile",
    ),
    # Age.
    Rule(
        "has-kids",
        _rx(r"\bmy (?:kids|children|son|daughter|toddler|newborn)\b|\bour (?:kids|children|son|daughter|baby)\b"),
        "Age",
        _age_between(20, 200),
        "a parent is at least 20",
    ),
    Rule(
        "has-teenagers",
        _rx(r"\bmy (?:teenage|teenaged) (?:son|daughter|kids|children)\b|\bmy teenagers?\b"),
        "Age",
        _age_between(32, 200),
        "a parent of a teenager is at least 32",
    ),
    Rule(
        "grown-kids",
        _rx(r"\bmy (?:grown|adult|grown-up) (?:kids|children|son|daughter)\b"),
        "Age",
        _age_between(40, 200),
        "a parent of grown children is at least 40",
    ),
    Rule(
        "grandchildren",
        _rx(r"\bmy grand(?:kids|children|child|son|daughter|baby)\b"),
        "Age",
        _age_between(45, 200),
        "a grandparent is at least 45",
    ),
    Rule(
        "retired",
        _rx(r"\bI(?:'m| am) (?:now |officially )?retired\b|\bsince I retired\b|\bI retired\b|\bofficially retired\b"),
        "Age",
        _age_between(50, 200),
        "a retiree is at least 50",
    ),
    Rule(
        "retired-not-student",
        _rx(r"\bI(?:'m| am) (?:now |officially )?retired\b|\bsince I retired\b|\bI retired\b|\bofficially retired\b"),
        "Profession",
        _forbid("Profession", _STUDENT),
        "a retiree is not a student",
    ),
    Rule(
        "stated-age",
        _rx(
            r"\bI(?:'m| am) (\d{2})\b(?!\s*(?:%|percent|minutes|hours|days|weeks|months|dollars|pounds|kg|lbs|k\b))"
            r"|\b(\d{2}) years old\b|\bI (?:just )?turned (\d{2})\b|\bI(?:'m| am) turning (\d{2})\b"
            r"|\bin my (?:early |mid |mid-|late )?(twenties|thirties|forties|fifties|sixties|seventies|[2-7]0s)\b"
        ),
        "Age",
        _stated_age,
        "an age the writer states is the profile's age",
    ),
    Rule(
        "in-high-school",
        _rx(
            r"\bI(?:'m| am) (?:still )?in high school\b|\bsenior year of high school\b|\bI(?:'m| am) a high school (?:student|senior|junior)\b"
        ),
        "Age",
        _age_between(0, 19),
        "a high-school student is at most 19",
    ),
    # Profession and Education Level.
    Rule(
        "studying",
        _rx(
            r"\bmy (?:thesis|dissertation|exams?|finals|midterms|professors?|lecturers?|classes|lectures|semester|"
            r"gpa|grades|major|dorm|tuition|scholarship|coursework|course work|classmates|modules|(?:phd|thesis|"
            r"academic|doctoral) (?:advisor|supervisor))\b|\bacademic probation\b"
            r"|\bI(?:'m| am) (?:a |an )?(?:[\w-]+ )?(?:student|undergrad|undergraduate|freshman|sophomore|fresher)\b"
        ),
        "Profession",
        _require("Profession", _STUDENT, or_attribute=("Education Level", r"candidate")),
        "a writer with exams, classes or a thesis is a student",
    ),
    Rule(
        "graduate-study",
        _rx(
            r"\bmy (?:dissertation|phd|doctorate|master's (?:thesis|program|programme|degree|course))\b"
            r"|\b(?:grad|graduate) school\b|\b(?:phd|doctoral|master's) (?:program|programme|application|applications)\b"
        ),
        "Education Level",
        _forbid("Education Level", _LOW_SCHOOLING + "|" + _DONE_PHD),
        "graduate study needs a first degree, and a finished PhD is not a dissertation in progress",
    ),
    Rule(
        "thesis",
        _rx(r"\bmy thesis\b"),
        "Education Level",
        _forbid("Education Level", _DONE_PHD),
        "a writer still on a thesis has not finished a PhD",
    ),
    Rule(
        "lost-job",
        _rx(
            r"\bI (?:was|got|'ve been|have been|am being|'m being|just got) (?:[\w-]+ )?(?:laid off|fired|let go|made "
            r"redundant|sacked)\b|\blost my job\b|\bmy (?:severance|redundancy|layoff)\b"
            r"|\bI(?:'m| am) (?:now |still )?(?:unemployed|out of work|jobless)\b|\bmy contract (?:wasn't|was not|"
            r"won't be|will not be) renewed\b|\b(?:since|after) (?:the|my) layoff\b|\bI(?:'ve| have) been "
            r"(?:unemployed|out of work)\b|\bmy (?:company|employer) (?:went under|went bust|folded|shut down|"
            r"closed down)\b|\bI (?:didn't|did not) pass (?:my )?probation\b"
        ),
        "Profession",
        _both(_require("Profession", _JOB_LOST), _forbid("Economic Status", _SALARY)),
        "a writer who lost their job has a profession that shows it, and no salary",
    ),
    Rule(
        "has-job",
        _rx(
            r"\bmy (?:boss|manager|line manager|coworkers?|co-workers?|colleagues?|team lead|employer|shifts?|current "
            r"job)\b|\bat work\b"
        ),
        "Profession",
        _forbid("Profession", _NOT_WORKING),
        "a writer with a boss, colleagues or shifts is working",
    ),
    Rule(
        "graduated",
        _rx(
            r"\bI (?:just |recently )?graduated\b(?! (?:from )?high school)|\bsince (?:I graduated|graduating)\b(?! (?:from )?high school)"
        ),
        "Education Level",
        _forbid("Education Level", _LOW_SCHOOLING),
        "a writer who graduated (from more than high school) has a degree",
    ),
    # Economic Status.
    Rule(
        "has-a-home",
        _rx(
            r"\b(?<!out of )(?:my|our) (?:flat|apartment|bedroom|kitchen|living room|home)\b(?! (?:address|country|town|city))|\bat home\b"
        ),
        "Economic Status",
        _forbid("Economic Status", _HOMELESS),
        "a writer with a home of their own is not homeless or staying with friends",
    ),
    Rule(
        "money-trouble",
        _rx(
            r"\b(?:my|our|in|into|of) (?:[\w-]+ ){0,2}debts?\b|\bI owe\b|\bwe owe\b|\bcan(?:'t|not) (?:pay|afford|cover|"
            r"make) (?:my|the|our|rent|bills|payments|minimum)\b|\bbehind on (?:my |the |our )?(?:rent|bills|payments|"
            r"mortgage|repayments)\b|\bcollectors?\b|\bpayday loans?\b|\boverdra(?:ft|wn)\b|\barrears\b|\bmaxed out\b"
            r"|\bmissed (?:[\w-]+ )?payments?\b"
        ),
        "Economic Status",
        _forbid("Economic Status", _STABLE),
        "a writer in debt or behind on payments is not financially secure",
    ),
    Rule(
        "money-crisis",
        _rx(
            r"\bevict(?:ed|ion)\b|\bhomeless\b|\b(?:I|we)(?:'m| am|'re| are|'ve| have)? (?:filed|filing|declared|declaring|"
            r"going|facing|considering) (?:for )?(?:personal )?bankruptcy\b|\b(?:declare|file for|personal) bankruptcy\b|\bcan(?:'t|not) afford (?:food|groceries|to eat)\b|\bcan(?:'t|not) pay "
            r"(?:my |the |this month's )?rent\b|\b(?:losing|lose|about to lose) (?:my|our) (?:home|house|flat|"
            r"apartment)\b|\bfood bank\b"
        ),
        "Economic Status",
        _forbid("Economic Status", _NOT_SEVERE),
        "a writer facing eviction, bankruptcy or hunger is in difficulty",
    ),
    Rule(
        "owns-home",
        _rx(r"\bmy (?:mortgage|house|home loan)\b|\bour (?:mortgage|house)\b|\bI own (?:my|a) (?:home|house|flat)\b"),
        "Economic Status",
        _forbid("Economic Status", _HOMELESS),
        "a home owner is not homeless",
    ),
    Rule(
        "rents",
        _rx(r"\bmy (?:landlord|landlady|lease|rent)\b|\bour (?:landlord|lease|rent)\b"),
        "Economic Status",
        _forbid("Economic Status", r"own my home|" + _HOMELESS),
        "a renter neither owns a home nor is homeless",
    ),
    Rule(
        "denies-money-trouble",
        _rx(
            r"\bmoney (?:isn't|is not|has never been) (?:an |the |a )?(?:issue|problem)\b|\bfinancially (?:I'm|I am|"
            r"we're|we are) (?:fine|ok|okay|comfortable|secure|stable)\b|\bI(?:'m| am) (?:financially )?(?:comfortable"
            r"|well off)\b(?! with)|\bwe(?:'re| are) comfortable financially\b"
        ),
        "Economic Status",
        _forbid("Economic Status", _HARDSHIP),
        "a writer who says money is fine is not in hardship",
    ),
    # Gender.
    Rule(
        "pregnant",
        _rx(
            r"\bI(?:'m| am) (?:[\w-]+ )?pregnant\b|\bmy pregnancy\b|\bas a (?:woman|mother|mom|mum|wife|girl)\b|\bmy periods?\b(?! of)"
        ),
        "Gender",
        _forbid("Gender", _MALE),
        "a writer who is pregnant or writes as a woman is not a man",
    ),
    Rule(
        "as-a-man",
        _rx(r"\bas a (?:man|father|dad|husband|guy)\b"),
        "Gender",
        _forbid("Gender", _FEMALE),
        "a writer who writes as a man is not a woman",
    ),
    # Emotional State.
    Rule(
        "voices-distress",
        _rx(
            r"\b(?:hopeless|can't cope|cannot cope|falling apart|breaking down|numb|despair|devastated|heartbroken|"
            r"crying|cried|terrified|panick(?:ing|ed)|miserable|worthless|overwhelmed|drowning|ashamed|lonely|all alone|"
            r"so alone|scared|desperate|exhausted|empty|furious|want to die|don't want to be here|end it all|no point|"
            r"can't go on|sobbing|in tears|unbearable)\b"
        ),
        "Emotional State",
        _forbid("Emotional State", _POSITIVE),
        "a writer who voices strong distress is not happy, content, excited or calm",
    ),
    # Within the profile.
    Rule(
        "graduate-student-degree",
        _rx(r"\bgraduate student|phd student|master's student|doctoral student"),
        "Education Level",
        _forbid("Education Level", _LOW_SCHOOLING),
        "a graduate student has a first degree",
        source="Profession",
    ),
    Rule(
        "salary-needs-job",
        _rx(_SALARY),
        "Profession",
        _forbid("Profession", _NOT_WORKING + r"|^(?:[\w-]+ ){0,2}student\b"),
        "a salary needs a job",
        source="Economic Status",
    ),
)


def _age_bound_rules() -> tuple[Rule, ...]:
    """Value texts that imply an age ("Retired", "Married for 12 years"): the profile's age fits."""
    from penguin_gym.data.synthetic import age_bounded_texts

    out = []
    for attr in ("Marital Status", "Profession", "Education Level", "Health Status"):
        for pattern, lo, hi in age_bounded_texts():
            out.append(
                Rule(
                    f"age-of-text:{attr}:{pattern}",
                    _rx(pattern),
                    "Age",
                    _age_between(lo, hi),
                    "a value text that implies an age",
                    source=attr,
                )
            )
    return tuple(out)


RULES = RULES + _age_bound_rules()


def contradictions(scenario: Scenario, rules: Sequence[Rule] = RULES) -> list[Contradiction]:
    """Every contradiction in one scenario (at most one per rule)."""
    profile = scenario.profile
    out = []
    for rule in rules:
        text = scenario.query if rule.source == "query" else profile.get(rule.source, "")
        m = rule.fact.search(text)
        if m is None or (rule.unless is not None and rule.unless.search(scenario.query)):
            continue
        value = rule.check(m, profile)
        if value is not None:
            fact = m.group(0) if rule.source == "query" else f"{rule.source} = {text!r}"
            attribute = rule.attribute
            if value != profile.get(attribute):  # a two-attribute check: name the one that contradicts
                attribute = next((a for a, v in profile.items() if v == value), attribute)
            out.append(Contradiction(scenario.id, rule.name, fact, attribute, value))
    return out


def check(scenarios: Iterable[Scenario], rules: Sequence[Rule] = RULES) -> list[Contradiction]:
    """Every contradiction in ``scenarios``, in order."""
    return [c for s in scenarios for c in contradictions(s, rules)]


def count_by_rule(found: Iterable[Contradiction]) -> dict[str, int]:
    """Contradictions per rule, most frequent first."""
    return dict(Counter(c.rule for c in found).most_common())
