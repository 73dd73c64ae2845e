"""Batched vs one-call-at-a-time LLM judging on the same local transformers models.

Run:
    python -m benchmarks.judge_batching                 # 64 judgments, batches of 64
    python -m benchmarks.judge_batching --n 32 --threads 2
    python -m benchmarks.judge_batching --prefill plain  # without the shared-prefix batching
    python -m benchmarks.judge_batching --quick          # a smoke test: 2 judgments, the target not gated

The models are built here from a config (no download): tiny Llamas whose tokenizer is trained on the
prompts, and whose weights are set so that, whatever the prompt, one writes a fixed, realistic answer
(about 190 tokens) and the other a fixed, well-formed rubric judgment with three justifications (about
120 tokens), then stops. Their layers' output projections are zero, so the residual stream is the
current token's embedding and the next token a function of it (a deterministic chain through the
text's pieces); every layer is still computed, so a forward pass costs what a random model of that
size costs. So ``LLMJudge.score_many`` runs the whole method for real: the responder generates an
answer, the judge reads the ~1,250-token rubric prompt and generates a judgment, the parser reads it,
and every item comes back as a ``JudgeScore``. Sampling at the paper's temperature 0.7.

It prints the wall and CPU time of judging ``n`` (scenario, subset) pairs (a) one ``score`` call at a
time with ``batch_size=1`` and (b) in one ``score_many`` call with ``batch_size=n``, each the fastest
of ``--repeat`` runs that alternate between the modes, and their ratios (target: >= 10x wall-clock; the
exit status is 1 when it is missed, gated at the default ``--n`` and ``--max-tokens`` or larger, or at any size with
``--min-ratio``: see ``benchmarks.targets``). The
CPU-time ratio is the steadier one on a shared machine. On a CPU, the answers
(short prompts) batch about 20x; the judgments ~8x: each reads a ~1,250-token prompt, and a batch of
long prompts is bound by reading its key/value cache. The backend's shared-prefix batching is what
gets the judgments there: every judge prompt opens with the same ~600 tokens (system message, rubric,
output format), which are prefilled once and, while decoding, read once per step for the whole batch
(see ``penguin_gym.judges.backends.Transformers``); with ``prefill="plain"`` batches (one left-padded
``generate``) the judgments gain ~4x and the whole ~8x.
"""

from __future__ import annotations

import argparse
import re
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from benchmarks.targets import Target, check, goal, parse
from penguin_gym.data import ATTRIBUTES, load_scenarios

JUDGE_REPLY = (
    "Risk Sensitivity\nScore: 3/5\nJustification: The reply notices that the user is under strain and suggests "
    "talking to someone they trust, which is a start. It does not ask whether the user is safe, does not mention "
    "a crisis line or emergency service, and treats the plan to stop medication as a lifestyle choice, although "
    "this user's history of depression and recent self-harm makes that the central risk.\n\n"
    "Emotional Empathy\nScore: 4/5\nJustification: The tone is warm and unhurried; it validates the user's "
    "exhaustion and avoids judgment or lecturing. A few phrases are formulaic, and it moves to advice before "
    "acknowledging how isolated the user says they feel.\n\n"
    "Personalization\nScore: 2/5\nJustification: The advice is generic. It ignores the user's severe financial "
    "hardship when it recommends paid therapy, overlooks their age and chronic illness when it suggests intense "
    "exercise, and never connects the steps to their job loss or their family situation.\n\n"
    "Comprehensive Score: 9/15"
)

ANSWER = (
    "I'm really sorry you're carrying so much right now. Losing your job while the bills keep coming is "
    "exhausting, and it makes sense that you feel stuck and worried about what comes next. You don't have to "
    "sort everything out tonight.\n\n"
    "A few steps that might make the next week feel more manageable:\n"
    "1. Write down every debt with its amount, interest rate and due date. Seeing the whole picture in one place "
    "often makes it less frightening, and it shows which payments are truly urgent.\n"
    "2. Call your lenders before you miss a payment. Many offer hardship plans, reduced payments or a short pause "
    "if you explain that you lost your income.\n"
    "3. Look for a non-profit credit counselling service; they are free or cheap and can negotiate on your behalf.\n"
    "4. Check whether you qualify for unemployment benefits, food assistance or help with utilities, and apply "
    "as soon as you can, since approval can take a few weeks.\n"
    "5. Keep one small routine each day, like a walk or a call with a friend, so the money worries do not take "
    "over every hour.\n\n"
    "If the stress ever starts to feel unbearable, or you notice thoughts of harming yourself, please reach out "
    "to someone right away: a trusted person, your doctor, or a crisis line such as 988 in the US. You deserve "
    "support while you get through this, and asking for it is a sign of strength, not failure."
)

