"""What rulebot remembers between runs about rules files the JSON Schema
found nothing wrong with, so a nightly ``plan`` or ``run`` of an unchanged
file skips jsonschema (about 0.1 s: importing it and walking the file; the
same file checked every night gets the same answer every night).

A file is remembered by the SHA-256 of its text, the schema it was checked
against (as built, so a changed schema forgets everything), the code that
checks it (``schema_messages``, and the installed jsonschema's stamp) and
rulebot's version: one empty file per key in the cache directory. Only a clean answer
is remembered; a file with any finding is checked every time, so its
messages always come from the validator. The other checks (YAML, the
semantic ones) run every time.

The directory is ``$RULEBOT_CACHE_DIR``, else ``$XDG_CACHE_HOME/rulebot/validated``,
else ``~/.cache/rulebot/validated``. ``RULEBOT_CACHE_DIR=`` (empty) turns the
cache off. Any error reading or writing it is ignored: it only saves time.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
from functools import cache
from pathlib import Path

from rulebot import __version__
from rulebot.rules import schema as schema_module
from rulebot.rules import schema_messages

# Past this many remembered files the oldest half is removed (a key is 64
# bytes of name; editors saving a file write a new one at each save).
KEEP = 256


def directory() -> Path | None:
    """Where the keys live, or None when the cache is off."""
    chosen = os.environ.get("RULEBOT_CACHE_DIR")
    if chosen is not None:
        return Path(chosen) if chosen else None
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base, "rulebot", "validated")


@cache
def _schema_digest() -> bytes:
    """The schema as built, the code that checks a file against it, and which
    jsonschema would run it (found, not imported: its file's path, size and
    time; an upgrade rewrites it)."""
    digest = hashlib.sha256(
        json.dumps(schema_module.build_schema(), separators=(",", ":")).encode()
    )
    with contextlib.suppress(OSError, TypeError):
        digest.update(Path(schema_messages.__file__).read_bytes())
    spec = importlib.util.find_spec("jsonschema")
    if spec is not None and spec.origin:
        with contextlib.suppress(OSError):
            found = os.stat(spec.origin)
            digest.update(f"{spec.origin}\0{found.st_size}\0{found.st_mtime_ns}".encode())
    return digest.digest()


def key(text: str) -> str:
    digest = hashlib.sha256(__version__.encode())
    digest.update(_schema_digest())
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def known(text: str) -> bool:
    """Whether the schema found nothing wrong with ``text`` before."""
    where = directory()
    if where is None:
        return False
    try:
        os.utime(where / key(text))  # the most recently used are kept longest
    except OSError:  # not there (or the cache cannot be written)
        return False
    return True


def remember(text: str) -> None:
    """Notes that the schema found nothing wrong with ``text``."""
    where = directory()
    if where is None:
        return
    with contextlib.suppress(OSError):
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        (where / key(text)).touch()
        _prune(where)


def _prune(where: Path) -> None:
    names = [entry for entry in os.scandir(where) if entry.is_file()]
    if len(names) <= KEEP:
        return
    names.sort(key=lambda entry: entry.stat().st_mtime)
    for entry in names[: len(names) - KEEP // 2]:
        with contextlib.suppress(OSError):  # another process took it first
            os.unlink(entry.path)
