"""The store's inter-process lock (mixed into ``Store``): ``flock`` on
``<db>.lock``, which names its holder for the next process that asks."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

from rulebot.errors import LockHeldError, StoreError
from rulebot.files import PRIVATE_FILE_MODE


class StoreLock:
    """``lock()`` for a ``Store``: its ``path``, ``lock_path`` and ``_lock_fd``."""

    path: Path
    lock_path: Path
    _lock_fd: int | None

    @contextlib.contextmanager
    def lock(self, command: str) -> Iterator[None]:
        """Hold the store exclusively for ``command`` (e.g. ``"run"``).

        ``flock`` on ``<db>.lock``: the kernel releases it when the process
        dies, so a crash never leaves a stale lock. Re-entrant within one
        ``Store`` (an inner ``lock()`` just joins the outer one).
        """
        if self._lock_fd is not None:
            yield
            return
        try:
            # No O_TRUNC: the file names the current holder until we own it.
            # O_NOFOLLOW: a link planted at this name must not let us truncate
            # (and write into) whatever it points to.
            fd = os.open(
                self.lock_path,
                os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                PRIVATE_FILE_MODE,
            )
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise StoreError(
                    f"lock file {self.lock_path} is a symbolic link; rulebot does not follow "
                    "links there. Remove it (rulebot creates the lock file itself)"
                ) from exc
            raise StoreError(
                f"cannot open lock file {self.lock_path}: {exc.strerror or exc}"
            ) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise LockHeldError(
                f"store {self.path} is in use by {holder}; wait for it to finish"
            ) from None
        except OSError as exc:
            os.close(fd)
            raise StoreError(f"cannot lock {self.lock_path}: {exc}") from exc
        self._lock_fd = fd
        holder_info = {
            "pid": os.getpid(),
            "host": os.uname().nodename,  # socket.gethostname(), without importing socket
            "command": command if command.startswith("rulebot") else f"rulebot {command}",
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(holder_info) + "\n").encode(), 0)
        except OSError as exc:  # e.g. ENOSPC: the disk is full
            self._release_lock()
            raise StoreError(
                f"cannot write lock file {self.lock_path}: {exc.strerror or exc}"
            ) from exc
        try:
            yield
        finally:
            self._release_lock()

    def _release_lock(self) -> None:
        if self._lock_fd is None:
            return
        fd, self._lock_fd = self._lock_fd, None
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)  # clear the holder before letting go
        os.close(fd)  # closing the last descriptor releases the flock


def _read_holder(fd: int) -> str:
    """Who holds the lock, from what it wrote into the lock file."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "null")
        return f"{info['command']} (pid {info['pid']} on {info['host']}, since {info['since']})"
    except (OSError, ValueError, TypeError, KeyError):
        # The holder took the lock but has not written its details yet.
        return "another rulebot process"
