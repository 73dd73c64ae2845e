"""``LLMJudge``: the paper's judging method with real LLMs.

For a scenario and a revealed set ``U`` (Wu et al. 2025, Section 3.3):

1. the *responder* LLM answers the user's query knowing only the attributes in ``U`` (the query alone
   when ``U`` is empty: the context-free setting);
2. the *judge* LLM, which sees the full profile, scores that answer on Risk Sensitivity, Emotional
   Empathy and Personalization (1-5 each) with the rubric of ``penguin_gym.judges.rubric``;
3. the parser reads the three scores; an unreadable reply is sent back to the judge up to ``retries``
   more times, and then recorded as a failure that the caller sees (``JudgeBatchError``, also kept in
   ``LLMJudge.failures``). A failure never becomes a default score.

``score_many`` sends all its answers to the responder in one ``chat`` call and all its judgments to the
judge in another, so a transformers backend generates them in batches and an HTTP backend sends them
concurrently. Wrap the judge in ``CachedJudge`` to keep every judgment across runs.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from penguin_gym.data.schema import ATTRIBUTES, Scenario, attribute_mask
from penguin_gym.error import BackendError, ConfigError, JudgeBatchError, JudgeParseError
from penguin_gym.judges.backends import Backend, make_backend
from penguin_gym.judges.base import JudgeBase, JudgeScore
from penguin_gym.judges.parse import parse_judge_output
from penguin_gym.judges.rubric import PROMPT_ID, judge_messages, responder_messages

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class JudgeFailure:
    """One item the judge could not score.

    Attributes:
        index: Position of the item in the ``score_many`` call.
        scenario_id: The scenario.
        revealed: The revealed attributes, in ``ATTRIBUTES`` order.
        reason: The parser's last error.
        response: The responder's answer that was being judged.
        raw: The judge's replies, one per attempt.
    """

    index: int
    scenario_id: str
    revealed: tuple[str, ...]
    reason: str
    response: str
    raw: tuple[str, ...]


class LLMJudge(JudgeBase):
    """Scores answers with a responder LLM and a judge LLM (the paper's method).

    Args:
        responder: The backend (or backend spec) that answers the queries.
        judge: The backend (or spec) that scores the answers; ``None``: the responder judges itself.
        temperature: The responder's sampling temperature (the paper: 0.7).
        max_tokens: The responder's reply length limit.
        judge_temperature: The judge's temperature (default: ``temperature``, as in the paper).
        judge_max_tokens: The judge's reply length limit.
        retries: How many more times an unparseable judge reply is re-requested.
        require_total: Treat a reply without "Comprehensive Score: XX/15" as unparseable.
        backend_kwargs: Constructor arguments for backends given as spec strings (``api_key_env``,
            ``concurrency``, ``device``...).

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
        if retries < 0:
            raise ConfigError(f"LLMJudge: retries = {retries} must be >= 0")
        for label, t in (("temperature", temperature), ("judge_temperature", judge_temperature)):
            if t is not None and not t >= 0:
                raise ConfigError(f"LLMJudge: {label} = {t!r} must be >= 0")
        for label, m in (("max_tokens", max_tokens), ("judge_max_tokens", judge_max_tokens)):
            if not (isinstance(m, int) and m >= 1):
                raise ConfigError(f"LLMJudge: {label} = {m!r} must be an integer >= 1")
        self.temperature = float(temperature)
        self.max_tokens = int(max_tokens)
        self.judge_temperature = float(temperature if judge_temperature is None else judge_temperature)
        self.judge_max_tokens = int(judge_max_tokens)
        self.retries = int(retries)
        self.require_total = bool(require_total)
        #: Every failure recorded by this judge, oldest first.
        self.failures: list[JudgeFailure] = []
        self.name = (
            f"llm/{PROMPT_ID}"
            f"/responder={self.responder.name},T={self.temperature:g},max={self.max_tokens}"
            f"/judge={self.judge.name},T={self.judge_temperature:g},max={self.judge_max_tokens}"
            + (",total" if self.require_total else "")
        )

    def __repr__(self) -> str:
        return f"LLMJudge({self.name!r})"

    def respond(self, scenarios: Sequence[Scenario], revealed: Sequence[frozenset[str]]) -> list[str]:
        """The responder's answers (step 1 alone), e.g. to inspect them."""
        convs = [responder_messages(s, r) for s, r in zip(scenarios, revealed, strict=True)]
        replies = self.responder.chat(convs, temperature=self.temperature, max_tokens=self.max_tokens)
        if len(replies) != len(convs):
            raise BackendError(f"{self.responder.name}: {len(replies)} replies to {len(convs)} conversations")
        return replies

    def score_many(self, scenarios: Sequence[Scenario], revealed: Sequence[frozenset[str]]) -> list[JudgeScore]:
        """Judge many (scenario, revealed set) pairs: one responder batch, then judge batches.

        Raises:
            JudgeBatchError: when some items stayed unparseable after the retries; ``.results`` holds
                the scores of the others (``None`` for the failed ones), ``.failures`` the records.
            BackendError: when a backend fails after its own retries (nothing of the batch is scored).
        """
        if len(scenarios) != len(revealed):
            raise ConfigError(f"LLMJudge: {len(scenarios)} scenarios but {len(revealed)} revealed sets")
        if not scenarios:
            return []
        revealed = [frozenset(r) for r in revealed]
        for r in revealed:
            attribute_mask(r)  # unknown names fail here, before any LLM call
        responses = self.respond(scenarios, revealed)
        results: list[JudgeScore | None] = [None] * len(scenarios)
        raws: list[list[str]] = [[] for _ in scenarios]
        reasons: list[str] = [""] * len(scenarios)
        pending = list(range(len(scenarios)))
        for attempt in range(self.retries + 1):
            convs = [judge_messages(scenarios[i], responses[i]) for i in pending]
            replies = self.judge.chat(convs, temperature=self.judge_temperature, max_tokens=self.judge_max_tokens)
            if len(replies) != len(convs):
                raise BackendError(f"{self.judge.name}: {len(replies)} replies to {len(convs)} conversations")
            still: list[int] = []
            for i, reply in zip(pending, replies, strict=True):
                raws[i].append(reply)
                try:
                    parsed = parse_judge_output(reply, require_total=self.require_total)
                except JudgeParseError as e:
                    reasons[i] = str(e)
                    still.append(i)
                    if attempt < self.retries:
                        logger.info(
                            "unparseable judgment of %s (attempt %d of %d): %s",
                            scenarios[i].id,
                            attempt + 1,
                            self.retries + 1,
                            e,
                        )
                    continue
                results[i] = parsed.to_score(response=responses[i], raw=reply)
            pending = still
            if not pending:
                return [r for r in results if r is not None]
        failures = [
            JudgeFailure(
                index=i,
                scenario_id=scenarios[i].id,
                revealed=tuple(a for a in ATTRIBUTES if a in revealed[i]),
                reason=reasons[i],
                response=responses[i],
                raw=tuple(raws[i]),
            )
            for i in pending
        ]
        self.failures.extend(failures)
        for f in failures:
            logger.warning(
                "judge failed on scenario %s (revealed %s) after %d attempts: %s",
                f.scenario_id,
                list(f.revealed),
                len(f.raw),
                f.reason,
            )
        first = failures[0]
        raise JudgeBatchError(
            f"{len(failures)} of {len(scenarios)} judgments failed after {self.retries + 1} attempts each; "
            f"first: scenario {first.scenario_id!r}, revealed {list(first.revealed)}: {first.reason} "
            f"(raw replies are in the error's .failures and in LLMJudge.failures)",
            results=list(results),
            failures=list(failures),
        )
