"""The fake Linkding's data: bookmarks and tags per the server's models, its
URL normalisation, tag sanitising, times with microseconds, and how the API
renders a bookmark (``BookmarkSerializer``). ``specs/linkding.md`` §4, §6, §8.

Independent of rulebot's client on purpose: a fake that shared the client's
code would agree with it whatever the service does.
"""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

MAX_TITLE = 512
MAX_URL = 2048
MAX_TAG = 64  # POST /api/tags/ only: tag_names items have no length check


class Problem(Exception):
    """An error answer: ``status`` and the DRF body (``{"detail": …}`` or field errors)."""

    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status, self.body = status, body


def detail(status: int, text: str) -> Problem:
    return Problem(status, {"detail": text})


def field_error(name: str, message: str) -> Problem:
    return Problem(400, {name: [message]})


@dataclass
class Tag:
    tag_id: int
    name: str
    date_added: datetime


@dataclass
class Bookmark:
    bookmark_id: int
    url: str
    date_added: datetime
    date_modified: datetime
    title: str = ""
    description: str = ""
    notes: str = ""
    is_archived: bool = False
    unread: bool = False
    shared: bool = False
    tag_ids: list[int] = field(default_factory=list)

    @property
    def url_normalized(self) -> str:
        return normalize_url(self.url)


def normalize_url(url: str) -> str:
    """``LD:bookmarks/utils.py::normalize_url``: scheme and host lower-cased, port
    and user info kept, trailing ``/`` of the path removed, query parameters
    sorted, the fragment kept."""
    url = url.strip() if isinstance(url, str) else ""
    if not url:
        return ""
    try:
        parsed = urllib.parse.urlparse(url)
        netloc = parsed.hostname.lower() if parsed.hostname else ""
        if parsed.port:
            netloc += f":{parsed.port}"
        if parsed.username:
            auth = parsed.username + (f":{parsed.password}" if parsed.password else "")
            netloc = f"{auth}@{netloc}"
        query = ""
        if parsed.query:
            pairs = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
            pairs.sort(key=lambda pair: (pair[0], pair[1]))
            query = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
        path = parsed.path.rstrip("/") if parsed.path else ""
        parts = (parsed.scheme.lower(), netloc, path, parsed.params, query, parsed.fragment)
        return urllib.parse.urlunparse(parts)
    except (ValueError, AttributeError):
        return url


def valid_url(url: str) -> bool:
    """Django's ``URLValidator``, roughly: http(s)/ftp(s), a host, no spaces."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 (a bad port raises)
    except ValueError:
        return False
    return (
        parts.scheme.lower() in ("http", "https", "ftp", "ftps")
        and bool(parts.hostname)
        and not any(c.isspace() for c in url)
    )


def tag_names_of(raw: list[str]) -> list[str]:
    """``tag_names`` as the server keeps them (``parse_tag_string``): joined with
    commas and split again (so ``"c,d"`` is two tags), each trimmed with inner
    spaces turned to ``-``, duplicates dropped case-insensitively (the last
    spelling wins), sorted case-insensitively."""
    names = [name.strip().replace(" ", "-") for name in ",".join(raw).split(",") if name.strip()]
    last: dict[str, str] = {}
    for name in names:
        last.pop(name.lower(), None)
        last[name.lower()] = name
    return sorted(last.values(), key=str.lower)


def iso(when: datetime) -> str:
    """DRF's rendering under ``TZ=UTC``: microseconds (left out when zero) and ``Z``."""
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_filter_time(value: str) -> datetime | None:
    """A ``modified_since``/``added_since`` as Django reads it: a date, a naive
    time (UTC here) or one with an offset; None (the filter is dropped) otherwise.
    A ``+`` the query string turned into a space is such a None."""
    text = value.strip()
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if len(text) == 10:  # a date alone: midnight
        parsed = datetime(parsed.year, parsed.month, parsed.day)
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


_TRUE = {"true", "t", "yes", "y", "on", "1"}
_FALSE = {"false", "f", "no", "n", "off", "0"}


def boolean(name: str, value: Any) -> bool:
    """DRF's ``BooleanField``: its spellings, never null."""
    if value is None:
        raise field_error(name, "This field may not be null.")
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in _TRUE | _FALSE:
        return value.lower() in _TRUE
    raise field_error(name, "Must be a valid boolean.")


def text_field(name: str, value: Any, limit: int | None = None) -> str:
    if value is None:
        raise field_error(name, "This field may not be null.")
    if not isinstance(value, (str, int, float)) or isinstance(value, bool):
        raise field_error(name, "Not a valid string.")
    text = str(value)
    if limit is not None and len(text) > limit:
        raise field_error(name, f"Ensure this field has no more than {limit} characters.")
    return text


def tag_list(value: Any) -> list[str]:
    """A ``tag_names`` value: a list of non-blank strings."""
    if not isinstance(value, list):
        kind = type(value).__name__
        raise field_error("tag_names", f'Expected a list of items but got type "{kind}".')
    errors = {}
    for index, name in enumerate(value):
        if not isinstance(name, (str, int, float)) or isinstance(name, bool):
            errors[str(index)] = ["Not a valid string."]
        elif not str(name).strip():
            errors[str(index)] = ["This field may not be blank."]
    if errors:
        raise Problem(400, {"tag_names": errors})
    return [str(name) for name in value]


def render(bookmark: Bookmark, tags: dict[int, Tag]) -> dict[str, Any]:
    """One bookmark as ``BookmarkSerializer`` renders it."""
    stamp = bookmark.date_added.strftime("%Y%m%d%H%M%S")
    return {
        "id": bookmark.bookmark_id,
        "url": bookmark.url,
        "title": bookmark.title,
        "description": bookmark.description,
        "notes": bookmark.notes,
        "web_archive_snapshot_url": f"https://web.archive.org/web/{stamp}/{bookmark.url}",
        "favicon_url": None,
        "preview_image_url": None,
        "is_archived": bookmark.is_archived,
        "unread": bookmark.unread,
        "shared": bookmark.shared,
        "tag_names": sorted(tags[i].name for i in bookmark.tag_ids if i in tags),
        "date_added": iso(bookmark.date_added),
        "date_modified": iso(bookmark.date_modified),
        "website_title": None,
        "website_description": None,
    }
