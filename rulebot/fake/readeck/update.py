"""``PATCH /api/bookmarks/{id}``'s form (readeck.md §7): what it accepts, and
the changes it makes to a bookmark, answered as the map of changed fields."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from rulebot.fake.base import parse_iso
from rulebot.fake.readeck.model import Bookmark, FormError, iso, sorted_labels

LABEL_FIELDS = ("labels", "add_labels", "remove_labels")
TEXT_DIRECTIONS = ("", "ltr", "rtl")
# a BCP-47 tag, as golang.org/x/text/language parses one (lower-cased first):
# a 2-3 letter language (or 4-8 letters), then subtags of 1-8 letters or digits
_LANG = re.compile(r"[a-z]{2,8}(-[a-z0-9]{1,8})*")


def _spaces(text: str) -> str:
    """``utils.NormalizeSpaces``: runs of white space become one space, trimmed."""
    return " ".join(text.split())


def _strings(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(t, str) for t in value)


def validate(fields: Mapping[str, Any]) -> None:
    """Raise the 400 form error the real server answers for a bad field."""
    errors: dict[str, list[str]] = {}
    for name in ("is_archived", "is_marked", "is_deleted"):
        if fields.get(name) is not None and not isinstance(fields[name], bool):
            errors[name] = ["invalid boolean"]
    for name in (*LABEL_FIELDS, "authors"):
        if fields.get(name) is not None and not _strings(fields[name]):
            errors[name] = ["invalid value"]
    for name in ("title", "description", "site_name", "lang", "text_direction", "read_anchor"):
        if fields.get(name) is not None and not isinstance(fields[name], str):
            errors[name] = ["invalid value"]
    for name in ("title", "site_name"):  # RequiredOrNil: absent or null is fine, "" is not
        value = fields.get(name)
        if isinstance(value, str) and not value.strip():
            errors[name] = ["field is required"]
    if isinstance(fields.get("title"), str) and len(fields["title"].strip()) > 1024:
        errors["title"] = ["text must contain 1024 characters at most"]
    lang = fields.get("lang")
    if isinstance(lang, str) and lang.strip() and not _LANG.fullmatch(lang.strip().lower()):
        errors["lang"] = ["invalid language code"]
    direction = fields.get("text_direction")
    if isinstance(direction, str) and direction not in TEXT_DIRECTIONS:
        errors["text_direction"] = ["invalid choice"]
    anchor = fields.get("read_anchor")
    if isinstance(anchor, str) and len(anchor.strip()) > 256:
        errors["read_anchor"] = ["text must contain 256 characters at most"]
    published = fields.get("published")
    if published not in (None, "") and (
        not isinstance(published, str) or parse_iso(published.strip()) is None
    ):
        errors["published"] = ["invalid datetime"]
    progress = fields.get("read_progress")
    if progress is not None and (
        isinstance(progress, bool) or not isinstance(progress, int) or not 0 <= progress <= 100
    ):
        errors["read_progress"] = ["must be between 0 and 100"]
    if errors:
        raise FormError(400, errors)


def apply(bookmark: Bookmark, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Make the changes ``fields`` (already validated) ask for; returns the
    fields that changed, as the answer shows them. ``is_deleted`` and
    ``updated`` are the caller's: they need the server's clock."""
    changed: dict[str, Any] = {}

    def put(name: str, value: Any, shown: Any = None) -> None:
        if getattr(bookmark, name) != value:
            setattr(bookmark, name, value)
            changed[name] = value if shown is None else shown

    for name in ("is_archived", "is_marked"):
        if fields.get(name) is not None:
            put(name, fields[name])
    for name in ("title", "description", "site_name"):
        if isinstance(fields.get(name), str):
            put(name, _spaces(fields[name]))
    if fields.get("authors") is not None:  # trimmed, one per line, empties dropped
        lines = [line.strip() for text in fields["authors"] for line in text.splitlines()]
        put("authors", [line for line in lines if line])
    if isinstance(fields.get("lang"), str):
        put("lang", fields["lang"].strip().lower())
    if isinstance(fields.get("text_direction"), str):
        put("text_direction", fields["text_direction"])
    if "published" in fields:
        text = fields["published"]
        parsed = parse_iso(text.strip()) if isinstance(text, str) and text.strip() else None
        when = None if parsed is None else int(parsed.timestamp() * 1_000_000)
        put("published", when, None if when is None else iso(when))  # cleared: null
    if fields.get("read_progress") is not None:
        put("read_progress", fields["read_progress"])
        if fields["read_progress"] in (0, 100):  # also clears the anchor
            put("read_anchor", "")
    if isinstance(fields.get("read_anchor"), str) and fields.get("read_progress") not in (0, 100):
        put("read_anchor", fields["read_anchor"].strip())
    labels = list(bookmark.labels)
    if fields.get("labels") is not None:  # the fixed order: labels, add, remove
        labels = list(fields["labels"])
    if fields.get("add_labels") is not None:
        labels.extend(fields["add_labels"])
    if fields.get("remove_labels") is not None:
        gone = {t.strip() for t in fields["remove_labels"]}
        labels = [t for t in labels if t.strip() not in gone]
    if any(fields.get(n) is not None for n in LABEL_FIELDS):
        put("labels", sorted_labels(labels))
    return changed
