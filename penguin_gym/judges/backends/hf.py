"""``Transformers``: a local Hugging Face causal LM with its chat template and batched generation.

torch and transformers are imported in the constructor (``pip install "penguin-gym[llm]"``). Batches
share their prompt's prefix through ``shared_prefix`` where the installed transformers is one that
layer was tested on, and are plain left-padded batches otherwise: the same replies either way.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from penguin_gym.error import BackendError, ConfigError, DependencyNotInstalled, RequestError
from penguin_gym.judges.backends import shared_prefix
from penguin_gym.judges.backends.base import (
    _INSTALL_HINT,
    Conversation,
    ItemReply,
    _check_conversations,
    _check_sampling,
    _check_seeds,
    _suffix,
    redact_credentials,
)
from penguin_gym.judges.backends.shared_prefix import _SharedPrefixUnsupported

logger = logging.getLogger(__name__)

_PREFILL_MODES = ("auto", "ragged", "padded", "plain")


class Transformers:
    """A local Hugging Face causal LM, with its chat template and batched generation.

    Conversations are rendered with the tokenizer's chat template, sorted by length (less padding) and
    generated ``batch_size`` at a time. The rows of a batch share a prefix (a judge prompt's system
    message, rubric and output format, about half of it): it is prefilled once and its keys and values
    serve every row, which is laid out as ``prefix | padding | own tokens`` so that each continuation
    starts at the same column. On CPU the rows' own tokens are prefilled in groups small enough for
    their attention scores to stay in cache, and decoding reads the prefix's keys and values once per
    step for the whole batch instead of once per row (``prefill="auto"``). The replies are the ones
    each conversation gets on its own (the tests check it to float64 precision). Models whose cache is
    not a plain key/value cache (sliding windows, recurrent layers), and every model on a transformers
    outside the versions the shared-prefix layer was tested on (``shared_prefix.TESTED_TRANSFORMERS``,
    logged once), get plain left-padded batches. While a batch decodes, the model's attention
    implementation is switched to the shared-prefix one and back: do not run the same model object
    from another thread meanwhile.

    Decoding is the same on every backend: greedy at ``temperature == 0``, else plain temperature
    sampling over the whole distribution (no top-k or top-p), as an OpenAI-compatible server does by
    default; the model's own ``generation_config`` sampling defaults (HF's ``top_k=50``, a model's
    ``top_p=0.9``) do not apply. Sampling inverts the cumulative distribution of ``softmax(logits / T)``
    with one uniform draw per row from the backend's own generator (an exact draw; on CPU batches a
    third of the cost of Gumbel noise over the vocabulary and less than ``torch.multinomial``).

    Args:
        model: A model id on the Hub, a local directory, a local ``.gguf`` file (llama.cpp's format:
            the model and its tokenizer are read from it, dequantized; needs ``pip install gguf``), or
            a loaded ``PreTrainedModel``.
        tokenizer: A tokenizer (default: loaded from ``model``'s id, path or GGUF file).
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``, or ``"auto"`` (spread over devices with
            accelerate's ``device_map="auto"``). Default: CUDA when available, else CPU.
        dtype: ``"auto"``, ``"float32"``, ``"bfloat16"``, ``"float16"`` or a ``torch.dtype`` (default:
            ``"auto"`` for loaded ids, unchanged for model objects).
        batch_size: Conversations per ``generate`` call.
        chat_template: A Jinja chat template, for tokenizers without one (base models).
        trust_remote_code: Passed to ``from_pretrained``.
        seed: When set, each ``chat`` call samples from a generator seeded with it (repeatable replies);
            the global torch RNG is never touched.
        name: The identity in judge names and caches (default ``"hf:<model id or path>"``); the dtype,
            the seed and a GGUF file are appended to it either way.
        gguf_file: A GGUF file inside the repository or folder ``model`` names (for a Hub repository of
            GGUF files; a path to a ``.gguf`` file needs none).
        model_kwargs: More ``from_pretrained`` arguments (``attn_implementation``, ``quantization_config``...).
        prefill: ``"auto"`` (the above; on GPUs the rows' own tokens are prefilled in one padded batch and
            the prefix is copied to each row for decoding), ``"padded"``, ``"ragged"`` (each row's own
            tokens on their own), or ``"plain"`` (no shared prefix: one left-padded ``generate``).

    Attributes:
        generate_calls: ``generate`` calls so far.
    """

    def __init__(
        self,
        model: str | Any,
        *,
        tokenizer: Any = None,
        device: str | None = None,
        dtype: str | Any = None,
        batch_size: int = 8,
        chat_template: str | None = None,
        trust_remote_code: bool = False,
        seed: int | None = None,
        name: str | None = None,
        model_kwargs: Mapping[str, Any] | None = None,
        prefill: Literal["auto", "ragged", "padded", "plain"] = "auto",
        gguf_file: str | None = None,
    ) -> None:
        try:
            import torch
            import transformers
        except ImportError as e:
            raise DependencyNotInstalled(
                f"the transformers backend needs torch and transformers: {_INSTALL_HINT}"
            ) from e
        if batch_size < 1:
            raise ConfigError(f"Transformers: batch_size = {batch_size} must be >= 1")
        if prefill not in _PREFILL_MODES:
            raise ConfigError(f"Transformers: prefill = {prefill!r}; valid: {', '.join(map(repr, _PREFILL_MODES))}")
        self._torch = torch
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        torch_dtype = _torch_dtype(torch, dtype)
        if isinstance(model, str):
            model_id = model
            if model.lower().endswith(".gguf"):
                path = Path(model).expanduser()
                if not path.is_file():
                    raise ConfigError(f"Transformers: no GGUF file at {model!r}")
                if gguf_file is not None:
                    raise ConfigError("Transformers: give either a .gguf path or gguf_file=, not both")
                model, gguf_file = str(path.parent), path.name
            kwargs: dict[str, Any] = dict(model_kwargs or {})
            kwargs["trust_remote_code"] = trust_remote_code
            tokenizer_kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code}
            if gguf_file is not None:
                try:
                    import accelerate  # noqa: F401
                    import gguf  # noqa: F401
                except ImportError as e:
                    raise DependencyNotInstalled(
                        f"Transformers: reading the GGUF file {gguf_file!r} needs the gguf and accelerate packages: "
                        f"pip install gguf accelerate (both in {_INSTALL_HINT.removeprefix('pip install ')})"
                    ) from e
                kwargs["gguf_file"] = tokenizer_kwargs["gguf_file"] = gguf_file
            version = re.match(r"(\d+)\.(\d+)", transformers.__version__)
            new_api = version is None or (int(version[1]), int(version[2])) >= (4, 56)
            dtype_key = "dtype" if new_api else "torch_dtype"  # renamed in transformers 4.56
            kwargs[dtype_key] = "auto" if torch_dtype is None else torch_dtype
            if device == "auto":
                kwargs["device_map"] = "auto"
            try:
                loaded = transformers.AutoModelForCausalLM.from_pretrained(model, **kwargs)
                if tokenizer is None:
                    tokenizer = transformers.AutoTokenizer.from_pretrained(model, **tokenizer_kwargs)
            except (OSError, ValueError) as e:
                raise ConfigError(f"Transformers: cannot load model {model!r}: {e}") from e
            lm: Any = loaded
        else:
            model_id = str(getattr(getattr(model, "config", None), "_name_or_path", "") or "in-memory")
            if tokenizer is None:
                raise ConfigError("Transformers: a model object needs its tokenizer (tokenizer=...)")
            lm = model.to(torch_dtype) if torch_dtype is not None else model
        if device != "auto":
            lm = lm.to(device)
        lm.eval()
        if chat_template is not None:
            tokenizer.chat_template = chat_template
        if not getattr(tokenizer, "chat_template", None):
            raise ConfigError(
                f"Transformers: the tokenizer of {model_id!r} has no chat template; pass chat_template='...' "
                "(a Jinja template over `messages`) or use an instruction-tuned model"
            )
        tokenizer.padding_side = "left"
        if tokenizer.pad_token_id is None:
            if tokenizer.eos_token is None:
                raise ConfigError(f"Transformers: the tokenizer of {model_id!r} has neither a pad nor an eos token")
            tokenizer.pad_token = tokenizer.eos_token
        self.model = lm
        self.tokenizer = tokenizer
        self.device = device
        self.batch_size = int(batch_size)
        self.seed = seed
        self.gguf_file = gguf_file
        settings: dict[str, Any] = {"dtype": str(getattr(lm, "dtype", torch_dtype or "auto")).removeprefix("torch.")}
        if seed is not None:
            settings["seed"] = int(seed)
        if gguf_file is not None and not model_id.lower().endswith(".gguf"):
            settings["gguf"] = gguf_file
        if chat_template is not None:
            settings["chat_template"] = chat_template
        self.name = (name or f"hf:{model_id}") + _suffix(settings)
        self.generate_calls = 0
        self.prefill = prefill
        # No shared prefix asked for: no version check either (nothing to fall back from).
        self._cache_api = None if prefill == "plain" else shared_prefix.cache_api(lm, self.name)
        self._shared_decoding = True
        self._lock = threading.Lock()
        self._max_positions = getattr(getattr(lm, "config", None), "max_position_embeddings", None)

    def __repr__(self) -> str:
        return f"Transformers(name={self.name!r}, device={self.device!r}, batch_size={self.batch_size})"

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.update(_torch=None, _lock=None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        import torch

        self.__dict__.update(state)
        self._torch = torch
        self._lock = threading.Lock()

    def _render(self, conv: Conversation) -> str:
        return str(
            self.tokenizer.apply_chat_template(
                [{"role": m["role"], "content": m["content"]} for m in conv], tokenize=False, add_generation_prompt=True
            )
        )

    def chat_each(
        self,
        conversations: Sequence[Sequence[Mapping[str, str]]],
        *,
        temperature: float = 0.7,
        max_tokens: int = 512,
        seeds: Sequence[int | None] | None = None,
        fields: Mapping[str, Any] | None = None,
    ) -> Iterator[ItemReply]:
        """The replies batch by batch, conversations that share a seed generated together; a failed
        batch is the failure of its items (``RequestError``, not permanent). No request fields: local
        generation has no constrained decoding here (``ConfigError``)."""
        if fields:
            raise ConfigError(
                f"{self.name}: local generation takes no request fields ({sorted(fields)}); constrained "
                "output needs a server that takes a JSON schema or a grammar (vLLM, llama.cpp)"
            )
        _check_sampling(temperature, max_tokens, self.name)
        _check_conversations(conversations, self.name)
        seeds = _check_seeds(seeds, len(conversations), self.name)
        groups: dict[int | None, list[int]] = {}
        for i, seed in enumerate(seeds):
            groups.setdefault(seed, []).append(i)
        for seed, members in groups.items():
            try:
                replies = self._chat([conversations[i] for i in members], temperature, max_tokens, seed)
            except BackendError as e:
                for i in members:
                    yield i, RequestError(str(e), cause="server_error", permanent=False)
                continue
            yield from zip(members, replies, strict=True)

    def chat(
        self, conversations: Sequence[Sequence[Mapping[str, str]]], *, temperature: float = 0.7, max_tokens: int = 512
    ) -> list[str]:
        _check_sampling(temperature, max_tokens, self.name)
        _check_conversations(conversations, self.name)
        return self._chat(conversations, temperature, max_tokens, None)

    def _chat(
        self,
        conversations: Sequence[Sequence[Mapping[str, str]]],
        temperature: float,
        max_tokens: int,
        seed: int | None,
    ) -> list[str]:
        """The replies, sampled from a generator seeded with ``seed`` (else the backend's ``seed``)."""
        if not conversations:
            return []
        from transformers import GenerationConfig, LogitsProcessorList

        torch = self._torch
        prompts = [self._render(c) for c in conversations]
        ids = [self.tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
        for i, seq in enumerate(ids):
            if self._max_positions and len(seq) + max_tokens > self._max_positions:
                raise BackendError(
                    f"{self.name}: conversation {i} is {len(seq)} tokens; with max_tokens={max_tokens} it exceeds "
                    f"the model's {self._max_positions} positions (shorten the prompt or lower max_tokens)"
                )
        order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))
        out: list[str | None] = [None] * len(ids)
        eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        config = GenerationConfig(
            max_new_tokens=max_tokens,
            do_sample=False,
            num_beams=1,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=eos if eos is not None else self.tokenizer.eos_token_id,
        )
        with self._lock:  # one generate at a time per model: they would only contend for the device
            processors = LogitsProcessorList()
            if temperature > 0:
                generator = torch.Generator(device=self.model.device)
                seed = self.seed if seed is None else seed
                if seed is None:
                    generator.seed()
                else:
                    generator.manual_seed(seed)
                processors.append(_InverseCDFSampling(temperature, generator))
            for start in range(0, len(order), self.batch_size):
                chunk = order[start : start + self.batch_size]
                try:
                    with torch.inference_mode():
                        gen, prompt_len = self._generate([ids[i] for i in chunk], config, processors)
                except (RuntimeError, ValueError) as e:
                    raise BackendError(f"{self.name}: generation failed on a batch of {len(chunk)}: {e}") from e
                self.generate_calls += 1
                texts = self.tokenizer.batch_decode(gen[:, prompt_len:], skip_special_tokens=True)
                for i, text in zip(chunk, texts, strict=True):
                    out[i] = text.strip()
        return [t if t is not None else "" for t in out]

    def _generate(self, rows: list[list[int]], config: Any, processors: Any) -> tuple[Any, int]:
        """Generate for one batch of token rows (longest first); returns ``(sequences, prompt length)``.

        ``prefill="plain"``, a single row, or a transformers outside ``shared_prefix.TESTED_TRANSFORMERS``:
        one left-padded ``generate``. Otherwise the rows' longest common prefix (a judge prompt's system
        message and rubric) is prefilled once and its key/value cache shared by every row, laid out as
        ``prefix | padding | rest`` (``shared_prefix.prefill_rows``); the rests are prefilled all together
        (``"padded"``, the default on accelerators), one by one (``"ragged"``), or on CPU (``"auto"``) in
        groups small enough that their attention scores stay in cache, and then the whole batch decodes
        at once, on CPU reading the prefix once per step (``shared_prefix.decode_shared``). Models whose
        cache is not a plain key/value cache (sliding windows, recurrent state) fall back to ``"plain"``.
        """
        device = self.model.device
        mode = self.prefill if self.prefill != "auto" or device.type == "cpu" else "padded"
        if len(rows) > 1 and max(len(r) for r in rows) > 1 and mode != "plain" and self._cache_api is not None:
            try:
                return self._generate_shared(rows, mode, config, processors)
            except _SharedPrefixUnsupported as e:
                logger.info("%s: no shared-prefix prefill for a %s cache; plain batched generation", self.name, e)
                self._cache_api = None
        batch = self.tokenizer.pad({"input_ids": rows}, padding=True, return_tensors="pt")
        input_ids = batch["input_ids"].to(device)
        gen = self.model.generate(
            input_ids=input_ids,
            attention_mask=batch["attention_mask"].to(device),
            generation_config=config,
            logits_processor=processors,
        )
        return gen, input_ids.shape[1]

    def _generate_shared(self, rows: list[list[int]], mode: str, config: Any, processors: Any) -> tuple[Any, int]:
        api = self._cache_api
        assert api is not None
        batch = shared_prefix.prefill_rows(
            self.model,
            api,
            rows,
            pad_token_id=self.tokenizer.pad_token_id,
            mode=mode,
            shared_decoding=self._shared_decoding,
        )
        if batch.shared_decoding:
            try:
                return shared_prefix.decode_shared(self.model, api, batch, config, processors), batch.longest
            except _SharedPrefixUnsupported as e:
                logger.info("%s: no shared-prefix decoding (%s); the prefix is copied to every row", self.name, e)
                self._shared_decoding = False
        return shared_prefix.decode_copied(self.model, api, batch, config, processors), batch.longest


class _InverseCDFSampling:
    """A logits processor that turns greedy decoding into temperature sampling: each row's token is
    drawn from ``softmax(scores / T)`` by inverting its cumulative distribution at one uniform draw
    (in float64), and returned as the only finite score, so ``generate``'s argmax picks it."""

    def __init__(self, temperature: float, generator: Any) -> None:
        self.temperature = float(temperature)
        self.generator = generator

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        cdf = torch.softmax(scores.float() / self.temperature, dim=-1).double().cumsum_(dim=-1)
        u = torch.rand((scores.shape[0], 1), generator=self.generator, device=scores.device, dtype=torch.float64)
        token = torch.searchsorted(cdf, u * cdf[:, -1:], right=True).clamp_(max=scores.shape[-1] - 1)
        out = torch.full(scores.shape, float("-inf"), device=scores.device, dtype=torch.float32)
        return out.scatter_(1, token, 0.0)


def _torch_dtype(torch: Any, dtype: str | Any) -> Any:
    if dtype is None or dtype == "auto":
        return None
    if isinstance(dtype, str):
        value = getattr(torch, dtype.removeprefix("torch."), None)
        if not isinstance(value, torch.dtype):
            raise ConfigError(f"Transformers: unknown dtype {dtype!r}; valid: 'auto', 'float32', 'bfloat16', 'float16'")
        return value
    return dtype


def from_spec(spec: str, arg: str | None, **kwargs: Any) -> Transformers:
    """The registry's factory for ``"hf:<model id, local path or .gguf file>"``."""
    if not arg:
        raise ConfigError(
            f"backend spec {redact_credentials(spec)!r}: give a model id or path, e.g. 'hf:Qwen/Qwen2.5-0.5B-Instruct'"
        )
    return Transformers(arg, **kwargs)
