"""The house's import graph: no module imports one that imports it back (not even through an import
inside a function), and the layers data -> judges -> env -> agents -> experiments never import upward.

The graph is read from the sources (``ast``), so a cycle is found before it bites at run time. An edge
is an import of a module of the house; ``from pkg import name`` is an edge to the submodule ``pkg.name``
when there is one, else to ``pkg``. Imports under ``if TYPE_CHECKING:`` are not edges (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("penguin_gym", "agents", "experiments")
#: Which of the house's top-level packages each may import (the layering of the README's Architecture).
MAY_IMPORT = {"penguin_gym": {"penguin_gym"}, "agents": {"penguin_gym", "agents"}, "experiments": set(PACKAGES)}


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


MODULES = _modules()


def _targets(module: str, is_package: bool, node: ast.Import | ast.ImportFrom) -> list[str]:
    if isinstance(node, ast.Import):
        return [a.name for a in node.names]
    base = node.module or ""
    if node.level:  # a relative import
        pkg = module.split(".") if is_package else module.split(".")[:-1]
        pkg = pkg[: len(pkg) - (node.level - 1)]
        base = ".".join([*pkg, base] if base else pkg)
    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
    return subs + ([base] if len(subs) < len(node.names) else [])


def _is_type_checking(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def import_graph() -> dict[str, dict[str, int]]:
    """module -> {imported module of the house: the line of its first import}."""
    graph: dict[str, dict[str, int]] = {}
    for module, path in MODULES.items():
        edges: dict[str, int] = {}
        stack: list[ast.AST] = [ast.parse(path.read_text(encoding="utf-8"), filename=str(path))]
        while stack:
            for child in ast.iter_child_nodes(stack.pop()):
                if _is_type_checking(child):
                    continue
                if isinstance(child, ast.Import | ast.ImportFrom):
                    for t in _targets(module, path.name == "__init__.py", child):
                        if t in MODULES and t != module:
                            edges.setdefault(t, child.lineno)
                stack.append(child)
        graph[module] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(graph[start]))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = len(index)
                    stack.append(w)
                    on_stack.add(w)
                    work.append((w, iter(graph[w])))
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_the_graph_sees_the_house() -> None:
    graph = import_graph()
    assert len(graph) > 80
    assert "penguin_gym.rules" in graph["penguin_gym.model"]  # a top-level import
    assert "agents.mcts_scalar" in graph["agents.mcts_search"]
    assert "agents.llm" in graph["agents.priors"]  # from agents import llm: the submodule
    assert "penguin_gym.env" in graph["penguin_gym.vector"]


def test_cycle_finder_finds_a_planted_cycle() -> None:
    graph = {"a": {"b": 1}, "b": {"c": 1}, "c": {"a": 1}, "d": {"a": 1}}
    assert cycles(graph) == [["a", "b", "c"]]
    assert cycles({"a": {"b": 1}, "b": {}}) == []


def test_no_import_cycle_in_the_house() -> None:
    graph = import_graph()
    found = cycles(graph)
    detail = [
        ", ".join(
            f"{MODULES[m].relative_to(ROOT)}:{line} imports {t}" for m in c for t, line in graph[m].items() if t in c
        )
        for c in found
    ]
    assert not found, "import cycles: " + "; ".join(detail)


@pytest.mark.parametrize("package", PACKAGES)
def test_no_layer_imports_upward(package: str) -> None:
    graph = import_graph()
    upward = [
        f"{m} imports {t} ({MODULES[m].relative_to(ROOT)}:{line})"
        for m, edges in graph.items()
        if m.split(".")[0] == package
        for t, line in edges.items()
        if t.split(".")[0] not in MAY_IMPORT[package]
    ]
    assert not upward, upward


#: The episode layer of penguin_gym, which the data and judges below it never import.
EPISODE_LAYER = ("env", "vector", "model", "rules", "dialogue", "wrappers", "registration")


@pytest.mark.parametrize("lower", ["penguin_gym.data", "penguin_gym.judges"])
def test_data_and_judges_never_import_the_episode_layer(lower: str) -> None:
    graph = import_graph()
    upward = [
        f"{m} imports {t} ({MODULES[m].relative_to(ROOT)}:{line})"
        for m, edges in graph.items()
        if m == lower or m.startswith(lower + ".")
        for t, line in edges.items()
        if t.split(".")[1:2] and t.split(".")[1] in EPISODE_LAYER and t.startswith("penguin_gym.")
    ]
    assert not upward, upward


def test_the_library_loads_no_heavy_framework() -> None:
    """Making an env, stepping it and importing the agents loads no torch, SB3, transformers or wandb:
    they load when a PPO policy, a transformers judge or tracking is asked for."""
    import subprocess
    import sys

    code = (
        "import sys, gymnasium as gym, penguin_gym, agents\n"
        "env = gym.make('Penguin-Health-v2', n_per_domain=20)\n"
        "env.reset(seed=0); env.step(10)\n"
        "heavy = [m for m in ('torch', 'stable_baselines3', 'sb3_contrib', 'transformers', 'wandb') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120, cwd=ROOT)
