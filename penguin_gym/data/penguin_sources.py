"""Where the PENGUIN loader's records come from: files, folders, saved datasets, the Hugging Face Hub.

``read_source`` yields ``(where, record, domain hint)`` for every record of a source, whatever it is:

* a JSON or JSON Lines file, told apart by content (never by the extension): an array, an object
  holding one under ``data``/``records``/``scenarios``, one record, or one record a line;
* a folder of such files (hidden ones skipped), each file's domain hint the folder it lies in when
  that folder is named after a domain (``data/real_data/social/posts.json`` -> Social);
* a ``datasets.Dataset``/``DatasetDict`` object, or a ``save_to_disk`` folder of one;
* a Hugging Face dataset id (``owner/name``): its local snapshot when the cache holds one, else
  ``datasets`` over the network, or a one-line error with the fix at once when the Hub is out of reach.

``penguin_gym.data.penguin`` turns the records into ``Scenario``s.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from penguin_gym.data import routing
from penguin_gym.error import DataFormatError, DependencyNotInstalled

logger = logging.getLogger(__name__)

_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


def _iter_text(text: str, where: str) -> Iterator[tuple[str, Any]]:
    """Records of a JSON or JSON Lines text, told apart by content."""
    text = text.lstrip("\ufeff")
    stripped = text.lstrip()
    if not stripped:
        raise DataFormatError(f"{where}: the file is empty")
    if stripped[0] not in "[{":
        raise DataFormatError(f"{where}:1: not JSON or JSON Lines (starts with {stripped[:20]!r})")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        if stripped[0] == "{" and e.msg == "Extra data":  # several objects: JSON Lines
            yield from _iter_lines(text, where)
            return
        raise DataFormatError(f"{where}:{e.lineno}: not valid JSON ({e.msg}, column {e.colno})") from e
    if isinstance(data, Mapping):
        for key in ("data", "records", "scenarios"):
            if isinstance(data.get(key), list):
                data = data[key]
                break
        else:
            data = [data]  # a file of one record (or one line of JSON Lines)
    if not isinstance(data, list):
        raise DataFormatError(f"{where}: expected a list of records (or {{'data': [...]}}), got {type(data).__name__}")
    for i, rec in enumerate(data):
        yield f"{where}: record {i}", rec


def _iter_lines(text: str, where: str) -> Iterator[tuple[str, Any]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            yield f"{where}:{lineno}", json.loads(line)
        except json.JSONDecodeError as e:
            raise DataFormatError(f"{where}:{lineno}: not valid JSON ({e.msg}, column {e.colno})") from e


def _iter_file(path: Path) -> Iterator[tuple[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataFormatError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from e
    yield from _iter_text(text, str(path))


def _folder_domain(path: Path, root: Path) -> str | None:
    """The domain a file's folder names (``data/real_data/social/posts.json`` -> Social), if any."""
    for part in reversed(path.relative_to(root).parts[:-1] or (root.name,)):
        d = routing.canonical_domain(part)
        if d is not None:
            return d
    return None


def _is_saved_dataset(path: Path) -> bool:
    return (path / "dataset_dict.json").exists() or (
        (path / "state.json").exists() and (path / "dataset_info.json").exists()
    )


def _iter_folder(path: Path) -> Iterator[tuple[str, Any, str | None]]:
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".json", ".jsonl"))
    files = [p for p in files if not any(part.startswith(".") for part in p.relative_to(path).parts)]
    if not files:
        raise DataFormatError(
            f"{path}: the folder holds no .json or .jsonl files (and is no datasets save_to_disk folder)"
        )
    for f in files:
        hint = _folder_domain(f, path)
        for where, rec in _iter_file(f):
            yield where, rec, hint


def _iter_dataset(ds: Any, name: str) -> Iterator[tuple[str, Any]]:
    """Rows of a ``datasets.Dataset`` or of every split of a ``DatasetDict``."""
    if isinstance(ds, Mapping):  # a DatasetDict: every split
        for split in ds.keys():
            yield from _iter_dataset(ds[split], f"{name}[{split}]")
        return
    for i, row in enumerate(ds):
        yield f"{name}: record {i}", row


def _load_from_disk(path: Path) -> Any:
    try:
        import datasets
    except ImportError as e:
        raise DependencyNotInstalled(
            f'{path} is a datasets save_to_disk folder: pip install "penguin-gym[data]"'
        ) from e
    return datasets.load_from_disk(str(path))


def _hub_reachable(timeout: float = 3.0) -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes") or os.environ.get(
        "HF_DATASETS_OFFLINE", ""
    ).lower() in ("1", "true", "yes"):
        return False
    host = re.sub(r"^https?://", "", os.environ.get("HF_ENDPOINT", "https://huggingface.co")).split("/")[0]
    try:
        with socket.create_connection((host.split(":")[0], 443), timeout=timeout):
            return True
    except OSError:
        return False


def _iter_hub(repo: str, hf_split: str | None) -> Iterator[tuple[str, Any, str | None]]:
    """A Hub dataset: the local snapshot of its files if there is one, else ``datasets`` over the network."""
    try:
        from huggingface_hub import snapshot_download
    except ImportError as e:
        raise DependencyNotInstalled(
            f'loading the Hugging Face dataset {repo!r} needs the datasets package: pip install "penguin-gym[data]"'
        ) from e
    try:
        local = snapshot_download(repo, repo_type="dataset", local_files_only=True)
    except Exception as e:  # noqa: BLE001 - any miss of the local cache (the hub raises several kinds)
        logger.debug("%s is not in the local Hugging Face cache: %s", repo, e)
        local = None
    if local is not None:
        logger.info("reading %s from the local Hugging Face cache (%s)", repo, local)
        yield from _iter_folder(Path(local))
        return
    if not _hub_reachable():
        raise DataFormatError(
            f"{repo}: not in the local Hugging Face cache and the Hub is out of reach (offline). Fix: on a machine "
            f"with network, run `huggingface-cli download {repo} --repo-type dataset --local-dir penguin_data` and "
            "pass the folder (--source penguin_data), or give a local JSON/JSONL file of the records"
        )
    try:
        import datasets
    except ImportError as e:
        raise DependencyNotInstalled(
            f'loading the Hugging Face dataset {repo!r} needs the datasets package: pip install "penguin-gym[data]"'
        ) from e
    ds = datasets.load_dataset(repo, split=hf_split)
    for where, rec in _iter_dataset(ds, repo if hf_split is None else f"{repo}[{hf_split}]"):
        yield where, rec, None


def read_source(source: Any, *, hf_split: str | None = None) -> Iterator[tuple[str, Any, str | None]]:
    """``(where, record, domain hint)`` for every record of a source (see the module docstring)."""
    if hasattr(source, "column_names"):  # a datasets.Dataset or DatasetDict object
        for where, rec in _iter_dataset(source, type(source).__name__):
            yield where, rec, None
        return
    path = Path(source)
    if path.exists():
        if path.is_dir():
            if _is_saved_dataset(path):
                for where, rec in _iter_dataset(_load_from_disk(path), str(path)):
                    yield where, rec, None
                return
            yield from _iter_folder(path)
            return
        hint = _folder_domain(path, path.parent)
        for where, rec in _iter_file(path):
            yield where, rec, hint
        return
    src = str(source)
    if not _HUB_ID.match(src) or src.endswith((".json", ".jsonl")):
        raise DataFormatError(
            f"{src}: no such file or folder (and not a Hugging Face dataset id of the form 'owner/name')"
        )
    yield from _iter_hub(src, hf_split)
