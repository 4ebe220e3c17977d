"""What rulebot remembers between runs about rules files the JSON Schema
found nothing wrong with, so a nightly ``plan`` or ``run`` of an unchanged
file neither imports PyYAML nor jsonschema (about 0.03 s reading the YAML,
about 0.1 s checking it: the same file read every night gives the same
document every night).

A file is remembered by the SHA-256 of its text, the schema it was checked
against (as built, so a changed schema forgets everything), the code that
reads and checks it (``marked_yaml``, ``schema_messages``, and the installed
PyYAML's and jsonschema's stamps) and rulebot's version: one small JSON file
per key in the cache directory, holding the document as read and the line
and column of each of its values. Only a clean answer is remembered; a file
with any finding is read and checked every time, so its messages always come
from the reader and the validator. The semantic checks run every time, on
the remembered document and marks as on a fresh one.

The directory is ``$RULEBOT_CACHE_DIR``, else ``$XDG_CACHE_HOME/rulebot/validated``,
else ``~/.cache/rulebot/validated``. ``RULEBOT_CACHE_DIR=`` (empty) turns the
cache off. Any error reading or writing it is ignored: it only saves time (a
key file that is not what this code writes is read as no key at all). It is
trusted as the rules file is: whoever can write one can write the other.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
from functools import cache
from pathlib import Path
from typing import IO, Any

from rulebot import __version__
from rulebot.errors import RulebotError
from rulebot.files import atomic_write
from rulebot.rules import schema as schema_module
from rulebot.rules import schema_messages
from rulebot.rules.schema_messages import JsonPath, Mark

Marks = dict[JsonPath, tuple[Mark, Mark]]  # a value's path -> (its key's mark, its own)

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
    """The schema as built, the code that reads a file and checks it against
    the schema, and which PyYAML and jsonschema would run them (found, not
    imported: each one's file's path, size and time; an upgrade rewrites it)."""
    digest = hashlib.sha256(
        json.dumps(schema_module.build_schema(), separators=(",", ":")).encode()
    )
    here = Path(schema_messages.__file__).parent
    for code in (Path(schema_messages.__file__), here / "marked_yaml.py"):
        with contextlib.suppress(OSError):
            digest.update(code.read_bytes())
    for package in ("yaml", "jsonschema"):
        spec = importlib.util.find_spec(package)
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


def recall(text: str) -> tuple[dict[str, Any], Marks] | None:
    """The document and marks ``text`` was read into when the schema found
    nothing wrong with it, or None (never seen, not clean, or the cache off)."""
    where = directory()
    if where is None:
        return None
    path = where / key(text)
    try:
        stored = json.loads(path.read_bytes())
        document = stored["document"]
        marks: Marks = {
            tuple(at): ((key_mark[0], key_mark[1]), (own[0], own[1]))
            for at, key_mark, own in stored["marks"]
        }
        os.utime(path)  # the most recently used are kept longest
    except (OSError, ValueError, LookupError, TypeError):
        return None  # not there, unreadable, or not what ``remember`` writes
    return (document, marks) if isinstance(document, dict) else None


def remember(text: str, document: dict[str, Any], marks: Marks) -> None:
    """Notes that the schema found nothing wrong with ``text``, read into
    ``document`` and ``marks``."""
    where = directory()
    if where is None:
        return
    try:
        stored = json.dumps(
            {"document": document, "marks": [[at, *pair] for at, pair in marks.items()]},
            separators=(",", ":"),
        )
    except (TypeError, ValueError):  # a value JSON cannot hold: read the file each time
        return

    def write(out: IO[bytes]) -> None:
        out.write(stored.encode("ascii"))

    with contextlib.suppress(OSError, RulebotError):
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        # whole or not at all, 0600 (it holds what the rules file holds), never through a link
        atomic_write(where / key(text), write, what="cache entry")
        _prune(where)


def _prune(where: Path) -> None:
    names = [entry for entry in os.scandir(where) if entry.is_file()]
    if len(names) <= KEEP:
        return
    names.sort(key=lambda entry: entry.stat().st_mtime)
    for entry in names[: len(names) - KEEP // 2]:
        with contextlib.suppress(OSError):  # another process took it first
            os.unlink(entry.path)
