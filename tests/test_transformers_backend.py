"""The transformers backend on a tiny Llama built here from a config (random weights, no download).

The tokenizer is a byte-level BPE trained in the test on the rubric prompts (``tokenizers``), wrapped in
``PreTrainedTokenizerFast`` with a chat template string set in the test.
"""

from __future__ import annotations

import pickle
import re
import sys

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from penguin_gym.data import ATTRIBUTES, load_scenarios  # noqa: E402
from penguin_gym.error import BackendError, ConfigError, DependencyNotInstalled, JudgeBatchError  # noqa: E402
from penguin_gym.judges.backends import Transformers, make_backend, shared_prefix  # noqa: E402
from penguin_gym.judges.llm import LLMJudge  # noqa: E402
from penguin_gym.judges.rubric import JUDGE_TEMPLATE, RUBRIC, judge_messages, responder_messages  # noqa: E402

TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)
SPECIALS = ["<pad>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
RUBRIC_REPLY = (
    "Risk Sensitivity\nScore: 4/5\nJustification: Names the risk.\nEmotional Empathy\nScore: 3/5\n"
    "Justification: Kind.\nPersonalization\nScore: 5/5\nJustification: Fits the user.\n"
    "Comprehensive Score: 12/15"
)


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: a tiny model gains nothing from more, and on a busy machine they spin."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def scenarios():
    return load_scenarios(domains="Health", n_per_domain=20)


def build(scenarios, reply: str | None = None, *, max_positions: int = 4096, seed: int = 0):
    """A tiny Llama + tokenizer. With ``reply``, the weights make it write ``reply`` after any prompt."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    corpus = [JUDGE_TEMPLATE, RUBRIC] + [m["content"] for s in scenarios[:5] for m in judge_messages(s, "")]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=1024,
            special_tokens=SPECIALS,
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    pieces = re.findall(r".*?\n|.+$", reply) if reply else []  # one added token per line (all distinct)
    assert len(set(pieces)) == len(pieces)
    tok.add_tokens([AddedToken(p, normalized=False) for p in pieces])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|end|>")
    tokenizer.chat_template = TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=max_positions,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    if pieces:
        # Zero output projections: the residual stream is the current token's embedding, so the next
        # token is a function of the current one; chain <|assistant|> -> line 1 -> ... -> <|end|>.
        chain = [tokenizer.convert_tokens_to_ids(t) for t in ["<|assistant|>", *pieces, "<|end|>"]]
        with torch.no_grad():
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            basis = torch.linalg.qr(torch.randn(32, 32))[0].T  # orthonormal rows
            for k, (cur, nxt) in enumerate(zip(chain[:-1], chain[1:], strict=True)):
                model.model.embed_tokens.weight[cur] = basis[k]
                model.lm_head.weight[nxt] = 20.0 * basis[k]
    return model, tokenizer


@pytest.fixture(scope="module")
def random_model(scenarios):
    return build(scenarios)


def _conversations(scenarios):
    return [responder_messages(s, frozenset(ATTRIBUTES[:k])) for k, s in enumerate(scenarios[:5])]


def _spy_generate(model):
    """Record the ``input_ids`` and ``attention_mask`` of every ``model.generate`` call."""
    seen = []
    original = model.generate

    def spy(**kwargs):
        seen.append((kwargs["input_ids"].clone(), kwargs["attention_mask"].clone()))
        return original(**kwargs)

    model.generate = spy
    return seen


def test_plain_batched_generation_is_left_padded_and_matches_one_by_one(scenarios, random_model):
    model, tokenizer = random_model
    convs = _conversations(scenarios)
    batched = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=2, name="tiny", prefill="plain")
    seen = _spy_generate(model)
    try:
        out_batched = batched.chat(convs, temperature=0.0, max_tokens=12)
    finally:
        del model.generate
    assert batched.generate_calls == 3 and len(seen) == 3
    ids, mask = seen[0]
    assert ids.shape[0] == 2 and not bool(mask.all())  # two prompts of different lengths
    assert bool(mask[:, -1].all())  # left padding: every row ends with a real token
    short = int(mask.sum(dim=1).argmin())
    assert int(mask[short, 0]) == 0 and int(ids[short, 0]) == tokenizer.pad_token_id
    single = pickle.loads(
        pickle.dumps(Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=1, name="tiny"))
    )
    out_single = single.chat(convs, temperature=0.0, max_tokens=12)  # a pickled copy (as in a worker process)
    assert single.generate_calls == 5
    assert out_batched == out_single
    assert all(isinstance(t, str) for t in out_batched) and any(out_batched)
    assert tokenizer.padding_side == "left"


@pytest.fixture(scope="module")
def double_model(scenarios):
    """The random model in float64: batched and one-by-one logits then agree to ~1e-15, so greedy
    replies are identical however the batch is laid out (float32 could flip a near-tie)."""
    model, tokenizer = build(scenarios, seed=1)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.mul_(25.0)  # weights of std 0.5: the reply depends on the whole prompt, not its last token
    return model.double(), tokenizer


#: The shared-prefix layer runs only on the transformers versions it was tested on; elsewhere the backend
#: falls back to plain batches (tests/test_backend_registry.py covers that fallback).
_UNTESTED = shared_prefix.untested_reason(transformers.__version__)
needs_shared_prefix = pytest.mark.skipif(_UNTESTED is not None, reason=str(_UNTESTED))


@pytest.mark.parametrize(
    "prefill", [pytest.param(p, marks=needs_shared_prefix) for p in ("auto", "ragged", "padded")] + ["plain"]
)
def test_shared_prefix_batches_match_one_by_one(scenarios, double_model, prefill):
    model, tokenizer = double_model
    # Judge prompts share the system message and the rubric (~600 tokens), then differ; replies of
    # different lengths make rows of different lengths.
    convs = [judge_messages(s, "An answer. " * k) for k, s in enumerate(scenarios[:6])]
    single = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=1).chat(
        convs, temperature=0.0, max_tokens=10
    )
    backend = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=6, prefill=prefill)
    seen = _spy_generate(model)
    try:
        batched = backend.chat(convs, temperature=0.0, max_tokens=10)
    finally:
        del model.generate
    assert batched == single and len(set(batched)) > 1
    ids, mask = seen[0]
    assert bool(mask[:, -1].all())  # every row ends with its own last token
    if prefill == "plain":
        assert not bool(mask[:, 0].all())  # left padding
        return
    # prefix | padding | rest: the rows share their first columns, the padding sits after them
    lengths = mask.sum(dim=1)
    short = int(lengths.argmin())
    prefix = int((ids == ids[0]).all(dim=0).long().cumprod(0).sum())
    assert prefix > 500 and bool(mask[:, :prefix].all())
    assert int(mask[short, prefix]) == 0 and int(ids[short, prefix]) == tokenizer.pad_token_id


@needs_shared_prefix
def test_shared_prefix_decoding_is_used_on_cpu_and_restores_the_model(scenarios, double_model, monkeypatch):
    import penguin_gym.judges.backends as backends

    model, tokenizer = double_model
    convs = [judge_messages(s, "An answer. " * k) for k, s in enumerate(scenarios[:4])]
    calls = []
    original = backends._shared_prefix_attention

    def counting(*args, **kwargs):
        calls.append(args[1].shape)  # the query: (rows, heads, 1, dim)
        return original(*args, **kwargs)

    from transformers import AttentionInterface

    backend = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=4)
    backends._SharedPrefixDecoding.available(model)  # registers the attention function
    monkeypatch.setitem(AttentionInterface._global_mapping, backends._SHARED_ATTENTION, counting)
    out = backend.chat(convs, temperature=0.0, max_tokens=5)
    layers = model.config.num_hidden_layers
    assert len(calls) == 5 * layers and all(tuple(q[::2]) == (4, 1) for q in calls)
    assert model.config._attn_implementation == "sdpa"  # switched back
    assert not any(hasattr(m, "_penguin_shared_prefix") for m in model.modules())
    # A model whose attention bypasses the registry is caught, decoded again with the prefix copied to
    # each row, and not tried again.
    monkeypatch.setitem(
        AttentionInterface._global_mapping, backends._SHARED_ATTENTION, AttentionInterface._global_mapping["sdpa"]
    )
    fresh = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=4)
    assert fresh.chat(convs, temperature=0.0, max_tokens=5) == out
    assert fresh._shared_decoding is False and model.config._attn_implementation == "sdpa"


def test_models_without_a_plain_cache_fall_back_to_plain_batches(scenarios, double_model, monkeypatch):
    import penguin_gym.judges.backends as backends

    model, tokenizer = double_model
    convs = [judge_messages(s, "An answer. " * k) for k, s in enumerate(scenarios[:3])]
    expected = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=1).chat(
        convs, temperature=0.0, max_tokens=6
    )

    def sliding(self, cache):
        raise backends._SharedPrefixUnsupported("DynamicSlidingWindowLayer")

    monkeypatch.setattr(backends._CacheAPI, "tensors", sliding)
    backend = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=3)
    assert backend.chat(convs, temperature=0.0, max_tokens=6) == expected
    assert backend._cache_api is None  # plain left-padded batches from now on
    with pytest.raises(ConfigError, match="prefill"):
        Transformers(model, tokenizer=tokenizer, device="cpu", prefill="chunky")


def test_sampling_returns_one_reply_per_conversation(scenarios, random_model):
    model, tokenizer = random_model
    backend = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=8, seed=3, name="tiny")
    convs = _conversations(scenarios)
    state = torch.random.get_rng_state()
    a = backend.chat(convs, temperature=0.9, max_tokens=8)
    b = backend.chat(convs, temperature=0.9, max_tokens=8)
    assert len(a) == len(convs) and a == b  # seeded sampling repeats...
    assert torch.equal(torch.random.get_rng_state(), state)  # ...without touching the global RNG
    unseeded = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=8, name="tiny")
    assert unseeded.chat(convs, temperature=0.9, max_tokens=8) != unseeded.chat(convs, temperature=0.9, max_tokens=8)


def test_sampling_draws_from_the_tempered_softmax():
    from penguin_gym.judges.backends import _InverseCDFSampling

    sampler = _InverseCDFSampling(0.7, torch.Generator().manual_seed(0))
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, float("-inf")]]).repeat(100_000, 1)
    out = sampler(None, logits)
    assert bool((torch.isfinite(out).sum(dim=1) == 1).all())  # one token per row for generate's argmax
    draws = out.argmax(dim=-1)
    freq = torch.bincount(draws, minlength=5).double() / draws.numel()
    expected = torch.softmax(logits[0].double() / 0.7, dim=-1)
    assert torch.allclose(freq, expected, atol=0.005) and freq[4] == 0
    # A token of probability 0 is never drawn, wherever it sits (first, last, between).
    spiky = torch.tensor([[float("-inf"), 0.0, float("-inf"), 0.0, float("-inf")]]).repeat(20_000, 1)
    assert set(sampler(None, spiky).argmax(dim=-1).tolist()) == {1, 3}


def test_judge_on_unparseable_local_output_records_failures(scenarios, random_model):
    model, tokenizer = random_model
    backend = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=8, name="tiny")
    judge = LLMJudge(backend, temperature=0.7, max_tokens=16, judge_max_tokens=24, retries=1)
    with pytest.raises(JudgeBatchError) as info:
        judge.score_many(scenarios[:3], [frozenset(), frozenset({"Age"}), frozenset(ATTRIBUTES)])
    err = info.value
    assert err.results == [None, None, None]
    assert len(err.failures) == 3 and all(len(f.raw) == 2 for f in err.failures)
    assert backend.generate_calls == 3  # 1 responder batch + 2 judge batches (first try and retry)
    assert len(judge.failures) == 3


def test_judge_on_a_local_model_that_follows_the_rubric(scenarios):
    model, tokenizer = build(scenarios, RUBRIC_REPLY)
    backend = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=4, name="tiny-rubric")
    judge = LLMJudge(backend, max_tokens=32, judge_max_tokens=32)
    out = judge.score_many(scenarios[:6], [frozenset(ATTRIBUTES[:k]) for k in range(6)])
    assert [(s.risk_sensitivity, s.emotional_empathy, s.personalization) for s in out] == [(4, 3, 5)] * 6
    assert out[0].raw == RUBRIC_REPLY
    assert backend.generate_calls == 4  # 6 answers and 6 judgments in batches of 4
    assert "responder=tiny-rubric" in judge.name


def test_load_from_a_local_path_by_spec(scenarios, random_model, tmp_path):
    model, tokenizer = random_model
    model.save_pretrained(tmp_path / "tiny")
    tokenizer.save_pretrained(tmp_path / "tiny")
    backend = make_backend(f"hf:{tmp_path / 'tiny'}", device="cpu", dtype="bfloat16", batch_size=4)
    assert backend.name == f"hf:{tmp_path / 'tiny'}[dtype=bfloat16]"
    assert backend.model.dtype == torch.bfloat16
    # every setting that changes a reply is in the identity (and so in every cache key)
    names = {
        backend.name,
        make_backend(f"hf:{tmp_path / 'tiny'}", device="cpu", dtype="float32").name,
        make_backend(f"hf:{tmp_path / 'tiny'}", device="cpu", dtype="bfloat16", seed=1).name,
        make_backend(f"hf:{tmp_path / 'tiny'}", device="cpu", dtype="bfloat16", seed=2).name,
        make_backend(f"hf:{tmp_path / 'tiny'}", device="cpu", dtype="bfloat16", chat_template=TEMPLATE).name,
    }
    assert len(names) == 5
    assert len(backend.chat(_conversations(scenarios)[:2], temperature=0.0, max_tokens=4)) == 2
    with pytest.raises(ConfigError, match="dtype"):
        make_backend(f"hf:{tmp_path / 'tiny'}", device="cpu", dtype="float9")
    with pytest.raises(ConfigError, match="cannot load"):
        make_backend(f"hf:{tmp_path / 'missing'}", device="cpu")


def test_configuration_errors(scenarios):
    model, tokenizer = build(scenarios, max_positions=128)
    with pytest.raises(ConfigError, match="tokenizer"):
        Transformers(model, device="cpu")
    tokenizer.chat_template = None
    with pytest.raises(ConfigError, match="chat template"):
        Transformers(model, tokenizer=tokenizer, device="cpu")
    backend = Transformers(model, tokenizer=tokenizer, device="cpu", chat_template=TEMPLATE)
    with pytest.raises(BackendError, match="exceeds the model's 128 positions"):
        backend.chat([judge_messages(scenarios[0], "an answer")], max_tokens=8)


def test_a_gguf_path_reaches_the_model_and_the_tokenizer(monkeypatch, tmp_path):
    import transformers

    calls = {}

    def record(kind):
        def from_pretrained(path, **kwargs):
            calls[kind] = (path, kwargs.get("gguf_file"))
            raise OSError("stop here: the wiring is what this test checks")

        return from_pretrained

    gguf_path = tmp_path / "model.Q4_1.gguf"
    gguf_path.write_bytes(b"GGUF")
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", record("model"))
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", record("tokenizer"))
    with pytest.raises(ConfigError, match="cannot load"):
        make_backend(f"hf:{gguf_path}", device="cpu")
    assert calls["model"] == (str(tmp_path), "model.Q4_1.gguf")
    with pytest.raises(ConfigError, match="no GGUF file"):
        make_backend(f"hf:{tmp_path / 'missing.gguf'}", device="cpu")
    monkeypatch.setitem(sys.modules, "gguf", None)  # not installed: said at once, with the fix
    with pytest.raises(DependencyNotInstalled, match="pip install gguf accelerate"):
        make_backend(f"hf:{gguf_path}", device="cpu")


def test_a_gguf_tokenizer_is_loaded_from_the_gguf_file(monkeypatch, tmp_path):
    import transformers

    seen = {}

    def model_ok(path, **kwargs):
        return object()

    def tokenizer(path, **kwargs):
        seen["tokenizer"] = (path, kwargs.get("gguf_file"))
        raise ValueError("stop")

    gguf_path = tmp_path / "m.gguf"
    gguf_path.write_bytes(b"GGUF")
    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", model_ok)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", tokenizer)
    with pytest.raises(ConfigError, match="cannot load"):
        make_backend(f"hf:{gguf_path}", device="cpu")
    assert seen["tokenizer"] == (str(tmp_path), "m.gguf")
