"""Server text made safe for a message: secrets masked, then clipped.

A secret is masked in every spelling it travels in or may come back in
(``secret_forms``): a server echoing a form-encoded request body shows
``password=P%40ss+w0rd``, one echoing JSON shows ``\\u00e9`` and ``\\/``.
Mask first, clip after: a secret cut in half is no longer found.
"""

from __future__ import annotations

import base64
import functools
import html
import json as jsonlib
import re
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import quote, quote_plus

HIDDEN = "<hidden>"
MAX_DEPTH = 64  # deeper server JSON is replaced, not walked (Python's stack is ~1000)
TOO_DEEP = "<nested too deeply>"

# -- text from a server ---------------------------------------------------------------
_CONTROLS = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


_HEX_ESCAPE = re.compile("%[0-9A-F]{2}")
_GO_ESCAPES = {"&": "\\u0026", "<": "\\u003c", ">": "\\u003e"}


@functools.lru_cache(maxsize=4096)
def secret_forms(secret: str) -> tuple[str, ...]:
    """Every spelling of ``secret`` that a request carries or an answer may
    echo: as is; URL- and form-encoded (``quote``, ``quote_plus``, either
    case of hex); JSON-escaped (ASCII-only or not, PHP's ``\\/``, Go's
    ``\\u0026``); HTML-escaped; base64 (standard or URL-safe, padded or
    not). Longest first, so a longer spelling is masked whole."""
    forms = {secret, html.escape(secret), html.escape(secret, quote=False)}
    for encoded in (quote(secret, safe=""), quote(secret), quote_plus(secret)):
        forms |= {encoded, _HEX_ESCAPE.sub(lambda m: m.group().lower(), encoded)}
    for ascii_only in (True, False):
        escaped = jsonlib.dumps(secret, ensure_ascii=ascii_only)[1:-1]
        go = "".join(_GO_ESCAPES.get(char, char) for char in escaped)
        forms |= {escaped, escaped.replace("/", "\\/"), go, go.replace("/", "\\/")}
    raw = secret.encode()
    for encoded_bytes in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        encoded = encoded_bytes.decode()
        forms |= {encoded, encoded.rstrip("=")}
    return tuple(sorted((form for form in forms if form), key=len, reverse=True))


def _longest_first(forms: Iterable[str]) -> tuple[str, ...]:
    return tuple(sorted(set(forms), key=lambda form: (-len(form), form)))


@functools.lru_cache(maxsize=256)
def _masks(secrets: tuple[str, ...]) -> tuple[str, ...]:
    return _longest_first(form for secret in secrets if secret for form in secret_forms(secret))


class Secrets:
    """The secrets one service's clients mask: credentials, and the tokens
    learnt or signed on the way (``add``), each in all its ``secret_forms``.
    One instance may be shared by the clients of several threads."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self._known: dict[str, None] = {}
        self._forms: tuple[str, ...] = ()
        self._lock = threading.Lock()
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        if not secret or secret in self._known:
            return
        with self._lock:
            self._known[secret] = None
            self._forms = _longest_first((*self._forms, *secret_forms(secret)))

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._known))

    def __len__(self) -> int:
        return len(self._known)

    def scrub(self, value: Any) -> Any:
        return _scrub(value, self._forms, 0)


def scrub(value: Any, secrets: Sequence[str] | Secrets) -> Any:
    """``value`` with every secret masked (in each of its ``secret_forms``),
    in strings, lists, tuples and dicts (keys too), at any depth; a
    structure nested deeper than ``MAX_DEPTH`` is replaced by ``TOO_DEEP``.
    Other values come back as they are."""
    if isinstance(secrets, Secrets):
        return secrets.scrub(value)
    return _scrub(value, _masks(tuple(secrets)), 0)


def _scrub(value: Any, secrets: Sequence[str], depth: int) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, HIDDEN)
        return value
    if isinstance(value, (Mapping, list, tuple)) and depth >= MAX_DEPTH:
        return TOO_DEEP
    if isinstance(value, Mapping):
        return {
            _scrub(k, secrets, depth + 1): _scrub(v, secrets, depth + 1) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_scrub(entry, secrets, depth + 1) for entry in value]
    return value


def clip(text: str, limit: int = 200) -> str:
    """One short line: whitespace collapsed, controls shown as escapes, cut
    at ``limit`` characters with "…". Mask secrets *before* calling this: a
    secret cut in half is no longer found."""
    line = " ".join(text.split())
    line = _CONTROLS.sub(lambda m: f"\\x{ord(m.group()):02x}", line)
    return line if len(line) <= limit else line[: limit - 1] + "…"


def clean(value: Any, secrets: Sequence[str] | Secrets, limit: int = 200) -> str:
    """Server text for a message: masked, then clipped."""
    return clip(str(scrub(value, secrets) if isinstance(value, str) else value), limit)


def describe(value: Any) -> str:
    """Names an unexpected value without showing it (it may hold a secret)."""
    return f"an unexpected value of type {type(value).__name__}"
