"""Shared pieces of the rule vocabulary: compile errors, durations, dates.

A condition or an action is compiled once from its (schema-valid) YAML value.
Anything the schema cannot express (a regex that does not compile, a tag
with a comma) raises ``VocabError`` with the path *inside* the value, which
the config loader joins to the value's path to point at the exact line.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from rulebot.library.tagcase import Fold, unicode_lower


@dataclass
class VocabError(Exception):
    message: str
    path: Sequence[str | int] = field(default_factory=tuple)

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class CompileContext:
    """What compiling needs beyond the value itself: the config's timezone,
    and how its source compares tags (``rulebot.library.tagcase``)."""

    timezone: dt.tzinfo = dt.UTC
    fold: Fold = unicode_lower

    @classmethod
    def for_zone(cls, name: str) -> CompileContext:
        return cls(ZoneInfo(name))


DURATION_PATTERN = r"^[1-9][0-9]*[mhdw]$"
_UNIT_SECONDS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


# Longer than any library has existed; also keeps int() off thousands of digits.
MAX_DURATION_SECONDS = 1000 * 366 * 86400


def parse_duration(text: str) -> int:
    """``30d`` → seconds. Units: m(inutes), h(ours), d(ays), w(eeks)."""
    match = re.fullmatch(r"([1-9][0-9]*)([mhdw])", str(text).strip())
    if not match:
        raise VocabError(
            f"{show_text(text)} is not a duration; write a whole number and a unit: "
            "90m, 12h, 30d, 2w"
        )
    digits, unit = match.groups()
    if len(digits) > 12 or int(digits) * _UNIT_SECONDS[unit] > MAX_DURATION_SECONDS:
        raise VocabError(
            f"duration {show_text(text)} is longer than 1000 years; write a shorter one, e.g. 3650d"
        )
    return int(digits) * _UNIT_SECONDS[unit]


def show_text(value: object, limit: int = 60) -> str:
    """User text quoted for a message: one line (control characters escaped), clipped."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def regex_problem(pattern: str) -> str | None:
    """Why a regex may take exponential time (nested or overlapping repetition), or None.

    Python's ``re`` backtracks: ``(a+)+$`` on 30 a's and a b takes minutes. The
    rule (like safe-regex's star height): a repeated part may not itself hold
    a repetition, nor alternatives that can start with the same character.
    """
    import re._parser as sre  # the parser ``re`` itself uses; ``sre_parse`` is deprecated

    try:
        with warnings.catch_warnings():  # re.compile has already warned about this pattern
            warnings.simplefilter("ignore")
            parsed = sre.parse(pattern)
    except (re.error, RecursionError, OverflowError):
        return None  # compiling reports it
    return _repeat_problem(list(parsed), inside_repeat=False)


Node = tuple[Any, Any]  # (opcode, argument) of re's parse tree
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
_CATEGORIES = {  # \d and \s, ASCII only: enough to see a delimiter they cannot eat
    "CATEGORY_DIGIT": set(range(ord("0"), ord("9") + 1)),
    "CATEGORY_SPACE": {9, 10, 11, 12, 13, 32},
}


def _repeat_problem(items: list[Node], *, inside_repeat: bool) -> str | None:
    for op, arg in items:
        name = str(op)
        if name in _REPEATS:
            _, high, sub = arg
            if high == 1 or name == "POSSESSIVE_REPEAT":
                found = _repeat_problem(list(sub), inside_repeat=inside_repeat)
            elif inside_repeat:
                return "a repetition inside a repeated group, as in (a+)+"
            else:  # `(?:-[a-z]+)*` is safe: each round starts at a `-` that [a-z]+ cannot eat
                found = _repeat_problem(list(sub), inside_repeat=not _delimited(list(sub)))
        elif name == "SUBPATTERN":
            found = _repeat_problem(list(arg[-1]), inside_repeat=inside_repeat)
        elif name == "BRANCH":
            branches = [list(b) for b in arg[1]]
            if inside_repeat and _overlap(branches):
                return "alternatives that can start alike inside a repeated group, as in (a|ab)*"
            found = next(
                (p for b in branches if (p := _repeat_problem(b, inside_repeat=inside_repeat))),
                None,
            )
        elif name in ("ASSERT", "ASSERT_NOT"):
            found = _repeat_problem(list(arg[1]), inside_repeat=inside_repeat)
        else:
            found = None
        if found:
            return found
    return None


def _delimited(items: list[Node]) -> bool:
    """A sequence holds a required character that none of its repetitions can match."""
    literals = [arg for op, arg in items if str(op) == "LITERAL"]
    inner: set[int] = set()
    for op, arg in items:
        if str(op) in _REPEATS:
            chars = _chars(list(arg[2]))
            if chars is None:
                return False
            inner |= chars
        elif str(op) in ("SUBPATTERN", "BRANCH"):
            return False  # nested structure: stay strict
    return any(char not in inner for char in literals)


def _chars(items: list[Node]) -> set[int] | None:
    """Every character a sequence can match; None: unknown or any."""
    found: set[int] = set()
    for op, arg in items:
        name = str(op)
        if name == "LITERAL":
            found.add(arg)
        elif name == "IN":
            first = _first_chars([(op, arg)])
            if first is None:
                return None
            found |= first
        elif name in _REPEATS:
            sub = _chars(list(arg[2]))
            if sub is None:
                return None
            found |= sub
        else:
            return None
    return found


def _first_chars(items: list[Node]) -> set[int] | None:
    """The characters a sequence can start with; None: any (or can be empty)."""
    if not items:
        return None
    op, arg = items[0]
    name = str(op)
    if name == "LITERAL":
        return {arg}
    if name == "SUBPATTERN":
        return _first_chars(list(arg[-1]))
    if name in _REPEATS and arg[0] >= 1:
        return _first_chars(list(arg[2]))
    if name == "IN":
        chars: set[int] = set()
        for in_op, in_arg in arg:
            if str(in_op) == "LITERAL":
                chars.add(in_arg)
            elif str(in_op) == "RANGE" and in_arg[1] - in_arg[0] < 256:
                chars.update(range(in_arg[0], in_arg[1] + 1))
            elif str(in_op) == "CATEGORY" and str(in_arg) in _CATEGORIES:
                chars |= _CATEGORIES[str(in_arg)]
            else:
                return None
        return chars
    if name == "BRANCH":
        union: set[int] = set()
        for branch in arg[1]:
            first = _first_chars(list(branch))
            if first is None:
                return None
            union |= first
        return union
    return None


def _overlap(branches: list[list[Node]]) -> bool:
    seen: set[int] = set()
    for branch in branches:
        first = _first_chars(branch)
        if first is None or first & seen:
            return True
        seen |= first
    return False


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
