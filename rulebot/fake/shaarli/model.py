"""Shaarli's data as the fake holds it, and the PHP behaviour its API shows
(specs/shaarli.md §4, §6): links, dates, short URLs, URL and tag clean-up,
PHP's truthiness, booleans and array keys."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import urlsplit


class ApiError(Exception):
    """An ApiException: the message as a bare JSON string (``"Link not found"``)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Crash(Exception):
    """An uncaught PHP error: 200 with an HTML page, nothing saved (§3)."""


@dataclass
class Link:
    id: int
    url: str  # as stored: a note's is "/shaare/<shorturl>"
    shorturl: str
    title: str
    description: str
    tags: list[str]
    private: bool
    created: datetime  # aware, in the offset it was created with
    updated: datetime | None = None
    sticky: bool = False  # the web UI's pin; the API cannot set it

    @property
    def is_note(self) -> bool:
        return self.url.startswith(("?", "/shaare/"))


@dataclass
class Event:
    event: str  # CREATED / UPDATED / DELETED
    at: datetime
    id: int | str = ""


@dataclass
class Draft:
    """A link as ``buildBookmarkFromRequest`` reads a request body."""

    url: str = ""
    title: str = ""
    description: str = ""
    tags: list[str] = field(default_factory=list)
    private: bool = False
    created: datetime | None = None
    updated: datetime | None = None


# -- dates ---------------------------------------------------------------------------

_ATOM = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(Z|[+-]\d{2}:\d{2})")


def atom(moment: datetime) -> str:
    """``DateTime::ATOM``: ``2026-12-01T09:14:28+00:00``, no fraction."""
    return moment.replace(microsecond=0).isoformat()


def parse_atom(value: Any) -> datetime | None:
    """``DateTime::createFromFormat(ATOM)``: exactly ``Y-m-d\\TH:i:sP`` (``Z``
    accepted), else None (fractions, a missing zone, a non-string)."""
    if not isinstance(value, str):
        return None
    match = _ATOM.fullmatch(value)
    if match is None:
        return None
    year, month, day, hour, minute, second, zone = match.groups()
    if zone == "Z":
        tz = UTC
    else:
        sign = -1 if zone[0] == "-" else 1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    try:
        numbers = (int(year), int(month), int(day), int(hour), int(minute), int(second))
        return datetime(*numbers, tzinfo=tz)
    except ValueError:
        return None  # PHP rolls 2024-13-01 over; the fake refuses it


def at(seconds: int) -> datetime:
    """The server clock's second in the server timezone (UTC, as configured)."""
    return datetime.fromtimestamp(seconds, UTC)


# -- short URLs ----------------------------------------------------------------------


def _crc_table() -> list[int]:
    table = []
    for byte in range(256):
        crc = byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) if crc & 0x80000000 else crc << 1
        table.append(crc & 0xFFFFFFFF)
    return table


_CRC = _crc_table()


def small_hash(created: datetime, link_id: int) -> str:
    """``link_small_hash``: PHP's ``hash('crc32')`` (the bzip2 CRC, bytes
    little-endian) of ``Ymd_His`` + id, base64url without padding."""
    import base64

    crc = 0xFFFFFFFF
    for byte in (created.strftime("%Y%m%d_%H%M%S") + str(link_id)).encode():
        crc = ((crc << 8) & 0xFFFFFFFF) ^ _CRC[((crc >> 24) ^ byte) & 0xFF]
    digest = (crc ^ 0xFFFFFFFF).to_bytes(4, "little")
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


# -- URLs ----------------------------------------------------------------------------

_ANNOYING_PARAMS = (
    "action_object_map=",
    "action_ref_map=",
    "action_type_map=",
    "fb_",
    "fb=",
    "PHPSESSID=",
    "__scoop",
    "utm_",
    "xtor=",
    "campaign_",
)
_ANNOYING_FRAGMENTS = ("xtor=RSS-", "tk.rss_all")


