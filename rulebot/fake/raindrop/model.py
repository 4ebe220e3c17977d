"""Raindrop.io's data as the fake holds it, and the errors its API answers with."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from rulebot.fake.base import parse_iso

DEFAULT_USER_ID = 1_048_576
UNSORTED, TRASH, ALL = -1, -99, 0  # the system collections (raindrop.md §5)


class ApiError(Exception):
    """An error answer: ``{"result": false, "status": N, "errorMessage": …}``."""

    def __init__(self, status: int, message: str, code: Any = None) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code

    def answer(self) -> dict[str, Any]:
        shown: dict[str, Any] = {"result": False}
        if self.code is None:
            shown["status"] = self.status
        else:
            shown["error"] = self.code  # sometimes a code instead of the status (§2)
        shown["errorMessage"] = self.message
        return shown


@dataclass
class Raindrop:
    id: int
    link: str
    title: str
    collection: int
    created: float  # unix seconds, with milliseconds
    last_update: float
    excerpt: str = ""
    note: str = ""
    type: str = "link"
    tags: list[str] = field(default_factory=list)  # as each was given: case kept
    important: bool = False
    removed: bool = False
    version: int = 0  # Mongoose's __v

    @property
    def domain(self) -> str:
        host = urlsplit(self.link).hostname or ""
        return host.removeprefix("www.")


@dataclass
class Collection:
    id: int
    title: str
    parent: int | None = None
    created: float = 0.0


def iso(seconds: float) -> str:
    """``2023-12-12T00:11:50.615Z``: UTC with milliseconds, as every observed value."""
    whole = int(seconds // 1)
    millis = round((seconds - whole) * 1000) % 1000
    stamp = datetime.fromtimestamp(whole, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{millis:03d}Z"


def parse_date(value: Any) -> float | None:
    parsed = parse_iso(value) if isinstance(value, str) else None
    return None if parsed is None else parsed.timestamp()
