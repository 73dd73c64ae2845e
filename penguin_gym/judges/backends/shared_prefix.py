"""Shared-prefix batches for the transformers backend: the rows of a batch share a prefix (a judge
prompt's system message, rubric and output format, about half of it), which is prefilled once and whose
keys and values serve every row; on CPU, decoding reads them once per step for the whole batch.

The layer reaches into transformers' internals: it subclasses the cache layers (``DynamicLayer``),
registers an attention function in the private registry (``AttentionInterface._global_mapping``) and
switches ``config._attn_implementation`` while a batch decodes. Those change between releases, so it is
used only on the transformers versions it was tested on (``TESTED_TRANSFORMERS``: the replies equal the
ones each conversation gets on its own, ``tests/test_transformers_backend.py``); on any other version
the backend generates plain left-padded batches and says why once (``cache_api``). The replies are the
same either way; only the speed differs (``benchmarks/judge_batching.py``).
"""

from __future__ import annotations

import inspect
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

#: The transformers releases this layer was tested on, as a pip specifier (the ``[llm]`` extra pins it):
#: ``tests/test_transformers_backend.py`` passes on 5.0.0, 5.12.1, 5.18.0 and 5.24.0. On 4.57 the cache
#: layers take other arguments (``DynamicLayer.lazy_initialization``) and the layer would fail.
TESTED_TRANSFORMERS = ">=5.0,<5.25"
#: On CPU, the most attention scores (rows x heads x queries x keys) one prefill forward computes: past
#: a few million, a masked batch runs out of cache and costs more than its rows would one by one.
_CPU_PREFILL_SCORES = 4_000_000
_SHARED_ATTENTION = "penguin_shared_prefix"
#: The transformers versions already reported as untested (one log line per process and version).
_REPORTED: set[str] = set()


def untested_reason(version: str) -> str | None:
    """Why transformers ``version`` is outside ``TESTED_TRANSFORMERS`` (``None``: inside it).

    Example:
        >>> untested_reason("5.24.0") is None
        True
        >>> untested_reason("4.57.1")
        "transformers 4.57.1 is outside the range the shared-prefix batching was tested on ('>=5.0,<5.25')"
    """
    bounds = re.fullmatch(r">=([\d.]+),<([\d.]+)", TESTED_TRANSFORMERS)
    assert bounds is not None, TESTED_TRANSFORMERS
    have, low, high = _release(version), _release(bounds[1]), _release(bounds[2])
    if have is not None and low is not None and high is not None and low <= have < high:
        return None
    return f"transformers {version} is outside the range the shared-prefix batching was tested on ({TESTED_TRANSFORMERS!r})"


def _release(version: str) -> tuple[int, int, int] | None:
    """``"5.24"``, ``"5.24.0"`` -> ``(5, 24, 0)``; ``None`` for a pre-release or local build
    (``5.25.0.dev0``, ``5.24.0+cu124``): those are not the releases the range was tested on."""
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.(\d+))?", version.strip())
    if match is None:
        return None
    return int(match[1]), int(match[2]), int(match[3] or 0)


def cache_api(model: Any, name: str) -> _CacheAPI | None:
    """How ``model`` runs over a key/value cache on this transformers, or ``None``: plain batches, when
    transformers is outside ``TESTED_TRANSFORMERS`` (logged once per version) or the model's forward
    takes no cache and positions."""
    import transformers

    reason = untested_reason(transformers.__version__)
    if reason is not None:
        if transformers.__version__ not in _REPORTED:
            _REPORTED.add(transformers.__version__)
            logger.warning("%s: %s; plain left-padded batches (the same replies, slower)", name, reason)
        return None
    return _CacheAPI.detect(model)


@dataclass
class _Batch:
    """A batch laid out as ``prefix | padding | own tokens`` with its caches prefilled.

    Attributes:
        input_ids, attention: ``(rows, longest)`` token ids and mask, on the model's device.
        prefix: The length of the rows' longest common prefix.
        shared: The prefix's per-layer ``(keys, values)`` (one row), or ``None`` without a prefix.
        layers: The rows' per-layer ``(keys, values)`` from column ``base`` to ``longest - 1``.
        base: ``prefix`` with shared-prefix decoding (the cache holds the rows' own columns), else 0.
        shared_decoding: Whether to decode with ``_SharedPrefixDecoding``.
    """

    input_ids: Any
    attention: Any
    prefix: int
    shared: list[tuple[Any, Any]] | None
    layers: list[tuple[Any, Any]]
    base: int
    shared_decoding: bool

    @property
    def longest(self) -> int:
        return int(self.input_ids.shape[1])


