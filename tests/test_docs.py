"""The README's Python examples and the docstring examples run as written."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

import pytest

import penguin_gym.data.coherence
import penguin_gym.env
import penguin_gym.judges.simulated
import penguin_gym.vector
import penguin_gym.wrappers

README = Path(__file__).resolve().parents[1] / "README.md"


def _python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


@pytest.mark.parametrize("block", [b for b in _python_blocks() if "penguin_records.jsonl" not in b])
def test_readme_python_blocks_run(block, capsys):
    exec(compile(block, str(README), "exec"), {})  # noqa: S102 - our own documentation
    assert capsys.readouterr().out  # every example shows something


@pytest.mark.parametrize(
    "module",
    [
        penguin_gym.env,
        penguin_gym.judges.simulated,
        penguin_gym.vector,
        penguin_gym.wrappers,
        penguin_gym.data.coherence,
    ],
)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
