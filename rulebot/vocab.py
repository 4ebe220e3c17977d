"""Shared pieces of the rule vocabulary: compile errors, durations, dates.

A condition or an action is compiled once from its (schema-valid) YAML value.
Anything the schema cannot express (a regex that does not compile, a tag
with a comma) raises ``VocabError`` with the path *inside* the value, which
the config loader joins to the value's path to point at the exact line.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo


@dataclass
class VocabError(Exception):
    message: str
    path: Sequence[str | int] = field(default_factory=tuple)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class CompileContext:
    """What compiling needs beyond the value itself."""

    timezone: dt.tzinfo = dt.UTC

    @classmethod
    def for_zone(cls, name: str) -> CompileContext:
        return cls(ZoneInfo(name))


DURATION_PATTERN = r"^[1-9][0-9]*[mhdw]$"
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> int:
    """``30d`` → seconds. Units: m(inutes), h(ours), d(ays), w(eeks)."""
    match = re.fullmatch(r"([1-9][0-9]*)([mhdw])", str(text).strip())
    if not match:
        raise VocabError(
            f"{text!r} is not a duration; write a whole number and a unit: 90m, 12h, 30d, 2w"
        )
    return int(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def format_age(seconds: int) -> str:
    """A compact human age: 41d, 5h, 12m."""
    if seconds >= 86400:
        return f"{seconds // 86400}d"
    if seconds >= 3600:
        return f"{seconds // 3600}h"
    return f"{max(seconds, 0) // 60}m"


def parse_instant(value: object, tz: dt.tzinfo) -> int:
    """A date or datetime (YAML-typed or ISO text) → unix seconds.

    A bare date means the start of that day in the config's timezone; a
    datetime without an offset is read in that timezone too.
    """
    if isinstance(value, dt.datetime):
        moment = value
    elif isinstance(value, dt.date):
        moment = dt.datetime.combine(value, dt.time())
    elif isinstance(value, str):
        try:
            moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            raise VocabError(
                f"{value!r} is not a date; write YYYY-MM-DD or an ISO 8601 date-time"
            ) from None
    else:
        raise VocabError(f"{value!r} is not a date; write YYYY-MM-DD")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=tz)
    return int(moment.timestamp())


def tag_values(value: str | list[str]) -> list[str]:
    """A tag list as written: a YAML list, or one comma-separated string."""
    if isinstance(value, str):
        tags = [part.strip() for part in value.split(",")]
        if any(not tag for tag in tags):
            raise VocabError(f"{value!r} has an empty tag; separate tags with single commas")
        return tags
    tags = []
    for index, tag in enumerate(value):
        text = str(tag).strip()
        if "," in text:
            raise VocabError(
                f"tag {text!r} contains a comma; Pocket separates tags with commas, "
                "so write them as separate list items",
                (index,),
            )
        if not text:
            raise VocabError("empty tag", (index,))
        tags.append(text)
    return tags


def tags_schema(description: str) -> dict:
    return {
        "description": description + " A list of tags, or one comma-separated string.",
        "type": ["array", "string"],
        "items": {"type": "string", "minLength": 1},
        "minItems": 1,
        "minLength": 1,
    }