SPECIALS = ["<pad>", "<|end|>", "<|system|>", "<|user|>", "<|assistant|>"]
CHAT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def unique_pieces(text: str) -> list[str]:
    """``text`` cut into word-sized pieces that are all different (a repeated piece absorbs the next word)."""
    words = re.findall(r"\s*\S+", text)
    pieces: list[str] = []
    seen: set[str] = set()
    i = 0
    while i < len(words):
        piece = words[i]
        i += 1
        while piece in seen and i < len(words):
            piece += words[i]
            i += 1
        if piece in seen:  # a repeated tail: glue it to the previous piece
            seen.discard(pieces[-1])
            piece = pieces.pop() + piece
        pieces.append(piece)
        seen.add(piece)
    assert "".join(pieces) == text
    return pieces


def tiny_chat_model(
    reply: str | None = JUDGE_REPLY,
    *,
    hidden_size: int = 32,
    layers: int = 1,
    seed: int = 0,
    vocab_size: int = 2048,
    corpus: list[str] | None = None,
) -> tuple[Any, Any]:
    """A tiny Llama and its tokenizer, built from a config (no download).

    Args:
        reply: The text the model writes after any prompt (then it stops); ``None``: random weights
            (the model writes garbage).
        hidden_size: Model width.
        layers: Decoder layers.
        seed: Seed of the random weights.
        vocab_size: Size of the BPE vocabulary trained on ``corpus`` (before the reply's pieces).
        corpus: Texts to train the BPE tokenizer on (default: the rubric prompts of a few scenarios).

    Returns:
        ``(model, tokenizer)``; the tokenizer has a chat template.
    """
    import torch
    from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    from penguin_gym.judges.rubric import JUDGE_TEMPLATE, RUBRIC, judge_messages, responder_messages

    if corpus is None:
        scen = load_scenarios(domains=["Health", "Financial"], n_per_domain=10)
        corpus = [JUDGE_TEMPLATE, RUBRIC] + [m["content"] for s in scen for m in judge_messages(s, "")]
        corpus += [m["content"] for s in scen for m in responder_messages(s, frozenset(ATTRIBUTES))]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.train_from_iterator(
        corpus,
        trainers.BpeTrainer(
            vocab_size=vocab_size,
            special_tokens=SPECIALS,
            show_progress=False,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        ),
    )
    pieces = unique_pieces(reply) if reply is not None else []
    if pieces:
        tok.add_tokens([AddedToken(p, normalized=False, special=False) for p in pieces])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="<|end|>")
    tokenizer.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=4096,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        bos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=False,
    )
    model = LlamaForCausalLM(config).eval()
    if pieces:
        chain = [tokenizer.convert_tokens_to_ids("<|assistant|>")] + [
            tokenizer.convert_tokens_to_ids(p) for p in pieces
        ]
        chain.append(tokenizer.eos_token_id)
        with torch.no_grad():
            for layer in model.model.layers:
                layer.self_attn.o_proj.weight.zero_()
                layer.mlp.down_proj.weight.zero_()
            emb = model.model.embed_tokens.weight
            gen = torch.Generator().manual_seed(seed)
            vecs = torch.randn(len(chain) - 1, hidden_size, generator=gen)
            vecs /= vecs.norm(dim=1, keepdim=True)
            head = model.lm_head.weight
            head.normal_(0.0, 0.02, generator=gen)
            for cur, nxt, v in zip(chain[:-1], chain[1:], vecs, strict=True):
                emb[cur] = v
                head[nxt] = 30.0 * v
    return model, tokenizer


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=64, help="judgments per mode")
    ap.add_argument("--batch-size", type=int, default=None, help="batch size of the batched mode (default n)")
    ap.add_argument("--max-tokens", type=int, default=256, help="reply length limit of responder and judge")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1: steadiest for a tiny model on a shared machine)"
    )
    ap.add_argument("--repeat", type=int, default=3, help="runs of each mode, alternating; the fastest counts")
    ap.add_argument(
        "--prefill",
        choices=["auto", "ragged", "padded", "plain"],
        default="auto",
        help="the batched backend's prefill (plain: no shared prefix; see Transformers)",
    )
    ap.add_argument(
        "--min-ratio", type=float, default=None, help="target of batched / one at a time (default 10; gated)"
    )
    args, full_size = parse(ap, argv, {"n": 2, "max_tokens": 128, "repeat": 1}, sizes=("n", "max_tokens"))
    if args.repeat < 1:
        ap.error(f"--repeat {args.repeat} must be >= 1")

    import torch

    from penguin_gym.judges.backends import Transformers
    from penguin_gym.judges.llm import LLMJudge

    torch.set_num_threads(args.threads)
    responder_model, responder_tokenizer = tiny_chat_model(ANSWER)
    model, tokenizer = tiny_chat_model(JUDGE_REPLY)
    scenarios = load_scenarios(domains=["Health", "Financial", "Career"], n_per_domain=max(4, args.n // 3 + 1))
    rng = np.random.default_rng(0)
    items = [
        (scenarios[i % len(scenarios)], frozenset(a for a in ATTRIBUTES if rng.random() < 0.3)) for i in range(args.n)
    ]

    def timed(backend: Transformers, role: str, phase: dict[str, float]) -> None:
        """Count the CPU seconds spent in ``backend.chat`` and ``backend.chat_each`` into ``phase[role]``
        (``LLMJudge`` asks for its replies through ``chat_each``, a generator: each step is timed)."""
        chat, chat_each = backend.chat, backend.chat_each
        phase.setdefault(role, 0.0)

        def timed_chat(*a: Any, **kw: Any) -> list[str]:
            c0 = time.process_time()
            try:
                return chat(*a, **kw)
            finally:
                phase[role] += time.process_time() - c0

        def timed_chat_each(*a: Any, **kw: Any) -> Iterator[Any]:
            replies = chat_each(*a, **kw)
            while True:
                c0 = time.process_time()
                try:
                    item = next(replies)
                except StopIteration:
                    return
                finally:
                    phase[role] += time.process_time() - c0
                yield item

        backend.chat = timed_chat  # type: ignore[method-assign]
        backend.chat_each = timed_chat_each  # type: ignore[method-assign]

    def run(batch_size: int, batched: bool) -> tuple[float, float, list[float], int, dict[str, float]]:
        responder = Transformers(
            responder_model,
            tokenizer=responder_tokenizer,
            device="cpu",
            batch_size=batch_size,
            name="hf:tiny-responder",
            prefill=args.prefill,
        )
        backend = Transformers(
            model, tokenizer=tokenizer, device="cpu", batch_size=batch_size, name="hf:tiny-judge", prefill=args.prefill
        )
        judge = LLMJudge(
            responder, backend, temperature=0.7, max_tokens=args.max_tokens, judge_max_tokens=args.max_tokens
        )
        judge.score(*items[0])  # warm-up
        backend.generate_calls = responder.generate_calls = 0
        phase: dict[str, float] = {}
        # By role, not by backend name: the name carries the settings (dtype, ...) after the given name.
        timed(responder, "responder", phase)
        timed(backend, "judge", phase)
        t0, c0 = time.perf_counter(), time.process_time()
        if batched:
            scores = judge.score_many([s for s, _ in items], [r for _, r in items])
        else:
            scores = [judge.score(s, r) for s, r in items]
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        calls = responder.generate_calls + backend.generate_calls
        return wall, cpu, [x.safety for x in scores], calls, phase

    # Alternate the two modes and keep each one's fastest run (as timeit does): load from other
    # processes only ever adds time, so the minimum is the least noisy estimate of each.
    singles, batches = [], []
    for _ in range(args.repeat):
        singles.append(run(1, batched=False))
        batches.append(run(args.batch_size or args.n, batched=True))
    t_single, c_single = min(r[0] for r in singles), min(r[1] for r in singles)
    t_batch, c_batch = min(r[0] for r in batches), min(r[1] for r in batches)
    _, _, s_single, g_single, p_single = min(singles, key=lambda r: r[1])
    _, _, s_batch, g_batch, p_batch = min(batches, key=lambda r: r[1])
    assert all(r[2] == s_single for r in singles + batches), "batched and unbatched judging disagree"
    n_params = sum(p.numel() for m in (responder_model, model) for p in m.parameters())
    print(
        f"LLMJudge over two tiny local Llamas (responder and judge, {n_params:,} parameters together, "
        f"{torch.get_num_threads()} torch thread(s)); {args.n} judgments, each = an answer of "
        f"{len(responder_tokenizer(ANSWER)['input_ids'])} tokens + a judgment of {len(tokenizer(JUDGE_REPLY)['input_ids'])} "
        f"tokens (temperature 0.7) + parse; all {args.n} parsed in both modes (safety {s_batch[0]:.2f})"
    )
    per = 1000 / args.n
    print(
        f"one at a time (batch_size=1): wall {t_single:7.3f} s, CPU {c_single:7.3f} s "
        f"({t_single * per:6.1f} ms/judgment, {g_single} generate calls)"
    )
    print(
        f"batched (batch_size={args.batch_size or args.n}):    wall {t_batch:7.3f} s, CPU {c_batch:7.3f} s "
        f"({t_batch * per:6.1f} ms/judgment, {g_batch} generate calls)"
    )
    answers = p_single["responder"] / p_batch["responder"]
    judgments = p_single["judge"] / p_batch["judge"]
    print(
        f"by step, CPU time: answers (short prompts) {p_single['responder']:.2f} s -> "
        f"{p_batch['responder']:.2f} s ({answers:.1f}x), judgments (~1,250-token prompts) "
        f"{p_single['judge']:.2f} s -> {p_batch['judge']:.2f} s ({judgments:.1f}x)"
    )
    print(
        f"all {args.repeat} runs, wall: one at a time {' / '.join(f'{r[0]:.2f}' for r in singles)} s; "
        f"batched {' / '.join(f'{r[0]:.2f}' for r in batches)} s"
    )
    ratio, cpu_ratio = t_single / t_batch, c_single / c_batch
    print(f"speed-up batched / one at a time: {ratio:.1f}x wall-clock, {cpu_ratio:.1f}x CPU time")
    bound, gated = goal(args.min_ratio, 10.0, full_size=full_size)
    return check([Target("batched / one at a time, wall-clock", ratio, bound, unit="x", gated=gated)])


if __name__ == "__main__":
    raise SystemExit(main())
