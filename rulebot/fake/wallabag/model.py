"""Wallabag's data as the fake holds it, its errors, and the small parsers
and formats its API uses (PHP's ``getInt``, dates in the server's zone, slugs)."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qsl, unquote_plus, urlsplit

DEFAULT_CLIENT_ID = "1_3o53gl30vhgk0c8ks4cocww08o84448osgo40wgw4gwkoo8skc"
DEFAULT_CLIENT_SECRET = "636ocbqo978ckw0gsw4gcwwocg8044sco0w8w84cws48ggogs4"
DEFAULT_USERNAME = "wallabag"
DEFAULT_PASSWORD = "wallabag-fake-password"
DEFAULT_EMAIL = "wallabag@example.org"
ACCESS_LIFETIME = 3600
REFRESH_LIFETIME = 1_209_600
MASS_ACTION_LIMIT = 10
SERVER_TZ = timezone(timedelta(hours=2))  # not UTC: clients must read the offset
STATUS_TEXT = {
    400: "Bad Request",
    403: "Forbidden",
    404: "Not Found",
    429: "Too Many Requests",
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
}


@dataclass
class Entry:
    """An entry (article) of one user."""

    id: int
    url: str
    given_url: str
    title: str | None
    user: str
    is_archived: bool = False
    is_starred: bool = False
    archived_at: int | None = None
    starred_at: int | None = None
    created_at: int = 0
    updated_at: int = 0
    language: str | None = None
    reading_time: int = 0
    tags: list[int] = field(default_factory=list)  # global tag ids, in order


@dataclass
class Token:
    """An access or refresh token: whose, and when it expires (the fake's clock)."""

    user: str
    expires: int


class WallabagError(Exception):
    """An API error: JSON ``{"code", "message"}`` with the status."""

    def __init__(self, status: int, message: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message = status, message or STATUS_TEXT.get(status, "Error")


def read_body(headers: Mapping[str, str], raw: bytes) -> dict[str, str]:
    """A form or JSON body (FOSRest's body listener decodes both)."""
    if not raw:
        return {}
    if "json" in headers.get("content-type", ""):
        try:
            value = json.loads(raw)
        except ValueError:
            return {}
        return {str(k): v for k, v in value.items()} if isinstance(value, dict) else {}
    return dict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))


def json_list(text: str | None) -> list[Any]:
    try:
        value = json.loads(text or "[]")
    except ValueError:
        return []
    return value if isinstance(value, list) else []


def split_labels(text: str) -> list[str]:
    return [label.strip().lower() for label in text.split(",") if label.strip()]


def get_int(text: str | None) -> int:
    """PHP's getInt: leading digits, else 0."""
    match = re.match(r"-?\d+", text or "")
    return int(match.group()) if match else 0


def render_date(stamp: int | None) -> str | None:
    if stamp is None:
        return None
    return datetime.fromtimestamp(stamp, SERVER_TZ).strftime("%Y-%m-%dT%H:%M:%S%z")


def url_hash(url: str) -> str:
    """``UrlHasher::hashUrl``: sha1 of the urldecoded URL (PHP's urldecode: ``+`` is a space)."""
    return hashlib.sha1(unquote_plus(url).encode()).hexdigest()


def php_empty(text: str | None) -> bool:
    """PHP's ``empty()`` on a query string value: absent, ``""`` or ``"0"``."""
    return text is None or text in ("", "0")


def host_of(url: str) -> str:
    try:
        return urlsplit(url).hostname or ""
    except ValueError:
        return ""


def slug(label: str) -> str:
    return "t:" + re.sub(r"[^a-z0-9]+", "-", label).strip("-")


def new_token() -> str:
    """86 characters of URL-safe base64, like the real tokens."""
    digest = hashlib.sha256(secrets.token_bytes(32)).hexdigest().encode()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")[:86]