def prefill_rows(
    model: Any, api: _CacheAPI, rows: list[list[int]], *, pad_token_id: int, mode: str, shared_decoding: bool
) -> _Batch:
    """Lay out a batch of token rows (longest first) and prefill it: the rows' longest common prefix once,
    then each row but its last token (which ``generate`` runs), right-aligned at column ``longest - 1``
    (positions follow the attention mask, so each row's positions are exactly its unpadded ones). The
    rests are prefilled all together (``"padded"``), one by one (``"ragged"``) or in groups small enough
    for their attention scores to stay in cache (``"auto"``, on CPU); ``shared_decoding`` asks for
    shared-prefix decoding where the model allows it.
    """
    import torch

    device = model.device
    n, longest, shortest = len(rows), max(len(r) for r in rows), min(len(r) for r in rows)
    first, prefix = rows[0], 0
    while prefix < shortest - 1 and all(r[prefix] == first[prefix] for r in rows):
        prefix += 1
    pad = pad_token_id
    input_ids = torch.full((n, longest), pad, dtype=torch.long)
    attention = torch.zeros((n, longest), dtype=torch.long)
    for i, r in enumerate(rows):
        rest = len(r) - prefix
        input_ids[i, :prefix] = torch.tensor(r[:prefix])
        input_ids[i, longest - rest :] = torch.tensor(r[prefix:])
        attention[i, :prefix] = 1
        attention[i, longest - rest :] = 1
    input_ids, attention = input_ids.to(device), attention.to(device)
    shared = _prefill(model, api, input_ids[:1, :prefix], attention[:1, :prefix], None) if prefix else None
    # Every row but its last token (which ``generate`` runs) goes into the cache, right-aligned at
    # column ``longest - 1``; columns of padding stay zero (masked, never read). With shared-prefix
    # decoding the cache holds the rows' own columns only (from ``base = prefix``).
    shared_decoding = (
        shared is not None and mode == "auto" and shared_decoding and _SharedPrefixDecoding.available(model)
    )
    base = prefix if shared_decoding else 0
    rests = [len(r) - prefix - 1 for r in rows]
    layers: list[tuple[Any, Any]] = []
    for group in prefill_groups(model, rests, prefix, mode):
        width = rests[group[0]]  # the group's longest rest (rows are longest first)
        if width == 0:
            continue
        lo, hi = group[0], group[-1] + 1
        cols = slice(longest - 1 - width, longest - 1)
        mask = torch.cat([attention[lo:hi, :prefix], attention[lo:hi, cols]], dim=1)
        kv = _prefill(model, api, input_ids[lo:hi, cols], mask, shared)
        if not layers:
            layers = [_zeros_like_batch(k, n, longest - 1 - base) for k, _ in kv]
        for (big_k, big_v), (k, v) in zip(layers, kv, strict=True):
            big_k[lo:hi, :, cols.start - base : cols.stop - base] = k[:, :, prefix:]
            big_v[lo:hi, :, cols.start - base : cols.stop - base] = v[:, :, prefix:]
    if shared is not None and not layers:
        layers = [_zeros_like_batch(k, n, longest - 1 - base) for k, _ in shared]
    return _Batch(input_ids, attention, prefix, shared, layers, base, shared_decoding)


def decode_shared(model: Any, api: _CacheAPI, batch: _Batch, config: Any, processors: Any) -> Any:
    """``generate`` with the prefix's keys and values held once (``_SharedPrefixDecoding``); raises
    ``_SharedPrefixUnsupported`` when the model's attention does not go through the registry."""
    assert batch.shared is not None
    input_ids, attention, prefix, longest = batch.input_ids, batch.attention, batch.prefix, batch.longest
    kwargs = {"input_ids": input_ids, "attention_mask": attention, "generation_config": config}
    decoding = _SharedPrefixDecoding(
        model, batch.shared, batch.layers, prefix, attention[:, prefix : longest - 1], config.max_new_tokens + 1
    )
    with decoding as cache:
        gen = model.generate(logits_processor=processors, **kwargs, **{api.kwarg: cache})
    if decoding.calls < len(batch.shared):  # the model's attention does not go through the registry
        raise _SharedPrefixUnsupported(f"attention of {type(model).__name__}")
    return gen