def clean_url(raw: str) -> str:
    """``cleanup_url`` then ``whitelist_protocols`` (http/https only): tracking
    parameters and RSS fragments dropped, no scheme or another one -> ``http://``."""
    url = raw.strip()
    if not url:
        return ""
    try:
        parts = urlsplit(url)
    except ValueError:
        parts = None
    if parts is not None:
        query = parts.query
        if query:
            kept = [p for p in query.split("&") if not p.startswith(_ANNOYING_PARAMS)]
            query = "&".join(kept)
        fragment = parts.fragment
        if fragment.startswith(_ANNOYING_FRAGMENTS):
            fragment = ""
        scheme = url[: len(parts.scheme)] if parts.scheme else "http"  # its case kept
        rebuilt = f"{scheme}://{parts.netloc}{parts.path}"
        rebuilt += f"?{query}" if query else ""
        rebuilt += f"#{fragment}" if fragment else ""
        url = rebuilt if not url.startswith(("?", "/", "#")) else url
    if url.startswith(("?", "/", "#")):
        return url
    scheme_match = re.match(r"(\w+):/?/?", url)
    if scheme_match is None:
        return "http://" + url
    if scheme_match.group(1) not in ("http", "https"):
        return url.replace(scheme_match.group(0), "http://")
    return url


# -- PHP values ------------------------------------------------------------------------


def php_empty(value: Any) -> bool:
    """PHP ``empty()``: absent, null, false, 0, 0.0, "", "0", []."""
    return value is None or value is False or value == 0 or value in ("", "0", [], {})


def php_string(value: Any) -> str:
    """A value passed to a ``string`` parameter (no strict_types): scalars
    coerce, null and arrays are a TypeError (the 200 + HTML page)."""
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, int | str):
        return str(value)
    if isinstance(value, float):
        return repr(value) if value != int(value) else str(int(value))
    raise Crash(f"must be of type string, {type(value).__name__} given")


def php_bool(value: Any) -> bool:
    """``filter_var(FILTER_VALIDATE_BOOLEAN)``: true, 1, "1", "true", "on", "yes"."""
    if value is True:
        return True
    if isinstance(value, int | float) and not isinstance(value, bool):
        return value == 1
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "on", "yes")
    return False


def clean_tags(raw: Any) -> list[str]:
    """``Bookmark::setTags(tags_filter(…))``: each tag trimmed, empty ones
    dropped, then one leading ``-`` stripped (``-`` alone becomes ``""``).
    Not a list (a string): the TypeError page. Order and duplicates kept."""
    if php_empty(raw):
        return []
    if isinstance(raw, dict):
        raw = list(raw.values())
    if not isinstance(raw, list):
        raise Crash("tags must be of type ?array")
    trimmed = [php_string(tag).strip(" \t\n\r\0\x0b") for tag in raw]
    return [tag[1:] if tag.startswith("-") else tag for tag in trimmed if tag]


def lower_ascii(text: str) -> str:
    """PHP 8.2's ``strtolower``: ASCII letters only."""
    return text.translate(_ASCII_LOWER)


_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_INT_KEY = re.compile(r"-?[1-9][0-9]*|0")


def php_key(name: str) -> int | str:
    """An array key as PHP stores it: a canonical decimal integer string is an int."""
    if _INT_KEY.fullmatch(name) and -(2**63) <= int(name) < 2**63:
        return int(name)
    return name


_NUMERIC = re.compile(r"\s*[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?\s*")


def php_compare(a: int | str, b: int | str) -> int:
    """PHP 8's ``<=>`` on array keys (SORT_REGULAR): numbers and numeric
    strings as numbers, anything else byte by byte."""
    numeric_a = isinstance(a, int) or bool(_NUMERIC.fullmatch(a))
    numeric_b = isinstance(b, int) or bool(_NUMERIC.fullmatch(b))
    if numeric_a and numeric_b:
        x, y = float(a), float(b)
    else:
        x, y = str(a).encode(), str(b).encode()  # type: ignore[assignment]
    return (x > y) - (x < y)
