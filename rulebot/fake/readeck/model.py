"""Readeck's data as the fake holds it, its errors, and its label order."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit


class ReadeckStatus(Exception):
    """``server.Status``: a plain-text error that ``ErrorPages`` rewrites by Accept."""

    def __init__(self, status: int) -> None:
        super().__init__(status)
        self.status = status


class FormError(Exception):
    """A form validation failure: 422 (create, list, sync) or 400 (PATCH)."""

    def __init__(self, status: int, fields: dict[str, list[str]]) -> None:
        super().__init__(fields)
        self.status, self.fields = status, fields


class Unauthorized(Exception):
    """A 401, with its ``WWW-Authenticate`` challenge."""

    def __init__(self, challenge: str) -> None:
        super().__init__(challenge)
        self.challenge = challenge


@dataclass
class Bookmark:
    id: str
    url: str
    title: str
    created: int  # microseconds since the epoch
    updated: int
    is_archived: bool = False
    is_marked: bool = False
    labels: list[str] = field(default_factory=list)
    word_count: int = 0
    reading_time: int = 0
    lang: str = "en"
    type: str = "article"
    state: int = 0  # 0 loaded, 1 error, 2 loading
    read_progress: int = 0
    description: str = ""
    delete_at: float | None = None  # PATCH is_deleted: when the task runs (server clock)
    # a nil Go slice (JSON null) until extraction fills it; a loaded bookmark has []
    authors: list[str] | None = field(default_factory=list)
    site_name: str = ""  # the URL's host at creation; PATCH may change it
    text_direction: str = "ltr"
    published: int | None = None  # microseconds; None: unknown (the key is omitted)
    read_anchor: str = ""


@dataclass(frozen=True)
class ReadeckState:
    """A snapshot: bookmarks as ``GET /bookmarks/{id}`` renders them, and the removals."""

    bookmarks: dict[str, dict[str, Any]]
    removed: dict[str, str]  # id -> deleted time

    def by_url(self, url: str) -> list[dict[str, Any]]:
        return [b for b in self.bookmarks.values() if b["url"] == url]

    def labels(self, bookmark_id: str) -> list[str]:
        return list(self.bookmarks[bookmark_id]["labels"])


def host(url: str) -> str:
    return urlsplit(url).hostname or ""


def iso(micros: int) -> str:
    """Go's RFC3339Nano in UTC: the fraction trimmed of trailing zeros, or none."""
    seconds, fraction = divmod(micros, 1_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    digits = f"{fraction:06d}".rstrip("0")
    return f"{stamp}.{digits}Z" if digits else f"{stamp}Z"


def loose(label: str) -> str:
    """collate.Loose: case and accents ignored."""
    return "".join(
        c for c in unicodedata.normalize("NFKD", label.casefold()) if not unicodedata.combining(c)
    )


def sorted_labels(labels: Iterable[str]) -> list[str]:
    """Trimmed, empties dropped, sorted loosely, adjacent exact duplicates removed."""
    ordered = sorted((t.strip() for t in labels if t.strip()), key=lambda t: (loose(t), t))
    return [t for n, t in enumerate(ordered) if n == 0 or ordered[n - 1] != t]