def decode_copied(model: Any, api: _CacheAPI, batch: _Batch, config: Any, processors: Any) -> Any:
    """``generate`` over a plain cache into which the prefix's keys and values are copied for every row."""
    import torch

    shared, layers, prefix, n = batch.shared, batch.layers, batch.prefix, batch.input_ids.shape[0]
    kwargs = {"input_ids": batch.input_ids, "attention_mask": batch.attention, "generation_config": config}
    if shared is not None and batch.base:  # the prefix, copied to every row, in front of the rows' own columns
        layers = [
            (torch.cat([pk.expand(n, -1, -1, -1), k], dim=2), torch.cat([pv.expand(n, -1, -1, -1), v], dim=2))
            for (pk, pv), (k, v) in zip(shared, layers, strict=True)
        ]
    elif shared is not None:
        for (big_k, big_v), (k, v) in zip(layers, shared, strict=True):
            big_k[:, :, :prefix] = k
            big_v[:, :, :prefix] = v
    return model.generate(logits_processor=processors, **kwargs, **{api.kwarg: api.build(layers)})


def prefill_groups(model: Any, rests: list[int], prefix: int, mode: str) -> list[list[int]]:
    """Consecutive rows prefilled together: all (``"padded"``), one by one (``"ragged"``), or on CPU
    (``"auto"``) as many as keep a group's attention scores (rows x heads x its longest rest x the
    keys) under ``_CPU_PREFILL_SCORES`` elements."""
    n = len(rests)
    if mode == "padded":
        return [list(range(n))]
    if mode == "ragged":
        return [[i] for i in range(n)]
    heads = int(getattr(getattr(model, "config", None), "num_attention_heads", 1) or 1)
    groups: list[list[int]] = []
    for i in range(n):
        if groups:
            width = rests[groups[-1][0]]  # the group's longest rest: rows come longest first
            if (len(groups[-1]) + 1) * heads * width * (prefix + width) <= _CPU_PREFILL_SCORES:
                groups[-1].append(i)
                continue
        groups.append([i])
    return groups


def _prefill(
    model: Any, api: _CacheAPI, input_ids: Any, attention_mask: Any, past: list[tuple[Any, Any]] | None
) -> list[tuple[Any, Any]]:
    """Per-layer ``(keys, values)`` after running ``input_ids`` (left-padded rows; ``attention_mask``
    covers ``past`` and them) after ``past`` (one row's cache, shared by all rows)."""
    n = input_ids.shape[0]
    cache = api.build([(k.expand(n, -1, -1, -1), v.expand(n, -1, -1, -1)) for k, v in past or []])
    positions = (attention_mask.cumsum(dim=1) - 1).clamp(min=0)[:, -input_ids.shape[1] :]
    mask = attention_mask
    if getattr(model.config, "_attn_implementation", None) in ("sdpa", "eager"):
        mask = _prefill_mask(attention_mask, input_ids.shape[1], model.dtype)
    kwargs: dict[str, Any] = {api.kwarg: cache}
    if api.logits_kwarg:
        kwargs[api.logits_kwarg] = 1  # the prefill's logits are not needed: keep one position
    out = model(input_ids=input_ids, attention_mask=mask, position_ids=positions, use_cache=True, **kwargs)
    return api.tensors(getattr(out, api.kwarg))  # the output names the cache as the input does


