"""A service's JSON, read field by field into ``Item`` values.

Every reader here names the item (``where``: ``"Karakeep bookmark bm1"``)
and the field when a value is not what the service sends, as an
``ItemDataError``: the sync reports that item and keeps it out of the
mirror, never stores it half-read. ``kind`` and ``show`` name a value in
such a message without showing more of it than a clipped scalar (it may
hold a secret a hostile server echoes).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rulebot.errors import ItemDataError
from rulebot.http import clip
from rulebot.library.item import checked_count, checked_time


def kind(value: Any) -> str:
    """What ``value`` is, in a message: ``an object``, ``a list``, ``null``, ``a str``…"""
    return {dict: "an object", list: "a list", type(None): "null"}.get(
        type(value), f"a {type(value).__name__}"
    )


def show(value: Any) -> str:
    """A scalar as JSON, clipped; anything else by its ``kind``."""
    if isinstance(value, (str, int, float, bool)) or value is None:
        return clip(json.dumps(value), 60)
    return kind(value)


def flag(value: Any, where: str, name: str) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise ItemDataError(f"{where}: field {name!r} is {show(value)}, expected true or false")
    return value


def text(value: Any, where: str, name: str, *, optional: bool = False) -> str:
    """A string (``optional``: null reads as ``""``)."""
    if isinstance(value, str):
        return value
    if value is None and optional:
        return ""
    raise ItemDataError(f"{where}: field {name!r} is {kind(value)}, expected text")


def optional_text(value: Any, where: str, name: str) -> str | None:
    """A string or null."""
    if value is None or isinstance(value, str):
        return value
    raise ItemDataError(f"{where}: field {name!r} is {kind(value)}, expected text")


def whole(value: Any, where: str, name: str) -> int | None:
    """A whole number that fits the store (absent: unknown)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ItemDataError(f"{where}: field {name!r} is {show(value)}, expected a whole number")
    return checked_count(value, where, name)


def named_tags(value: Any, where: str, key: str) -> tuple[str, ...]:
    """A list of tag objects (``[{"name": "js"}, …]``, the name under ``key``)
    as the item's tags: each once, sorted case-insensitively."""
    if not isinstance(value, list):
        raise ItemDataError(f"{where}: field 'tags' is {kind(value)}, expected a list")
    names = []
    for tag in value:
        name = tag.get(key) if isinstance(tag, Mapping) else None
        if not isinstance(name, str) or not name:
            raise ItemDataError(f"{where}: field 'tags' holds {show(tag)}, expected {{{key}: …}}")
        names.append(name)
    return tuple(sorted(dict.fromkeys(names), key=str.casefold))


def iso_time(value: Any) -> datetime | None:
    """An ISO 8601 date and time of a sane length; None when it is not one."""
    if isinstance(value, str) and len(value) <= 40:
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def seconds(parsed: datetime | None, value: Any, where: str, name: str, expected: str) -> int:
    """``parsed`` (the field's ``value`` as the service's format reads it;
    None: it does not) as unix seconds, within 1900-2999 (``checked_time``);
    else an ``ItemDataError`` saying what was ``expected``."""
    if parsed is None:
        raise ItemDataError(f"{where}: field {name!r} is {show(value)}, expected {expected}")
    try:
        stamp = int(parsed.timestamp() // 1)  # the second it falls in, before 1970 too
    except (OverflowError, ValueError):
        stamp = -(2**63)  # out of any range: refused by checked_time
    return checked_time(stamp, where, name)
