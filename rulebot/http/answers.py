"""What a server answered: the complete ``Response``, and the readers every
client shares for its headers and body. None of them raises on a hostile
value: a header that is no sane number, a date that is no date, JSON nested
past Python's stack all read as absent (or as a ``ValueError``)."""

from __future__ import annotations

import email.utils
import json as jsonlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import httpx

MAX_HEADER_DIGITS = 10  # a number header longer than this is nonsense: absent


@dataclass(frozen=True)
class Response:
    """A complete answer. ``data`` is the parsed JSON when the request asked
    for JSON (``expect_json``), else None."""

    status: int
    headers: httpx.Headers
    content: bytes = field(repr=False)
    data: Any = field(default=None, repr=False)
    path: str = ""  # the request's path, for messages

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; ``ValueError`` (never ``RecursionError``) when it is not."""
        return parse_json(self.content)


def header_number(
    headers: Mapping[str, str], name: str, max_digits: int = MAX_HEADER_DIGITS
) -> int | None:
    """A non-negative integer header; None when absent or not plain ASCII
    digits of a sane length (``"²"``, a hundred digits)."""
    text = headers.get(name, "").strip()
    if not text or len(text) > max_digits or not (text.isascii() and text.isdigit()):
        return None
    return int(text)


def retry_after(headers: Mapping[str, str], now: Callable[[], float] = time.time) -> float | None:
    """``Retry-After`` in seconds (a delay or an HTTP date); None when absent
    or unreadable. Never raises."""
    value = headers.get("Retry-After", "").strip()
    if not value:
        return None
    seconds = header_number(headers, "Retry-After")
    if seconds is not None:
        return float(seconds)
    if value.isdigit() or len(value) > 64:
        return None  # non-ASCII digits, or absurdly long
    try:
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - now())
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def http_date(value: str | None) -> int | None:
    """An HTTP date (a ``Date`` header) as unix seconds; None when absent or
    unreadable. Not judged here: how far to believe a server's clock is the
    caller's (``rulebot.sources.cursors``)."""
    if not value or len(value) > 64:
        return None
    try:
        return int(email.utils.parsedate_to_datetime(value).timestamp())
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def parse_json(content: bytes) -> Any:
    """``json.loads`` whose every failure is a ``ValueError`` (a body nested
    200k deep raises ``RecursionError`` in the parser)."""
    try:
        return jsonlib.loads(content)
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
