"""Writing files safely in directories other people (or programs) can touch.

``atomic_write`` is how rulebot writes a file the user named (an export, a
saved plan): into an exclusive, unpredictable temp file in the same
directory (``tempfile.mkstemp``: ``O_EXCL``, mode 0600), flushed to disk,
then renamed over the target. A reader sees the old file or the new one,
never half of it, and a planted link or file at a guessable temp name can
neither be followed nor clobbered.

A symbolic link at the final path is refused rather than replaced or
followed: following it would write wherever the link points, and silently
replacing it would surprise a user who made the link on purpose.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import IO

from rulebot.errors import RulebotError

PRIVATE_DIR_MODE = 0o700
PRIVATE_FILE_MODE = 0o600


def atomic_write(
    path: str | Path,
    writer: Callable[[IO[bytes]], None],
    *,
    what: str = "file",
    mode: int = PRIVATE_FILE_MODE,
) -> None:
    """Write ``path`` through ``writer(binary_file)`` and rename it into place.

    ``what`` names the file in errors ("export", "plan"). The result has
    ``mode`` (default 0600: what rulebot writes lists someone's reading).
    Raises ``RulebotError`` naming the path on any OS failure (disk full,
    no permission) or when ``path`` is a symbolic link; the temp file is
    removed on every failure.
    """
    import tempfile  # here: it costs every run ~5 ms to import, and a plan writes no file

    target = Path(path)
    refuse_symlink(target, what)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, temp_name = tempfile.mkstemp(
            dir=target.parent, prefix=f".{target.name}.", suffix=".partial"
        )
    except OSError as exc:
        raise RulebotError(f"cannot write {what} {target}: {exc.strerror or exc}") from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            writer(handle)
            handle.flush()
            os.fchmod(handle.fileno(), mode)
            os.fsync(handle.fileno())
        refuse_symlink(target, what)  # planted while we wrote? (rename would replace it)
        os.replace(temp_name, target)  # replaces the directory entry, never follows it
    except OSError as exc:
        raise RulebotError(f"cannot write {what} {target}: {exc.strerror or exc}") from exc
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)


def refuse_symlink(path: Path, what: str) -> None:
    try:
        is_link = stat.S_ISLNK(os.lstat(path).st_mode)
    except OSError:
        return  # absent (or unreadable: the write itself will say why)
    if is_link:
        raise RulebotError(
            f"cannot write {what} {path}: it is a symbolic link, and rulebot does not "
            "write through links; remove the link or name the real file"
        )


def make_private_dir(path: Path) -> None:
    """Create ``path`` (and parents) with the store directory's 0700 for the last
    part; an existing directory is left as its owner set it."""
    if path.is_dir():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        path.mkdir(mode=PRIVATE_DIR_MODE)
