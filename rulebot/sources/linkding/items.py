"""How a Linkding bookmark becomes an ``Item``, and how Linkding compares URLs.

``bookmark_to_item`` reads what ``GET /api/bookmarks/`` sends (``specs/linkding.md``
§4): ``is_archived`` is the status; the ``unread`` and ``shared`` flags, which
no other source has, travel in ``Item.extra``; there is no favourite.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rulebot.errors import ItemDataError
from rulebot.library.item import ARCHIVED, MAX_INT, UNREAD, Item
from rulebot.sources.fields import flag, kind, seconds, show, text

UNREAD_FLAG, SHARED_FLAG = "unread", "shared"  # Item.extra keys: Linkding's own flags


def bookmark_to_item(raw: Any) -> Item:
    """One bookmark as rulebot sees it.

    ``is_archived`` -> status (archived or unread), ``tag_names`` -> tags (as
    the server spells and orders them), ``date_added``/``date_modified`` ->
    ``time_added``/``time_updated``, ``description`` -> the excerpt; the
    ``unread`` and ``shared`` flags go to ``Item.extra``. Linkding has no
    favourite: it stays unknown (a rule on it is refused at validate). A
    bookmark with a field of the wrong type, an id past 2^63 - 1 or a time
    outside 1900-2999 is an ``ItemDataError`` naming it.
    """
    if not isinstance(raw, Mapping):
        raise ItemDataError(f"Linkding bookmark is {kind(raw)}, expected an object")
    bookmark_id = raw.get("id")
    if not is_id(bookmark_id):
        raise ItemDataError(
            f"Linkding bookmark has id {show(bookmark_id)}, expected a whole number from 1"
        )
    where = f"Linkding bookmark {bookmark_id}"
    title = text(raw.get("title"), where, "title")
    tags = raw.get("tag_names")
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ItemDataError(f"{where}: field 'tag_names' is {kind(tags)}, expected a list of text")
    description = raw.get("description")
    return Item(
        item_id=str(bookmark_id),
        given_url=text(raw.get("url"), where, "url"),
        given_title=title,
        resolved_title=title,
        status=ARCHIVED if flag(raw.get("is_archived"), where, "is_archived") else UNREAD,
        favorite=None,
        tags=tuple(dict.fromkeys(t for t in tags if t)),
        time_added=_seconds(raw.get("date_added"), where, "date_added"),
        time_updated=_seconds(raw.get("date_modified"), where, "date_modified"),
        excerpt=description if isinstance(description, str) else "",
        extra={
            UNREAD_FLAG: flag(raw.get("unread"), where, "unread"),
            SHARED_FLAG: flag(raw.get("shared"), where, "shared"),
        },
    )


def bookmark_id_of(item_id: str) -> int | None:
    """A mirror item's id as Linkding's integer (None: not one of Linkding's)."""
    if item_id.isascii() and item_id.isdigit() and len(item_id) < 20:
        number = int(item_id)
        return number if is_id(number) else None
    return None


def normalized_url(url: str) -> str:
    """``url`` as Linkding compares two bookmarks' URLs
    (``LD:bookmarks/utils.py::normalize_url``, MIT): scheme and host
    lower-cased, port and user kept, trailing ``/`` of the path removed,
    query parameters sorted, fragment kept. ``http``/``https`` and ``www.``
    still differ."""
    url = url.strip() if isinstance(url, str) else ""
    if not url:
        return ""
    try:
        parsed = urllib.parse.urlparse(url)
        netloc = parsed.hostname.lower() if parsed.hostname else ""
        if parsed.port:
            netloc += f":{parsed.port}"
        if parsed.username:
            auth = parsed.username
            if parsed.password:
                auth += f":{parsed.password}"
            netloc = f"{auth}@{netloc}"
        path = parsed.path.rstrip("/") if parsed.path else ""
        query = ""
        if parsed.query:
            pairs = urllib.parse.parse_qsl(parsed.query, keep_blank_values=True)
            pairs.sort(key=lambda pair: (pair[0], pair[1]))
            query = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
        parts = (parsed.scheme.lower(), netloc, path, parsed.params, query, parsed.fragment)
        return urllib.parse.urlunparse(parts)
    except (ValueError, AttributeError):
        return url


def parse_time(value: Any) -> datetime | None:
    """Linkding's ISO 8601 time (``2026-12-07T09:01:49.119828Z``, or with an
    offset under another ``TZ``) in UTC; None when it is not one."""
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if parsed.tzinfo is None:
        return None
    try:
        return parsed.astimezone(UTC)
    except (OverflowError, ValueError):
        return None


def is_id(value: Any) -> bool:
    """An id as Linkding gives it: SQLite's AUTOINCREMENT, from 1 (never reused)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= MAX_INT


def _seconds(value: Any, where: str, name: str) -> int:
    return seconds(parse_time(value), value, where, name, "an ISO 8601 time")
