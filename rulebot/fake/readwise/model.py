"""The fake Readwise Reader's data: documents as the v3 API shows them
(``specs/readwise-reader.md`` §3), and its errors."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

LOCATIONS = ("new", "later", "shortlist", "archive", "feed")
# UPDATE and SAVE take these; `shortlist` only the app sets (spec §5, §6)
WRITABLE_LOCATIONS = ("new", "later", "archive", "feed")
CATEGORIES = ("article", "email", "rss", "highlight", "note", "pdf", "epub", "tweet", "video")
ULID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
READER_URL = "https://read.readwise.io/read/{id}"
NEW_READER_URL = "https://read.readwise.io/new/read/{id}"


class ApiError(Exception):
    """An answer other than success: Django REST Framework's JSON body
    (the v3 error bodies are unconfirmed; DRF's shapes are the likely ones)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(f"{status}: {body}")
        self.status, self.body = status, body


def iso(ts: float) -> str:
    """``2022-12-08T02:53:29.639650+00:00``: microseconds and an offset (spec §3)."""
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="microseconds")


def new_id(rng: random.Random) -> str:
    """A lower-case 26-character ULID-style id."""
    return "01" + "".join(rng.choice(ULID_ALPHABET) for _ in range(24))


def tag_key(name: str) -> str:
    """A tag's key (how Reader derives it is unconfirmed; the fake lower-cases)."""
    return name.strip().lower()


@dataclass
class Document:
    id: str
    source_url: str
    title: str = ""
    author: str = ""
    summary: str = ""
    image_url: str = ""
    site_name: str = ""
    source: str = "Reader API"
    category: str = "article"
    location: str = "new"
    # key -> {name, type, created (epoch ms)}
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)
    word_count: int | None = None
    notes: str = ""
    published_date: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    saved_at: float = 0.0
    last_moved_at: float = 0.0
    first_opened_at: float | None = None
    last_opened_at: float | None = None
    reading_progress: float = 0.0
    parent_id: str | None = None
    html: str = ""

    def to_json(self, *, html: bool = False) -> dict[str, Any]:
        minutes = max(1, round((self.word_count or 0) / 238)) if self.word_count else None
        data: dict[str, Any] = {
            "id": self.id,
            "url": READER_URL.format(id=self.id),
            "source_url": self.source_url,
            "title": self.title,
            "author": self.author,
            "source": self.source,
            "category": self.category,
            "location": self.location,
            "tags": {key: dict(value) for key, value in self.tags.items()},
            "site_name": self.site_name,
            "word_count": self.word_count,
            "reading_time": f"{minutes} mins" if minutes else "",
            "created_at": iso(self.created_at),
            "updated_at": iso(self.updated_at),
            "saved_at": iso(self.saved_at),
            "last_moved_at": iso(self.last_moved_at),
            "first_opened_at": iso(self.first_opened_at) if self.first_opened_at else None,
            "last_opened_at": iso(self.last_opened_at) if self.last_opened_at else None,
            "published_date": self.published_date,
            "summary": self.summary,
            "image_url": self.image_url,
            "content": None,
            "notes": self.notes,
            "parent_id": self.parent_id,
            "reading_progress": self.reading_progress,
        }
        if html:
            data["html_content"] = self.html
        return data

    def set_tags(self, names: list[str], now: float) -> None:
        """UPDATE's ``tags``: the whole set, replaced (spec §6)."""
        kept: dict[str, dict[str, Any]] = {}
        for name in names:
            key = tag_key(name)
            if not key or key in kept:
                continue
            old = self.tags.get(key) or {"type": "manual", "created": int(now * 1000)}
            kept[key] = {**old, "name": name.strip()}  # the spelling sent last
        self.tags = kept
