"""RAISE's path library: the planner's best question sequences for training queries, retrieved by query.

Offline (Wu et al. 2025, Section 5): for each training query, the MCTS planner searches the attribute
sets with the user's true profile and the best path is stored with the query's embedding. Online, the
``k = 5`` stored queries nearest (cosine) to the user's query are retrieved and their paths ranked by
their offline safety serve as examples.

The library is JSONL, one record per line::

    {"id": ..., "domain": ..., "scenario_type": ..., "query": ..., "path": ["Emotional State", ...],
     "safety": 4.41, "net": 4.26, "step_safety": [2.9, 3.9, 4.3, 4.41], "embedding": [...],
     "embedding_model": "hashing-64", "severity": [0.3, ...], "gains": [0.61, 0.2, 0.07]}

``safety`` is the judge's safety (1-5) of the path's full set, ``step_safety[i]`` that of its first ``i``
attributes, ``net`` the return (safety minus question costs, judge units), ``severity`` the training
user's severity per attribute (training data; lets the offline modules match stored users to what a user
has revealed; may be empty), ``gains[i]`` what the path's set loses in safety without its ``i``-th
attribute (leave-one-out: each attribute's contribution for that user; may be empty).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.mcts import MCTSConfig, plan_true_profile
from agents.priors import LearnedPrior, Prior, UniformPrior
from agents.scoring import net_tables
from penguin_gym.data.schema import ATTRIBUTE_INDEX, ATTRIBUTES, DOMAINS, Scenario
from penguin_gym.error import ConfigError, DataFormatError
from penguin_gym.features import Featurizer, make_featurizer
from penguin_gym.judges.base import Judge
from penguin_gym.model import DEFAULT_QUESTION_COST, MASK_BITS, CostSpec, EpisodeModel

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class PathRecord:
    """One stored plan (see the module docstring for the fields)."""

    id: str
    domain: str
    scenario_type: str
    query: str
    path: tuple[str, ...]
    safety: float
    net: float
    step_safety: tuple[float, ...]
    embedding: tuple[float, ...]
    embedding_model: str
    severity: tuple[float, ...] = ()
    gains: tuple[float, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "domain": self.domain,
            "scenario_type": self.scenario_type,
            "query": self.query,
            "path": list(self.path),
            "safety": round(self.safety, 6),
            "net": round(self.net, 6),
            "step_safety": [round(x, 6) for x in self.step_safety],
            "embedding": [round(x, 6) for x in self.embedding],
            "embedding_model": self.embedding_model,
            "severity": [round(x, 6) for x in self.severity],
            "gains": [round(x, 6) for x in self.gains],
        }


def parse_record(line: str, source: str, lineno: int) -> PathRecord:
    """Parse one JSONL line of a library; errors name ``source:lineno`` and the field."""
    where = f"{source}:{lineno}"
    try:
        d = json.loads(line)
    except json.JSONDecodeError as e:
        raise DataFormatError(f"{where}: not valid JSON: {e.msg}") from e
    if not isinstance(d, dict):
        raise DataFormatError(f"{where}: a record must be a JSON object, got {type(d).__name__}")
    for key in ("id", "domain", "query", "path", "safety", "step_safety", "embedding", "embedding_model"):
        if key not in d:
            raise DataFormatError(f"{where}: field {key!r} is missing")
    if d["domain"] not in DOMAINS:
        raise DataFormatError(f"{where}: field 'domain' = {d['domain']!r} is not one of {list(DOMAINS)}")
    path = d["path"]
    if not isinstance(path, list) or any(a not in ATTRIBUTE_INDEX for a in path) or len(set(path)) != len(path):
        raise DataFormatError(
            f"{where}: field 'path' = {path!r} must list distinct attribute names from {list(ATTRIBUTES)}"
        )
    steps = d["step_safety"]
    if (
        not isinstance(steps, list)
        or len(steps) != len(path) + 1
        or not all(isinstance(x, (int, float)) for x in steps)
    ):
        raise DataFormatError(f"{where}: field 'step_safety' must hold len(path) + 1 = {len(path) + 1} numbers")
    emb = d["embedding"]
    if not isinstance(emb, list) or not emb or not all(isinstance(x, (int, float)) and math.isfinite(x) for x in emb):
        raise DataFormatError(f"{where}: field 'embedding' must be a non-empty list of finite numbers")
    sev = d.get("severity", [])
    if (
        not isinstance(sev, list)
        or len(sev) not in (0, len(ATTRIBUTES))
        or not all(isinstance(x, (int, float)) and 0.0 <= x <= 1.0 for x in sev)
    ):
        raise DataFormatError(f"{where}: field 'severity' must be empty or hold 10 numbers in [0, 1]")
    gains = d.get("gains", [])
    if (
        not isinstance(gains, list)
        or len(gains) not in (0, len(path))
        or not all(isinstance(x, (int, float)) for x in gains)
    ):
        raise DataFormatError(f"{where}: field 'gains' must be empty or hold len(path) = {len(path)} numbers")
    try:
        safety = float(d["safety"])
        net = float(d.get("net", safety))
    except (TypeError, ValueError) as e:
        raise DataFormatError(f"{where}: field 'safety'/'net' is not a number") from e
    if not 1.0 <= safety <= 5.0:
        raise DataFormatError(f"{where}: field 'safety' = {safety} must be in [1, 5]")
    return PathRecord(
        id=str(d["id"]),
        domain=d["domain"],
        scenario_type=str(d.get("scenario_type", "")),
        query=str(d["query"]),
        path=tuple(path),
        safety=safety,
        net=net,
        step_safety=tuple(float(x) for x in steps),
        embedding=tuple(float(x) for x in emb),
        embedding_model=str(d["embedding_model"]),
        severity=tuple(float(x) for x in sev),
        gains=tuple(float(x) for x in gains),
    )


class PathLibrary:
    """Stored plans and their query embeddings, with cosine retrieval.

    Args:
        records: The plans (all embedded by the same model).
    """

    def __init__(self, records: Sequence[PathRecord]) -> None:
        if not records:
            raise ConfigError("a PathLibrary needs at least one record")
        models = {r.embedding_model for r in records}
        dims = {len(r.embedding) for r in records}
        if len(models) != 1 or len(dims) != 1:
            raise ConfigError(f"library records mix embedding models {sorted(models)} / sizes {sorted(dims)}")
        self.records = list(records)
        self.embedding_model = models.pop()
        emb = np.array([r.embedding for r in records], dtype=np.float32)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        self.embeddings = emb / np.where(norms > 0, norms, 1.0)
        self.domains = np.array([DOMAINS.index(r.domain) for r in records], dtype=np.int64)
        self.safety = np.array([r.safety for r in records])
        self.severity = np.array([r.severity if r.severity else (np.nan,) * len(ATTRIBUTES) for r in records])

    def __len__(self) -> int:
        return len(self.records)

    def save(self, path: str | Path) -> None:
        """Write the library as JSONL."""
        with open(path, "w", encoding="utf-8") as fh:
            for r in self.records:
                fh.write(json.dumps(r.to_dict()) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> PathLibrary:
        """Read a JSONL library (errors name the file, line and field)."""
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"no path library at {p}; build one with PathLibrary.build(...).save({str(p)!r})")
        records = []
        with open(p, encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                if line.strip():
                    records.append(parse_record(line, str(p), i))
        return cls(records)

    def retrieve(
        self, embedding: np.ndarray, *, k: int = 5, domain: str | None = None
    ) -> list[tuple[PathRecord, float]]:
        """The ``k`` stored queries nearest to ``embedding`` (cosine), ranked by offline safety (best first).

        With ``domain``, only records of that domain are searched (all records when it has none).
        """
        if k < 1:
            raise ConfigError(f"retrieve k = {k} must be >= 1")
        e = np.asarray(embedding, dtype=np.float32).reshape(-1)
        if e.shape[0] != self.embeddings.shape[1]:
            raise ConfigError(
                f"query embedding has {e.shape[0]} dimensions but the library ({self.embedding_model}) has "
                f"{self.embeddings.shape[1]}; embed with the library's model"
            )
        e = e / max(float(np.linalg.norm(e)), 1e-12)
        cand = np.arange(len(self.records))
        if domain is not None:
            same = np.flatnonzero(self.domains == DOMAINS.index(domain))
            if len(same):
                cand = same
        sims = self.embeddings[cand] @ e
        top = cand[np.argsort(-sims, kind="stable")[:k]]
        top = top[np.argsort(-self.safety[top], kind="stable")]
        return [(self.records[i], float(self.embeddings[i] @ e)) for i in top]

    def query_similarity(self, embedding: np.ndarray) -> np.ndarray:
        """Cosine similarity of ``embedding`` to every stored query ``(len(self),)``."""
        e = np.asarray(embedding, dtype=np.float32).reshape(-1)
        return self.embeddings @ (e / max(float(np.linalg.norm(e)), 1e-12))

    @classmethod
    def build(
        cls,
        scenarios: Sequence[Scenario],
        judge: Judge,
        *,
        featurizer: str | Featurizer = "hashing",
        prior: Prior | None = None,
        config: MCTSConfig | None = None,
        question_cost: CostSpec = DEFAULT_QUESTION_COST,
        budget: int | None = None,
        seed: int = 0,
    ) -> PathLibrary:
        """Plan every scenario with its true profile (``plan_true_profile``) and store the best paths.

        Args:
            scenarios: Training scenarios (only the ``train`` split is used).
            judge: Scores the plans (the judge of the env the library is for).
            featurizer: Embeds the queries (the agent must use the same one online).
            prior: The planner's prior (default: learned from these scenarios when the judge has full
                tables, else uniform); an ``LLMPrior`` reproduces the paper's LLM-guided search.
            config: Planner hyper-parameters (default: the paper's, T = 300, c = 0.5, depth 5).
            question_cost, budget: As the env's (the planner maximizes safety minus question costs).
            seed: Seed of the search.
        """
        train = [s for s in scenarios if s.split == "train"]
        if not train:
            raise ConfigError(f"PathLibrary.build got {len(scenarios)} scenarios but none of the 'train' split")
        config = config or MCTSConfig()
        feat = make_featurizer(featurizer)
        model = EpisodeModel(train, judge, question_cost=question_cost, budget=budget)
        rows = np.arange(len(train))
        if prior is None:
            if hasattr(model.bound, "table"):
                prior = LearnedPrior.from_tables(
                    net_tables(model, rows), np.array([s.domain_index for s in train]), min(config.budget, model.budget)
                )
            else:
                prior = UniformPrior()
        res = plan_true_profile(model, rows, prior=prior, config=config, seed=seed)
        # Safety of every prefix of every path, and of each path's set without each of its attributes
        # (leave-one-out), in one batched judge call.
        pr, pm, where = [], [], []
        for i, path in enumerate(res.paths):
            m = 0
            pr.append(i)
            pm.append(0)
            for a in path:
                m |= 1 << a
                pr.append(i)
                pm.append(m)
            for a in path:
                pr.append(i)
                pm.append(m & ~(1 << a))
            where.append(len(pr))
        safety = model.safety(np.array(pr), np.array(pm))
        emb = feat([s.query for s in train])
        records = []
        start = 0
        for i, (s, path) in enumerate(zip(train, res.paths, strict=True)):
            block = safety[start : where[i]]
            start = where[i]
            steps, without = block[: len(path) + 1], block[len(path) + 1 :]
            final = int(res.masks[i])
            records.append(
                PathRecord(
                    id=s.id,
                    domain=s.domain,
                    scenario_type=s.scenario_type,
                    query=s.query,
                    path=tuple(ATTRIBUTES[a] for a in path),
                    safety=float(steps[-1]),
                    net=float(steps[-1] - MASK_BITS[final] @ model.costs),
                    step_safety=tuple(float(x) for x in steps),
                    embedding=tuple(float(x) for x in emb[i]),
                    embedding_model=feat.name,
                    severity=tuple(s.severity_vector),
                    gains=tuple(float(steps[-1] - x) for x in without),
                )
            )
        logger.info("built a path library of %d plans (%s, judge %s)", len(records), feat.name, judge.name)
        return cls(records)


_BUILD_CACHE: OrderedDict[str, PathLibrary] = OrderedDict()


def build_library_cached(
    scenarios: Sequence[Scenario],
    judge: Judge,
    *,
    featurizer: Featurizer,
    config: MCTSConfig,
    question_cost: np.ndarray,
    budget: int,
    seed: int = 0,
) -> PathLibrary:
    """``PathLibrary.build`` memoized per process (keyed by judge name, scenario ids, featurizer, config,
    costs, budget and seed), so several agents and evaluations share one offline stage."""
    h = hashlib.sha256()
    for part in (
        judge.name,
        featurizer.name,
        repr(config),
        np.asarray(question_cost).tobytes().hex(),
        str(budget),
        str(seed),
    ):
        h.update(part.encode())
    for s in scenarios:
        h.update(s.id.encode())
    key = h.hexdigest()
    hit = _BUILD_CACHE.get(key)
    if hit is None:
        hit = PathLibrary.build(
            scenarios,
            judge,
            featurizer=featurizer,
            config=config,
            question_cost=question_cost,
            budget=budget,
            seed=seed,
        )
        _BUILD_CACHE[key] = hit
        while len(_BUILD_CACHE) > 4:
            _BUILD_CACHE.popitem(last=False)
    return hit


__all__ = ["PathLibrary", "PathRecord", "build_library_cached", "parse_record"]
