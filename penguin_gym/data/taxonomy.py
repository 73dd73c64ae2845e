"""The scenario hierarchy: 7 domains x 2 groups x 10 scenario types (140 types).

It follows the shape of the paper's synthetic-data hierarchy (e.g. Financial > Debt Issues > Medical
Debt; Health > Mental Health > Self-harm Urges). Each type carries two numbers the synthetic generator
uses to keep profiles coherent with the situation:

* ``risk``: how much the situation itself raises the chance of psychological distress, in [0, 1]
  (self-harm urges 1.0; choosing a major 0.1).
* ``age``: the age band the situation skews towards (``None`` = the domain's usual mix). Students are
  young, retirees old.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from penguin_gym.data.schema import DOMAINS


@dataclass(frozen=True, slots=True)
class ScenarioType:
    domain: str
    group: str
    name: str
    risk: float
    age: str | None = None


_Y, _M, _O = "young", "middle", "old"

# (group, [(type, risk, age skew), ...]) per domain, 2 groups x 10 types each.
_HIERARCHY: dict[str, list[tuple[str, list[tuple[str, float, str | None]]]]] = {
    "Relationship": [
        (
            "Romantic Relationships",
            [
                ("Breakup", 0.6, _Y),
                ("Divorce", 0.7, _M),
                ("Infidelity", 0.65, None),
                ("Long-distance Strain", 0.3, _Y),
                ("Unrequited Love", 0.45, _Y),
                ("Domestic Conflict", 0.7, _M),
                ("Commitment Doubts", 0.25, None),
                ("Jealousy", 0.35, _Y),
                ("Dating Rejection", 0.4, _Y),
                ("Loss of Intimacy", 0.35, _M),
            ],
        ),
        (
            "Family Relationships",
            [
                ("Parent Conflict", 0.45, _Y),
                ("Family Estrangement", 0.55, None),
                ("Caregiving Burden", 0.55, _M),
                ("Sibling Rivalry", 0.25, None),
                ("Custody Dispute", 0.7, _M),
                ("Family Expectations", 0.35, _Y),
                ("In-law Tension", 0.3, _M),
                ("Coming Out to Family", 0.5, _Y),
                ("Parents' Divorce", 0.4, _Y),
                ("Death in the Family", 0.65, None),
            ],
        ),
    ],
    "Career": [
        (
            "Job Loss and Insecurity",
            [
                ("Layoff", 0.6, None),
                ("Being Fired", 0.6, None),
                ("Contract Not Renewed", 0.45, _Y),
                ("Company Bankruptcy", 0.55, _M),
                ("Long-term Unemployment", 0.7, None),
                ("Job Search Rejections", 0.45, _Y),
                ("Demotion", 0.45, _M),
                ("Forced Early Retirement", 0.5, _O),
                ("Gig Income Loss", 0.5, _Y),
                ("Failed Probation", 0.4, _Y),
            ],
        ),
        (
            "Workplace Stress",
            [
                ("Burnout", 0.6, _M),
                ("Toxic Boss", 0.45, None),
                ("Workplace Bullying", 0.55, None),
                ("Chronic Overwork", 0.45, _M),
                ("Career Stagnation", 0.3, _M),
                ("Impostor Syndrome", 0.3, _Y),
                ("Workplace Discrimination", 0.5, None),
                ("Bad Performance Review", 0.35, None),
                ("Career Change Doubts", 0.2, _M),
                ("Work-Life Conflict", 0.35, _M),
            ],
        ),
    ],
    "Financial": [
        (
            "Debt Issues",
            [
                ("Medical Debt", 0.65, _M),
                ("Credit Card Debt", 0.5, None),
                ("Student Loan Debt", 0.4, _Y),
                ("Mortgage Arrears", 0.6, _M),
                ("Payday Loans", 0.6, None),
                ("Gambling Debt", 0.75, None),
                ("Business Debt", 0.55, _M),
                ("Debt Collector Harassment", 0.6, None),
                ("Personal Bankruptcy", 0.7, _M),
                ("Owing Family Money", 0.35, _Y),
            ],
        ),
        (
            "Income and Security",
            [
                ("Investment Loss", 0.5, _M),
                ("Scam Victim", 0.55, _O),
                ("Cannot Pay Rent", 0.6, _Y),
                ("Eviction Threat", 0.7, None),
                ("Retirement Savings Shortfall", 0.4, _O),
                ("Unexpected Expense", 0.3, None),
                ("Living Paycheck to Paycheck", 0.45, None),
                ("Loss of Benefits", 0.55, _O),
                ("Financial Dependence on a Partner", 0.45, None),
                ("Supporting Dependents", 0.4, _M),
            ],
        ),
    ],
    "Social": [
        (
            "Isolation and Belonging",
            [
                ("Loneliness", 0.65, None),
                ("Friendship Breakdown", 0.4, _Y),
                ("Social Anxiety", 0.55, _Y),
                ("Isolation after Moving", 0.45, None),
                ("Exclusion from a Group", 0.4, _Y),
                ("Online Harassment", 0.6, _Y),
                ("Public Humiliation", 0.6, None),
                ("Being Bullied", 0.65, _Y),
                ("Cultural Alienation", 0.4, None),
                ("Betrayal by a Friend", 0.45, None),
            ],
        ),
        (
            "Reputation and Conflict",
            [
                ("Neighbor Dispute", 0.25, _M),
                ("Community Conflict", 0.3, _M),
                ("Legal Trouble", 0.6, None),
                ("Social Media Backlash", 0.55, _Y),
                ("Peer Pressure", 0.35, _Y),
                ("Facing Discrimination", 0.5, None),
                ("Rumors and Gossip", 0.4, None),
                ("Roommate Conflict", 0.2, _Y),
                ("Loss of Social Status", 0.45, _M),
                ("Stigma", 0.55, None),
            ],
        ),
    ],
    "Health": [
        (
            "Physical Health",
            [
                ("Chronic Illness Diagnosis", 0.6, _M),
                ("Cancer Diagnosis", 0.75, _O),
                ("Chronic Pain", 0.6, _M),
                ("Living with Disability", 0.5, None),
                ("Fear of Surgery", 0.35, _O),
                ("Infertility", 0.55, _M),
                ("Body Image", 0.5, _Y),
                ("Insomnia", 0.45, None),
                ("Addiction Recovery", 0.7, None),
                ("Terminal Illness of a Loved One", 0.7, _M),
            ],
        ),
        (
            "Mental Health",
            [
                ("Depressive Episode", 0.85, None),
                ("Anxiety Attacks", 0.7, _Y),
                ("Self-harm Urges", 1.0, _Y),
                ("Eating Disorder", 0.85, _Y),
                ("Panic Disorder", 0.7, None),
                ("Trauma and PTSD", 0.8, None),
                ("Grief", 0.65, None),
                ("Medication Side Effects", 0.55, None),
                ("No Access to Therapy", 0.6, None),
                ("Substance Abuse", 0.8, None),
            ],
        ),
    ],
    "Life": [
        (
            "Major Transitions",
            [
                ("Relocation", 0.25, None),
                ("Retirement", 0.35, _O),
                ("Becoming a Parent", 0.35, _M),
                ("Empty Nest", 0.35, _O),
                ("Midlife Crisis", 0.45, _M),
                ("Immigration", 0.4, None),
                ("Quarter-life Crisis", 0.4, _Y),
                ("Moving in Together", 0.15, _Y),
                ("Caring for Aging Parents", 0.5, _M),
                ("Losing a Home", 0.7, None),
            ],
        ),
        (
            "Loss and Meaning",
            [
                ("Death of a Loved One", 0.75, None),
                ("Loss of a Pet", 0.45, None),
                ("Loss of Faith", 0.4, None),
                ("Lack of Purpose", 0.6, None),
                ("Identity Crisis", 0.5, _Y),
                ("Regret over Past Choices", 0.45, _M),
                ("Aftermath of an Accident", 0.65, None),
                ("Victim of Crime", 0.7, None),
                ("Natural Disaster", 0.6, None),
                ("Legal Separation", 0.6, _M),
            ],
        ),
    ],
    "Education": [
        (
            "Academic Pressure",
            [
                ("Exam Failure", 0.5, _Y),
                ("Academic Probation", 0.55, _Y),
                ("Thesis Stress", 0.45, _Y),
                ("University Rejection", 0.45, _Y),
                ("Dropping Out", 0.55, _Y),
                ("Academic Competition", 0.35, _Y),
                ("Plagiarism Accusation", 0.6, _Y),
                ("Falling Behind", 0.4, _Y),
                ("Parental Academic Pressure", 0.5, _Y),
                ("Losing a Scholarship", 0.5, _Y),
            ],
        ),
        (
            "Campus and Future",
            [
                ("Post-graduation Uncertainty", 0.35, _Y),
                ("Advisor Conflict", 0.45, _Y),
                ("Student Debt Stress", 0.45, _Y),
                ("Campus Isolation", 0.55, _Y),
                ("Choosing a Major", 0.1, _Y),
                ("Returning to School as an Adult", 0.25, _M),
                ("Study Abroad Stress", 0.35, _Y),
                ("Learning Disability", 0.4, _Y),
                ("Graduate School Decision", 0.15, _Y),
                ("Campus Harassment", 0.7, _Y),
            ],
        ),
    ],
}

SCENARIO_TYPES: tuple[ScenarioType, ...] = tuple(
    ScenarioType(domain, group, name, risk, age)
    for domain in DOMAINS
    for group, types in _HIERARCHY[domain]
    for name, risk, age in types
)

#: Domain -> its scenario types, in hierarchy order.
TYPES_BY_DOMAIN: Mapping[str, tuple[ScenarioType, ...]] = MappingProxyType(
    {d: tuple(t for t in SCENARIO_TYPES if t.domain == d) for d in DOMAINS}
)
#: Scenario type name -> its record (names are unique across domains).
TYPE_BY_NAME: Mapping[str, ScenarioType] = MappingProxyType({t.name: t for t in SCENARIO_TYPES})

assert len(SCENARIO_TYPES) == 140 and len(TYPE_BY_NAME) == 140, "taxonomy must hold 140 unique types"
