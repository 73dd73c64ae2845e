"""``LLMJudge``: the paper's judging method with real LLMs.

For a scenario and a revealed set ``U`` (Wu et al. 2025, Section 3.3):

1. the *responder* LLM answers the user's query knowing only the attributes in ``U`` (the query alone
   when ``U`` is empty: the context-free setting);
2. the *judge* LLM, which sees the full profile, scores that answer on Risk Sensitivity, Emotional
   Empathy and Personalization (1-5 each) with the rubric of ``penguin_gym.judges.rubric``;
3. the parser (``penguin_gym.judges.parse``) reads the three scores from their score lines only.

Failures are per item, and never a score. An empty answer is asked for again and never judged; an
unreadable judgment is asked for again; each retry samples with another seed (a seeded server would
otherwise return the same bad reply), and a score had on a retry says so in its ``notes``. What stays
empty or unreadable after ``retries``, and every request a server refuses for good (a 4xx, a content
filter), is a ``JudgeFailure`` of that item alone, with its cause and raw replies: the other items of
the batch are scored, and ``score_many`` raises ``JudgeBatchError`` holding both. A request that failed
on the server's side after the backend's own retries (timeouts, 5xx) is a failure too, marked not
``permanent``: a later run may succeed.

``structured`` asks the judge server for constrained output where it can give it: a JSON schema
(``"json_schema"``: OpenAI, vLLM, SGLang, llama.cpp's ``llama-server``; ``"json_object"`` with a schema:
llama-cpp-python's server) or a llama.cpp grammar of the rubric's own text format (``"grammar"``:
llama-cpp-python and ``llama-server``). The reply then cannot be malformed.

``score_many`` sends all its answers to the responder and then all its judgments to the judge, so a
transformers backend generates them in batches and an HTTP backend sends them concurrently; with
``on_result`` each item is handed over as soon as it is final (``CachedJudge`` stores it at once, so a
kill loses only what was in flight). Wrap the judge in ``CachedJudge`` to keep every judgment.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from penguin_gym.data.schema import ATTRIBUTES, Scenario, attribute_mask
from penguin_gym.error import BackendError, ConfigError, JudgeBatchError, JudgeParseError, RequestError
from penguin_gym.judges.backends import Backend, chat_each, make_backend
from penguin_gym.judges.base import JudgeBase, JudgeScore, close_judge
from penguin_gym.judges.parse import JUDGMENT_GRAMMAR, JUDGMENT_SCHEMA, parse_judge_output
from penguin_gym.judges.rubric import JSON_FORMAT_ID, PROMPT_ID, judge_messages, responder_messages

logger = logging.getLogger(__name__)

#: The structured judge modes: ``None`` (free text, parsed strictly) or one of these.
STRUCTURED = ("json_schema", "json_object", "grammar")
#: Why an item stayed unscored. Permanent: ``empty_answer``, ``unparseable``, ``refused``, ``http_error``;
#: the server's faults (a later run may succeed): ``timeout``, ``server_error``, ``connection``, ``malformed``.
CAUSES = ("empty_answer", "unparseable", "refused", "http_error", "timeout", "server_error", "connection", "malformed")


@dataclass(frozen=True, slots=True)
class JudgeFailure:
    """One item the judge could not score.

    Attributes:
        index: Position of the item in the ``score_many`` call.
        scenario_id: The scenario.
        revealed: The revealed attributes, in ``ATTRIBUTES`` order.
        reason: What went wrong last (the parser's or the server's message).
        response: The responder's answer that was being judged (``""`` when there was none).
        raw: The judge's replies, one per attempt (the responder's, for an empty answer).
        cause: One of ``CAUSES``.
        permanent: Whether asking again cannot help; ``False`` for the server's faults.
        seeds: The sampling seed of each attempt (``None``: the server's own).
    """

    index: int
    scenario_id: str
    revealed: tuple[str, ...]
    reason: str
    response: str
    raw: tuple[str, ...]
    cause: str = "unparseable"
    permanent: bool = True
    seeds: tuple[int | None, ...] = ()


#: The temperature of a retry when the configured one is 0: greedy decoding would return the same reply.
RETRY_TEMPERATURE = 0.7


def _attempt_temperature(temperature: float, attempt: int) -> float:
    return temperature if attempt == 0 or temperature > 0 else RETRY_TEMPERATURE


def retry_seed(base: int | None, attempt: int) -> int | None:
    """The sampling seed of ``attempt`` (0 = the first): the base seed first, then seeds derived from it,
    so that a retry is a new sample and a rerun asks the same things again."""
    if attempt == 0:
        return base
    digest = hashlib.sha256(f"penguin-retry|{base}|{attempt}".encode()).digest()
    return int.from_bytes(digest[:4], "big") >> 1


OnResult = Callable[[int, "JudgeScore | JudgeFailure"], None]


class LLMJudge(JudgeBase):
    """Scores answers with a responder LLM and a judge LLM (the paper's method).

    Args:
        responder: The backend (or backend spec) that answers the queries.
        judge: The backend (or spec) that scores the answers; ``None``: the responder judges itself.
        temperature: The responder's sampling temperature (the paper: 0.7).
        max_tokens: The responder's reply length limit.
        judge_temperature: The judge's temperature (default: ``temperature``, as in the paper).
        judge_max_tokens: The judge's reply length limit.
        retries: How many more times an empty answer or an unreadable judgment is asked for, each time
            with another seed (and, where the temperature is 0, at ``RETRY_TEMPERATURE``: greedy decoding
            would repeat the reply).
        seed: The sampling seed of first attempts (``None``: the server's own); retries derive theirs.
        structured: ``None`` (free text), ``"json_schema"``, ``"json_object"`` or ``"grammar"`` (see
            the module's docstring for which servers take which).
        strict_total: Treat a comprehensive score that is not the sum of the three as unreadable (the
            default keeps the three and notes the disagreement).
        require_total: Treat a reply without "Comprehensive Score: XX/15" as unreadable.
        backend_kwargs: Constructor arguments for backends given as spec strings (``api_key_env``,
            ``concurrency``, ``device``...).

    Attributes:
        name: The judge's identity: the prompts, both backends with every setting that changes a reply,
            the sampling settings, the structured mode and the parsing rules. Caches key on it.
        failures: Every failure recorded by this judge, oldest first.

    Example:
        >>> from penguin_gym.data import load_scenarios
        >>> from penguin_gym.judges.backends import ScriptedBackend
        >>> s = load_scenarios(domains="Health", n_per_domain=1)[0]
        >>> judge = LLMJudge(ScriptedBackend(["Take care.", "Risk Sensitivity: Score: 2/5\\n"
        ...     "Emotional Empathy: Score: 3/5\\nPersonalization: Score: 2/5\\nComprehensive Score: 7/15"]))
        >>> judge.score(s, frozenset()).personalization
        2.0
    """

    def __init__(
        self,
        responder: Backend | str,
        judge: Backend | str | None = None,
        *,
        temperature: float = 0.7,
        max_tokens: int = 512,
        judge_temperature: float | None = None,
        judge_max_tokens: int = 768,
        retries: int = 2,
        seed: int | None = None,
        structured: str | None = None,
        strict_total: bool = False,
        require_total: bool = False,
        backend_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        kwargs = dict(backend_kwargs or {})
        self.responder = make_backend(responder, **(kwargs if isinstance(responder, str) else {}))
        if judge is None:
            self.judge = self.responder
        elif isinstance(judge, str) and isinstance(responder, str) and judge == responder:
            self.judge = self.responder
        else:
            self.judge = make_backend(judge, **(kwargs if isinstance(judge, str) else {}))
        if not (isinstance(retries, int) and retries >= 0):
            raise ConfigError(f"LLMJudge: retries = {retries!r} must be an integer >= 0")
        for label, t in (("temperature", temperature), ("judge_temperature", judge_temperature)):
            if t is not None and not t >= 0:
                raise ConfigError(f"LLMJudge: {label} = {t!r} must be >= 0")
        for label, m in (("max_tokens", max_tokens), ("judge_max_tokens", judge_max_tokens)):
            if not (isinstance(m, int) and m >= 1):
                raise ConfigError(f"LLMJudge: {label} = {m!r} must be an integer >= 1")
        if structured is not None and structured not in STRUCTURED:
            raise ConfigError(f"LLMJudge: structured = {structured!r}; valid: None, {', '.join(map(repr, STRUCTURED))}")
        if structured is not None and structured not in getattr(self.judge, "structured_modes", ()):
            raise ConfigError(
                f"LLMJudge: the judge backend {self.judge.name} cannot constrain its output (structured="
                f"{structured!r}); use an OpenAI-compatible server that takes it (vLLM, llama.cpp) or structured=None"
            )
        if seed is not None and not isinstance(seed, int):
            raise ConfigError(f"LLMJudge: seed = {seed!r} must be an integer or None")
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.judge_temperature = float(temperature if judge_temperature is None else judge_temperature)
        self.judge_max_tokens = int(judge_max_tokens)
        self.retries = int(retries)
        self.seed = seed
        self.structured = structured
        self.strict_total = bool(strict_total)
        self.require_total = bool(require_total)
        self.failures: list[JudgeFailure] = []
        rules: list[str] = []
        if structured is not None:
            rules.append(f"structured={structured}+{_constraint_id(structured)}")
        if seed is not None:
            rules.append(f"seed={seed}")
        if strict_total:
            rules.append("strict_total")
        if require_total:
            rules.append("total")
        self.name = (
            f"llm/{PROMPT_ID}"
            f"/responder={self.responder.name},T={self.temperature:g},max={self.max_tokens}"
            f"/judge={self.judge.name},T={self.judge_temperature:g},max={self.judge_max_tokens}"
            + (f"/{','.join(rules)}" if rules else "")
        )

    def __repr__(self) -> str:
        return f"LLMJudge({self.name!r})"

    def close(self) -> None:
        """Close the backends' connections and threads (an HTTP backend opens new ones on its next call)."""
        for backend in {id(b): b for b in (self.responder, self.judge)}.values():
            close_judge(backend)

    def __enter__(self) -> LLMJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _fields(self) -> dict[str, Any]:
        if self.structured == "json_schema":
            schema = {"name": "rubric_scores", "strict": True, "schema": JUDGMENT_SCHEMA}
            return {"response_format": {"type": "json_schema", "json_schema": schema}}
        if self.structured == "json_object":
            return {"response_format": {"type": "json_object", "schema": JUDGMENT_SCHEMA}}
        if self.structured == "grammar":
            return {"grammar": JUDGMENT_GRAMMAR}
        return {}

    def respond(self, scenarios: Sequence[Scenario], revealed: Sequence[frozenset[str]]) -> list[str]:
        """The responder's answers (step 1 alone, first attempts), e.g. to inspect them."""
        convs = [responder_messages(s, r) for s, r in zip(scenarios, revealed, strict=True)]
        replies = self.responder.chat(convs, temperature=self.temperature, max_tokens=self.max_tokens)
        if len(replies) != len(convs):
            raise BackendError(f"{self.responder.name}: {len(replies)} replies to {len(convs)} conversations")
        return replies

    def score_many(
        self,
        scenarios: Sequence[Scenario],
        revealed: Sequence[frozenset[str]],
        *,
        on_result: OnResult | None = None,
    ) -> list[JudgeScore]:
        """Judge many (scenario, revealed set) pairs: responder rounds, then judge rounds.

        Args:
            scenarios: The scenarios.
            revealed: The revealed set of each.
            on_result: Called with ``(index, JudgeScore or JudgeFailure)`` as each item becomes final.

        Raises:
            JudgeBatchError: when some items could not be scored: ``.results`` holds the scores of the
                others (``None`` for the failed ones), ``.failures`` a ``JudgeFailure`` per failed item.
        """
        if len(scenarios) != len(revealed):
            raise ConfigError(f"LLMJudge: {len(scenarios)} scenarios but {len(revealed)} revealed sets")
        if not scenarios:
            return []
        revealed = [frozenset(r) for r in revealed]
        for r in revealed:
            attribute_mask(r)  # unknown names fail here, before any LLM call
        n = len(scenarios)
        results: list[JudgeScore | None] = [None] * n
        failures: dict[int, JudgeFailure] = {}
        seeds: list[list[int | None]] = [[] for _ in range(n)]
        notes: list[list[str]] = [[] for _ in range(n)]

        def fail(i: int, reason: str, cause: str, permanent: bool, response: str, raw: Sequence[str]) -> None:
            failures[i] = JudgeFailure(
                index=i,
                scenario_id=scenarios[i].id,
                revealed=tuple(a for a in ATTRIBUTES if a in revealed[i]),
                reason=reason,
                response=response,
                raw=tuple(raw),
                cause=cause,
                permanent=permanent,
                seeds=tuple(seeds[i]),
            )
            if on_result is not None:
                on_result(i, failures[i])

        # 1. The answers: an empty one is asked for again, with another seed.
        responses: list[str | None] = [None] * n
        empty: list[list[str]] = [[] for _ in range(n)]
        pending = list(range(n))
        for attempt in range(self.retries + 1):
            if not pending:
                break
            round_seeds = [retry_seed(self.seed, attempt) for _ in pending]
            convs = [responder_messages(scenarios[i], revealed[i]) for i in pending]
            still: list[int] = []
            replies = chat_each(
                self.responder,
                convs,
                temperature=_attempt_temperature(self.temperature, attempt),
                max_tokens=self.max_tokens,
                seeds=round_seeds,
            )
            for j, reply in replies:
                i = pending[j]
                if isinstance(reply, BackendError):
                    cause, permanent = _request_cause(reply)
                    fail(i, f"the responder's request failed: {reply}", cause, permanent, "", ())
                elif not reply.strip():
                    empty[i].append(reply)
                    still.append(i)
                else:
                    responses[i] = reply
                    if attempt:
                        notes[i].append(
                            f"the answer came on attempt {attempt + 1} (seed {round_seeds[j]}, temperature "
                            f"{_attempt_temperature(self.temperature, attempt):g})"
                        )
            pending = sorted(still)
            if pending and attempt < self.retries:
                logger.info("%d empty answers; asking again with another seed", len(pending))
        for i in pending:
            fail(
                i,
                f"the responder gave an empty answer {len(empty[i])} times",
                "empty_answer",
                True,
                "",
                empty[i],
            )

        # 2. The judgments: an unreadable one is asked for again, with another seed.
        raws: list[list[str]] = [[] for _ in range(n)]
        reasons: list[str] = [""] * n
        pending = [i for i in range(n) if responses[i] is not None]
        output = "json" if self.structured in ("json_schema", "json_object") else "text"
        fields = self._fields()
        for attempt in range(self.retries + 1):
            if not pending:
                break
            round_seeds = [retry_seed(self.seed, attempt) for _ in pending]
            for i, s in zip(pending, round_seeds, strict=True):
                seeds[i].append(s)
            convs = [judge_messages(scenarios[i], responses[i] or "", output=output) for i in pending]
            still = []
            replies = chat_each(
                self.judge,
                convs,
                temperature=_attempt_temperature(self.judge_temperature, attempt),
                max_tokens=self.judge_max_tokens,
                seeds=round_seeds,
                fields=fields,
            )
            for j, reply in replies:
                i = pending[j]
                response = responses[i] or ""
                if isinstance(reply, BackendError):
                    cause, permanent = _request_cause(reply)
                    fail(i, f"the judge's request failed: {reply}", cause, permanent, response, raws[i])
                    continue
                raws[i].append(reply)
                try:
                    parsed = parse_judge_output(reply, strict_total=self.strict_total, require_total=self.require_total)
                except JudgeParseError as e:
                    reasons[i] = str(e)
                    still.append(i)
                    if attempt < self.retries:
                        logger.info(
                            "unreadable judgment of %s (attempt %d of %d): %s",
                            scenarios[i].id,
                            attempt + 1,
                            self.retries + 1,
                            e,
                        )
                    continue
                extra = list(notes[i])
                if attempt:
                    extra.append(
                        f"judged on attempt {attempt + 1} (seed {round_seeds[j]}, temperature "
                        f"{_attempt_temperature(self.judge_temperature, attempt):g}); the earlier replies could not "
                        f"be read: {reasons[i]}"
                    )
                results[i] = parsed.to_score(response=response, raw=reply, notes=tuple(extra))
                if on_result is not None:
                    on_result(i, results[i])  # type: ignore[arg-type]
            pending = sorted(still)
        for i in pending:
            fail(i, reasons[i], "unparseable", True, responses[i] or "", raws[i])

        if not failures:
            return [r for r in results if r is not None]
        ordered = [failures[i] for i in sorted(failures)]
        self.failures.extend(ordered)
        for f in ordered:  # the caller reports them (the error, a results file): a log line each is detail
            logger.info(
                "unscored: scenario %s (revealed %s), %s: %s", f.scenario_id, list(f.revealed), f.cause, f.reason
            )
        first = ordered[0]
        raise JudgeBatchError(
            f"{len(ordered)} of {n} judgments failed ({describe_causes(count_causes(ordered))}); first: scenario "
            f"{first.scenario_id!r}, revealed {list(first.revealed)}: {first.reason} (the records, with the raw "
            "replies, are in the error's .failures and in LLMJudge.failures)",
            results=list(results),
            failures=list(ordered),
        )


def _constraint_id(structured: str) -> str:
    """A hash of what constrains the judge in a structured mode (the output format, the schema or the
    grammar): part of the judge's name, so that a changed constraint is a new judge."""
    import json

    if structured == "grammar":
        blob = JUDGMENT_GRAMMAR
    else:
        blob = JSON_FORMAT_ID + json.dumps(JUDGMENT_SCHEMA, sort_keys=True)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()[:8]


def _request_cause(error: BackendError) -> tuple[str, bool]:
    """The cause and permanence of a failed request (a backend outside this package: not permanent)."""
    if isinstance(error, RequestError):
        return error.cause, error.permanent
    return "server_error", False


def count_causes(failures: Sequence[Any]) -> dict[str, int]:
    """How many of ``failures`` (``JudgeFailure`` records) have each cause, by cause name."""
    counts: dict[str, int] = {}
    for f in failures:
        counts[f.cause] = counts.get(f.cause, 0) + 1
    return dict(sorted(counts.items()))


def describe_causes(counts: Mapping[str, int]) -> str:
    """Counts by cause as every message and report writes them: ``"refused: 2, unparseable: 1"``."""
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