class _SharedPrefixDecoding:
    """A context in which ``model.generate`` decodes a batch whose rows share a prefix, reading the
    prefix's keys and values once per step instead of once per row.

    The cache holds each row's own part only (its columns after the prefix, padded on the left); every attention
    module gets the prefix's ``(keys, values)`` and the padding's additive mask, and the model's attention
    implementation is switched to ``_shared_prefix_attention``, which attends to the prefix (one copy,
    broadcast over the rows) and to the row's own keys in one softmax. Positions come from ``generate``'s
    attention mask as usual, so the result is the same attention as over the full rows; on CPU, where
    decoding a batch of long prompts is bound by reading the cache, this halves the reads of a judge
    prompt whose rubric is half its length, and skips building a padding mask at each step.

    Needs transformers' layered caches and attention registry (transformers >= 5); ``available`` says so.
    """

    def __init__(
        self,
        model: Any,
        prefix: list[tuple[Any, Any]],
        rests: list[tuple[Any, Any]],
        prefix_len: int,
        rest_mask: Any,
        capacity: int,
    ) -> None:
        import torch

        self.model = model
        self.capacity = capacity
        self.prefix = prefix
        self.rests = rests
        self.prefix_len = prefix_len
        bias = torch.zeros(rest_mask.shape, dtype=prefix[0][0].dtype, device=rest_mask.device)
        self.bias = bias.masked_fill(rest_mask == 0, float("-inf"))[:, None, None, :]
        self._saved: Any = None
        self._modules: list[Any] = []
        #: Calls of ``_shared_prefix_attention`` so far (none: the model bypasses the registry).
        self.calls = 0

    @staticmethod
    def available(model: Any) -> bool:
        try:
            from transformers import AttentionInterface
            from transformers.cache_utils import DynamicCache, DynamicLayer  # noqa: F401
        except ImportError:
            return False
        config = getattr(model, "config", None)
        if config is None or getattr(config, "_attn_implementation", None) not in ("sdpa", "eager"):
            return False
        if _SHARED_ATTENTION not in AttentionInterface._global_mapping:
            AttentionInterface.register(_SHARED_ATTENTION, _shared_prefix_attention)
        return True

    def __enter__(self) -> Any:
        from transformers.cache_utils import DynamicCache, DynamicLayer

        prefix_len, capacity = self.prefix_len, self.capacity

        class RestLayer(DynamicLayer):
            """The rows' own keys and values, in a buffer with room for the reply (no copy per token);
            the prefix's are counted in the length but held once, elsewhere."""

            def __init__(self, keys: Any, values: Any) -> None:
                super().__init__()
                self.lazy_initialization(keys, values)
                shape = (*keys.shape[:2], keys.shape[2] + capacity, keys.shape[3])
                self.buffers = keys.new_zeros(shape), values.new_zeros(shape)
                self.length = 0
                self.update(keys, values)

            def update(self, key_states: Any, value_states: Any, *args: Any, **kwargs: Any) -> tuple[Any, Any]:
                end = self.length + key_states.shape[-2]
                if end > self.buffers[0].shape[-2]:
                    raise _SharedPrefixUnsupported(f"more than {capacity} new tokens")
                self.buffers[0][:, :, self.length : end] = key_states
                self.buffers[1][:, :, self.length : end] = value_states
                self.length = end
                self.keys, self.values = self.buffers[0][:, :, :end], self.buffers[1][:, :, :end]
                return self.keys, self.values

            def get_seq_length(self) -> int:
                return prefix_len + self.length

            def get_mask_sizes(self, query_length: int) -> tuple[int, int]:
                return self.get_seq_length() + query_length, 0

        cache = DynamicCache()
        cache.layers = [RestLayer(k, v) for k, v in self.rests]
        for module in self.model.modules():
            idx = getattr(module, "layer_idx", None)
            if isinstance(idx, int) and 0 <= idx < len(self.prefix):
                module._penguin_shared_prefix = (*self.prefix[idx], self.bias, self)
                self._modules.append(module)
        self._saved = self.model.config._attn_implementation
        self.model.config._attn_implementation = _SHARED_ATTENTION
        return cache

    def __exit__(self, *exc: Any) -> None:
        self.model.config._attn_implementation = self._saved
        for module in self._modules:
            del module._penguin_shared_prefix


