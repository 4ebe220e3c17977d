"""What the Karakeep API accepts, checked as its zod validators and
handlers do: JSON bodies, common bookmark fields, query booleans and
numbers, bookmark and tag cursors, tag names and attachments."""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

from rulebot.fake.karakeep.model import Invalid, TextError, parse_date

MAX_PAGE = 100  # MAX_NUM_BOOKMARKS_PER_PAGE
DEFAULT_PAGE = 20  # DEFAULT_NUM_BOOKMARKS_PER_PAGE
MAX_TAG_PAGE = 1000
MAX_TITLE = 1000


def read_json(headers: Mapping[str, str], raw_body: bytes) -> Any:
    """The body as Hono's json validator sees it: read only for a JSON content type."""
    if "application/json" not in headers.get("content-type", "") or not raw_body.strip():
        return {}
    try:
        return json.loads(raw_body)
    except (ValueError, RecursionError):
        raise TextError(400, "Malformed JSON in request body") from None


def json_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise Invalid([], "Invalid input: expected object", "invalid_type")
    return body


def common_fields(fields: Mapping[str, Any]) -> dict[str, Any]:
    """archived/favourited/title/note/summary/createdAt, checked as zod would."""
    updates: dict[str, Any] = {}
    for key in ("archived", "favourited"):
        if key in fields:
            if not isinstance(fields[key], bool):
                raise Invalid([key], "Invalid input: expected boolean", "invalid_type")
            updates[key] = fields[key]
    for key, nullable in (("title", True), ("note", False), ("summary", True)):
        if key in fields:
            value = fields[key]
            if not (isinstance(value, str) or (value is None and nullable)):
                raise Invalid([key], "Invalid input: expected string", "invalid_type")
            if key == "title" and isinstance(value, str) and len(value) > MAX_TITLE:
                raise Invalid([key], f"Too big: expected string to have <={MAX_TITLE} characters")
            updates[key] = value
    if "createdAt" in fields:
        stamp = parse_date(fields["createdAt"]) if isinstance(fields["createdAt"], str) else None
        if stamp is None:
            raise Invalid(["createdAt"], "Invalid input: expected date", "invalid_type")
        updates["createdAt"] = stamp
    return updates


def query_bool(query: Mapping[str, str], name: str) -> bool | None:
    """Only the literal strings "true"/"false" (zStringBool); 1, yes, ... are a 400."""
    if name not in query:
        return None
    if query[name] not in ("true", "false"):
        raise Invalid([name], 'Invalid option: expected one of "true"|"false"')
    return query[name] == "true"


def whole_number(text: str, name: str, *, minimum: int) -> int:
    try:
        value = float(text)
    except ValueError:
        raise Invalid([name], "Invalid input: expected number", "invalid_type") from None
    if value != int(value) or value < minimum:
        raise Invalid([name], f"{name} must be a whole number >= {minimum}")
    return int(value)


def query_limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_PAGE
    limit = whole_number(text, "limit", minimum=1)
    if limit > MAX_PAGE:
        raise Invalid(["limit"], f"Too big: expected number to be <={MAX_PAGE}", "too_big")
    return limit


def parse_cursor(cursor: str) -> tuple[str, int]:
    """``<id>_<ISO createdAt>``: the first item of the next page."""
    cursor_id, sep, stamp = cursor.partition("_")
    at = parse_date(stamp) if sep else None
    if at is None:
        raise Invalid(["cursor"], "Invalid cursor")
    return cursor_id, at


def normalise_tag(name: str) -> str:
    """normalizeTagName: trim, then strip every leading ``#``."""
    return name.strip().lstrip("#")


def tag_name(fields: Mapping[str, Any]) -> str:
    raw = fields.get("name")
    name = normalise_tag(raw) if isinstance(raw, str) else ""
    if not name:
        raise Invalid(["name"], "Tag name can't be empty")
    return name


def tag_entries(body: Any) -> list[dict[str, Any]]:
    tags = json_object(body).get("tags")
    if not isinstance(tags, list):
        raise Invalid(["tags"], "Invalid input: expected array", "invalid_type")
    for index, entry in enumerate(tags):
        if not isinstance(entry, dict):
            raise Invalid(["tags", index], "Invalid input: expected object", "invalid_type")
        if not any(isinstance(entry.get(k), str) and entry[k] for k in ("tagId", "tagName")):
            raise Invalid(["tags", index], "You must provide either a tagId or a tagName")
        if entry.get("attachedBy", "human") not in ("human", "ai"):
            raise Invalid(["tags", index, "attachedBy"], "Invalid option")
    return tags


def entry_attached_by(entries: list[dict[str, Any]], tag_id: str) -> str:
    return next(e.get("attachedBy", "human") for e in entries if e.get("tagId") == tag_id)


def tag_cursor(page: int) -> str:
    raw = json.dumps({"page": page}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def tag_page(cursor: str | None) -> int:
    if cursor is None:
        return 0
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        page = decoded["page"]
    except (ValueError, TypeError, KeyError):
        raise TextError(400, "Invalid cursor") from None
    if not isinstance(page, int) or page < 0:
        raise TextError(400, "Invalid cursor")
    return page
