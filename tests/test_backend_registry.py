"""The backends package: the lazy registry of backend kinds, its errors, the re-exports, and the
transformers version gate in front of the shared-prefix batching (with its fallback to plain batches)."""

from __future__ import annotations

import doctest
import importlib
import logging
import subprocess
import sys

import pytest

import penguin_gym.judges.backends as backends
from penguin_gym.error import ConfigError
from penguin_gym.judges.backends import PROVIDERS, make_backend, shared_prefix
from penguin_gym.judges.backends import registry as registry_module


def test_backends_are_imported_on_first_use():
    code = (
        "import sys\n"
        "import penguin_gym.judges.backends as b\n"
        "def loaded():\n"
        "    return sorted(m.rsplit('.', 1)[1] for m in sys.modules if m.startswith('penguin_gym.judges.backends.'))\n"
        "assert loaded() == ['base', 'registry'], loaded()\n"
        "b.make_backend('scripted', replies=['x'])\n"
        "assert loaded() == ['base', 'registry', 'scripted'], loaded()\n"
        "b.OpenAICompatible, b.Transformers\n"
        "assert loaded() == ['base', 'hf', 'openai_compatible', 'registry', 'scripted', 'shared_prefix'], loaded()\n"
        "heavy = [m for m in ('httpx', 'torch', 'transformers') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_every_provider_resolves_to_its_modules_factory():
    assert set(PROVIDERS) == {"openai", "hf", "scripted"}
    for kind, provider in PROVIDERS.items():
        module, _, attr = provider.target.partition(":")
        assert module.startswith("penguin_gym.judges.backends.") and attr == "from_spec"
        assert registry_module._factory(provider) is importlib.import_module(module).from_spec
        assert all(form.split(":")[0] == kind for form in provider.forms)


def test_unknown_specs_name_the_valid_ones_and_the_nearest():
    valid = "valid: 'openai:<model>@<base_url>', 'openai:<model>', 'hf:<model id or path>', 'scripted'"
    with pytest.raises(ConfigError) as info:
        make_backend("gpt4")
    assert str(info.value) == f"unknown backend spec 'gpt4'; {valid}"
    with pytest.raises(ConfigError, match=r"unknown backend spec 'opnai:gpt-4o' \(did you mean 'openai'\?\); valid"):
        make_backend("opnai:gpt-4o")
    with pytest.raises(ConfigError, match=r"unknown backend spec 'scriptd' \(did you mean 'scripted'\?\)"):
        make_backend("scriptd", replies=["x"])
    with pytest.raises(ConfigError, match=r"unknown backend spec 'scripted:x' \('scripted' takes no ':<argument>'\)"):
        make_backend("scripted:x", replies=["x"])
    # A credential in a mistyped spec is redacted in the error too.
    with pytest.raises(ConfigError, match=r"'opnai:m@http://\*\*\*@host/v1' \(did you mean 'openai'\?\)") as info:
        make_backend("opnai:m@http://user:sk-secret@host/v1")
    assert "sk-secret" not in str(info.value)


def test_known_kinds_check_their_argument_and_keywords():
    with pytest.raises(ConfigError, match="give the model"):
        make_backend("openai")
    with pytest.raises(ConfigError, match="give the model"):
        make_backend("openai:")
    with pytest.raises(ConfigError, match="give a model id or path"):
        make_backend("hf:")
    with pytest.raises(ConfigError, match="needs replies"):
        make_backend("scripted")
    with pytest.raises(ConfigError, match=r"backend spec 'scripted': bad arguments: .*'temperature'"):
        make_backend("scripted", replies=["x"], temperature=0.3)
    backend = make_backend("openai:m@http://localhost:8000", concurrency=2)
    assert (backend.name, backend.concurrency) == ("openai:m@http://localhost:8000/v1", 2)


def test_package_reexports_the_names_other_modules_import():
    for name in ("Backend", "OpenAICompatible", "Transformers", "ScriptedBackend", "make_backend", "chat_each"):
        assert name in backends.__all__ and getattr(backends, name) is not None
    assert backends.ScriptedBackend is importlib.import_module("penguin_gym.judges.backends.scripted").ScriptedBackend
    assert backends._CacheAPI is shared_prefix._CacheAPI
    assert backends._SharedPrefixUnsupported is shared_prefix._SharedPrefixUnsupported
    assert set(backends.__all__) <= set(dir(backends))
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        backends.Nope  # noqa: B018


@pytest.mark.parametrize("name", ["base", "registry", "shared_prefix"])
def test_submodule_docstring_examples(name):
    result = doctest.testmod(
        importlib.import_module(f"penguin_gym.judges.backends.{name}"), optionflags=doctest.ELLIPSIS
    )
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("version", "tested"),
    [
        ("5.0.0", True),
        ("5.12.1", True),
        ("5.24.0", True),
        ("5.24", True),
        ("4.57.6", False),
        ("4.99", False),
        ("5.25.0", False),
        ("6.0.0", False),
        ("5.24.0.dev0", False),  # a pre-release is not the release that was tested
        ("5.24.0+local", False),
        ("nightly", False),
    ],
)
def test_untested_transformers_versions_are_named(version, tested):
    reason = shared_prefix.untested_reason(version)
    assert (reason is None) == tested
    if not tested:
        assert version in reason and shared_prefix.TESTED_TRANSFORMERS in reason


