"""Karakeep's data as the fake holds it, and the errors its API answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from rulebot.fake.base import parse_iso

DEFAULT_USER_ID = "fakeuser0000000000000001"


class TextError(Exception):
    """A tRPC/Hono error: the message alone, as text/plain (never JSON)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Invalid(Exception):
    """A zod-validator 400: JSON ``{"success": false, "error": {...}}``."""

    def __init__(self, path: list[str | int], message: str, code: str = "custom") -> None:
        super().__init__(message)
        self.issue = {"code": code, "path": path, "message": message}


@dataclass
class Bookmark:
    id: str
    url: str
    title: str | None
    archived: bool
    favourited: bool
    created_at: int  # "last saved at": the order of the list and of cursors
    first_created_at: int
    modified_at: int | None
    note: str | None = None
    summary: str | None = None
    source: str | None = "web"
    crawled_title: str | None = None
    crawled: bool = True
    tags: dict[str, str] = field(default_factory=dict)  # tag id -> attachedBy, in order


@dataclass(frozen=True)
class KarakeepState:
    """A snapshot: bookmarks as GET renders them, and every tag id -> name."""

    bookmarks: dict[str, dict[str, Any]]
    tags: dict[str, str]

    def by_url(self, url: str) -> dict[str, Any] | None:
        return next((b for b in self.bookmarks.values() if b["content"]["url"] == url), None)

    def tag_names(self, bookmark_id: str) -> list[str]:
        return [t["name"] for t in self.bookmarks[bookmark_id]["tags"]]


def iso(seconds: int, millis: int = 0) -> str:
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{millis:03d}Z"


def parse_date(text: str) -> int | None:
    parsed = parse_iso(text)
    return None if parsed is None else int(parsed.timestamp())