def _shared_prefix_attention(
    module: Any, query: Any, key: Any, value: Any, attention_mask: Any, scaling: float | None = None, **kwargs: Any
) -> tuple[Any, None]:
    """Attention of one new token per row over a shared prefix (held once) and the row's own keys.

    ``query``: ``(rows, heads, 1, dim)``; ``key``/``value``: the rows' own part ``(rows, kv heads, n, dim)``;
    the prefix and the padding's additive mask come from ``module._penguin_shared_prefix``. Grouped-query
    heads are grouped, not repeated. Returns the output as ``(rows, 1, heads, dim)``.
    """
    import torch

    state = getattr(module, "_penguin_shared_prefix", None)
    if state is None:
        raise _SharedPrefixUnsupported(f"{type(module).__name__} has no layer_idx")
    prefix_k, prefix_v, bias, decoding = state
    unsupported = [k for k in ("softcap", "s_aux", "sliding_window") if kwargs.get(k) is not None]
    if unsupported or query.shape[2] != 1:
        raise _SharedPrefixUnsupported(f"attention with {unsupported or f'{query.shape[2]} new tokens per row'}")
    decoding.calls += 1
    rows, heads, _, dim = query.shape
    kv_heads = key.shape[1]
    scale = scaling if scaling is not None else dim**-0.5
    q = query.reshape(rows, kv_heads, heads // kv_heads, dim).float() * scale
    s_prefix = q @ prefix_k.float().transpose(-1, -2)  # (rows, kv heads, group, prefix): the prefix read once
    s_rest = q @ key.float().transpose(-1, -2)
    s_rest[..., : bias.shape[-1]] += bias  # (rows, 1, 1, initial length): -inf on the padding
    top = torch.maximum(s_prefix.amax(-1, keepdim=True), s_rest.amax(-1, keepdim=True))
    p_prefix, p_rest = (s_prefix - top).exp_(), (s_rest - top).exp_()
    norm = p_prefix.sum(-1, keepdim=True) + p_rest.sum(-1, keepdim=True)
    out = (p_prefix @ prefix_v.float() + p_rest @ value.float()) / norm
    return out.to(query.dtype).reshape(rows, heads, 1, dim).transpose(1, 2), None


def _prefill_mask(attention_mask: Any, queries: int, dtype: Any) -> Any:
    """The additive 4D mask ``(rows, 1, queries, keys)`` of a prefill whose ``queries`` last columns are
    new: causal, padding masked, and each query sees at least itself (a padding query would otherwise
    see nothing and turn NaN). A few passes over the ``rows x queries x keys`` elements, fewer than
    transformers' own mask builder makes."""
    import torch

    keys = attention_mask.shape[1]
    device = attention_mask.device
    q_pos = torch.arange(keys - queries, keys, device=device)[:, None]
    k_pos = torch.arange(keys, device=device)[None, :]
    allowed = (k_pos <= q_pos) & attention_mask[:, None, None, :].bool()
    allowed |= k_pos == q_pos
    zero = torch.zeros((), dtype=dtype, device=device)
    return torch.where(allowed, zero, torch.full((), torch.finfo(dtype).min, dtype=dtype, device=device))


def _zeros_like_batch(k: Any, n: int, length: int) -> tuple[Any, Any]:
    """Zero keys and values for ``n`` rows of ``length`` positions, shaped like layer keys ``k``."""
    shape = (n, k.shape[1], length, k.shape[3])
    return k.new_zeros(shape), k.new_zeros(shape)


class _SharedPrefixUnsupported(Exception):
    """The model's cache is not a plain per-layer key/value cache (sliding windows, recurrent state)."""


class _CacheAPI:
    """How this transformers version runs a model over a key/value cache: the keyword (``cache`` since
    transformers 5, ``past_key_values`` before; the output attribute has the same name), ``DynamicCache``
    from tensors, and the keyword that keeps only the last position's logits."""

    def __init__(self, kwarg: str, cache_class: Any, config: Any, logits_kwarg: str | None) -> None:
        self.kwarg = kwarg
        self.cache_class = cache_class
        self.config = config
        self.logits_kwarg = logits_kwarg
        init = inspect.signature(cache_class.__init__).parameters
        self.from_tensors = "ddp_cache_data" in init
        self.with_config = "config" in init

    @classmethod
    def detect(cls, model: Any) -> _CacheAPI | None:
        try:
            from transformers import DynamicCache
        except ImportError:
            return None
        try:
            params = inspect.signature(model.forward).parameters
        except (TypeError, ValueError):
            return None
        if "position_ids" not in params:
            return None
        logits = next((k for k in ("logits_to_keep", "num_logits_to_keep") if k in params), None)
        for kwarg in ("cache", "past_key_values"):
            if kwarg in params:
                api = cls(kwarg, DynamicCache, getattr(model, "config", None), logits)
                if api.from_tensors or hasattr(DynamicCache, "from_legacy_cache"):
                    return api
        return None

    def empty(self) -> Any:
        """An empty cache laid out for the model (sliding-window layers where its config has them)."""
        if self.with_config and self.config is not None:
            return self.cache_class(config=self.config)
        return self.cache_class()

    def build(self, pairs: Sequence[tuple[Any, Any]]) -> Any:
        """A cache holding per-layer ``(keys, values)`` (checked to be plain full-attention layers)."""
        if not pairs:
            return self.empty()
        if self.from_tensors:
            return self.cache_class(ddp_cache_data=list(pairs))
        return self.cache_class.from_legacy_cache(tuple(pairs))

    def tensors(self, cache: Any) -> list[tuple[Any, Any]]:
        layers = getattr(cache, "layers", None)
        if layers is not None:
            if any(getattr(layer, "is_sliding", False) or not hasattr(layer, "keys") for layer in layers):
                raise _SharedPrefixUnsupported(type(layers[0]).__name__)
            return [(layer.keys, layer.values) for layer in layers]
        if hasattr(cache, "key_cache"):
            return list(zip(cache.key_cache, cache.value_cache, strict=True))
        raise _SharedPrefixUnsupported(type(cache).__name__)