def _tiny_model():
    """A tiny random-weight Llama (float64, weights large enough that a reply depends on the whole
    prompt) and a byte-level BPE trained here: nothing is downloaded."""
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
    tokenizers = pytest.importorskip("tokenizers")

    corpus = ["You grade answers to questions about a person's life. " * 3, "Rate the answer from 1 to 5."]
    tok = tokenizers.Tokenizer(tokenizers.models.BPE())
    tok.pre_tokenizer = tokenizers.pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = tokenizers.decoders.ByteLevel()
    tok.train_from_iterator(
        corpus,
        tokenizers.trainers.BpeTrainer(
            vocab_size=300,
            special_tokens=["<pad>", "<|end|>", "<|user|>", "<|assistant|>"],
            show_progress=False,
            initial_alphabet=tokenizers.pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    tokenizer = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|end|>")
    tokenizer.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    torch.manual_seed(0)
    config = transformers.LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
    )
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.mul_(25.0)
    return model.double(), tokenizer


def test_untested_transformers_falls_back_to_plain_batches_with_the_same_replies(monkeypatch, caplog):
    model, tokenizer = _tiny_model()
    import transformers

    from penguin_gym.judges.backends import Transformers

    rubric = "You grade answers to questions about a person's life. Rate the answer from 1 to 5. "
    convs = [[{"role": "user", "content": rubric + "Answer: " + "fine " * k}] for k in range(4)]
    shared_batches = []
    prefill_rows = shared_prefix.prefill_rows

    def counting(*args, **kwargs):
        shared_batches.append(len(args[2]))
        return prefill_rows(*args, **kwargs)

    monkeypatch.setattr(shared_prefix, "prefill_rows", counting)
    one_by_one = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=1).chat(
        convs, temperature=0.0, max_tokens=6
    )
    tested = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=4)
    assert tested._cache_api is not None
    assert tested.chat(convs, temperature=0.0, max_tokens=6) == one_by_one
    assert shared_batches == [4]  # inside the tested range, the batch shares its prefix

    monkeypatch.setattr(transformers, "__version__", "5.99.0")
    monkeypatch.setattr(shared_prefix, "_REPORTED", set())
    with caplog.at_level(logging.WARNING, logger=shared_prefix.__name__):
        untested = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=4)
        again = Transformers(model, tokenizer=tokenizer, device="cpu", batch_size=4)
    assert untested._cache_api is None and again._cache_api is None
    records = [r.getMessage() for r in caplog.records if r.name == shared_prefix.__name__]
    assert len(records) == 1  # said once, however many backends are made
    assert "transformers 5.99.0 is outside" in records[0] and shared_prefix.TESTED_TRANSFORMERS in records[0]
    assert "plain left-padded batches" in records[0]
    assert untested.chat(convs, temperature=0.0, max_tokens=6) == one_by_one
    assert shared_batches == [4]  # the fallback never touched the shared-prefix layer
    assert untested.generate_calls == 1 and any(one_by_one)
