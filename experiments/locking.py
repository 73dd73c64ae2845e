"""One process at a time writes a results folder: an exclusive ``flock`` on ``<folder>/.lock``.

The lock is per process and re-entrant (a resumed run or a test may open the folder again in the same
process); the file holds the writer's pid, so the error a second run gets names it. Where ``fcntl`` is
missing (Windows) or the file system refuses ``flock`` (some network mounts), locking is skipped with a
logged warning rather than refusing to run. See ``experiments.results.ResultsDir`` (Locking).
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path

from penguin_gym.error import ConfigError, ResultsLockedError

_log = logging.getLogger(__name__)


@dataclass
class _FolderLock:
    """This process's hold on one results folder's ``.lock``, shared by its ``ResultsDir`` objects."""

    fd: int
    pid: int
    users: int


#: The results folders this process holds locked, by real path (see ``ResultsDir``, Locking).
_HELD_LOCKS: dict[str, _FolderLock] = {}
_HELD_LOCKS_GUARD = threading.Lock()


def lock_folder(folder: Path) -> str | None:
    """Take ``folder``'s exclusive lock for this process, or join this process's hold on it.

    Returns:
        The key to pass to ``unlock_folder``, or ``None`` where file locking is not available.

    Raises:
        ResultsLockedError: when another process holds the lock.
    """
    try:
        import fcntl
    except ImportError:  # Windows
        _log.warning(
            "%s: no file locking on this platform (no fcntl); make sure no other run writes this folder meanwhile",
            folder,
        )
        return None
    key = os.path.realpath(folder)
    with _HELD_LOCKS_GUARD:
        held = _HELD_LOCKS.get(key)
        if held is not None:
            if held.pid == os.getpid():
                held.users += 1
                return key
            # Inherited through a fork: the hold is the parent's; this process needs a lock of its own.
            del _HELD_LOCKS[key]
            os.close(held.fd)
        lock_path = folder / ".lock"
        try:
            fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise ConfigError(f"cannot create {lock_path} ({e.strerror}); choose another --out") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
            os.close(fd)
            raise ResultsLockedError(
                f"{folder} is being written by another run (pid {holder if holder.isdigit() else 'unknown'}); "
                "wait for it to finish or choose another --out"
            ) from None
        except OSError as e:  # a file system without flock (some network mounts)
            os.close(fd)
            _log.warning("%s: cannot lock %s (%s); make sure no other run writes it meanwhile", folder, lock_path, e)
            return None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        _HELD_LOCKS[key] = _FolderLock(fd=fd, pid=os.getpid(), users=1)
        return key


def unlock_folder(key: str) -> None:
    """Drop one hold taken by ``lock_folder``; the last one of this process releases the lock."""
    import fcntl

    with _HELD_LOCKS_GUARD:
        held = _HELD_LOCKS.get(key)
        if held is None or held.pid != os.getpid():
            return
        held.users -= 1
        if held.users > 0:
            return
        del _HELD_LOCKS[key]
        try:
            os.ftruncate(held.fd, 0)  # the file names the pid of the run writing now, none when empty
            fcntl.flock(held.fd, fcntl.LOCK_UN)
        finally:
            os.close(held.fd)
