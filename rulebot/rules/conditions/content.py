"""Size, type, language: ``word_count``, ``reading_time`` (``{gt, gte, lt,
lte}``), ``type`` (article/video/image) and ``lang``."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, ClassVar

from rulebot.library.item import Item
from rulebot.rules.conditions.base import (
    Check,
    Condition,
    Env,
    Truth,
    as_list,
    condition,
    one_or_list,
)
from rulebot.rules.vocab import CompileContext

WORDS_PER_MINUTE = 220


class NumberCondition(Condition):
    """``{gt, gte, lt, lte}``; all given must hold; unknown never matches."""

    unit: ClassVar[str]
    _ops: ClassVar[dict[str, Callable[[float, float], bool]]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    _signs: ClassVar[dict[str, str]] = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}  # inlined
    schema = {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            op: {"description": f"{word}.", "type": "number", "minimum": 0}
            for op, word in (
                ("gt", "Greater than"),
                ("gte", "At least"),
                ("lt", "Less than"),
                ("lte", "At most"),
            )
        },
    }

    def measure(self, item: Item) -> tuple[float | None, str]:
        raise NotImplementedError

    def matches(self, item: Item, now: int) -> Truth:
        number, _ = self.measure(item)
        if number is None:
            return None
        return all(self._ops[op](number, limit) for op, limit in self.value.items())

    def test(self, item: Item, now: int) -> Check:
        number, note = self.measure(item)
        if number is None:
            return Check(self.key, None, f"{self.key} unknown")
        ok = all(self._ops[op](number, limit) for op, limit in self.value.items())
        bounds = ", ".join(f"{op} {limit}" for op, limit in self.value.items())
        return Check(self.key, ok, f"{self.key} {number:g}{self.unit}{note} ({bounds})")


@condition
class WordCount(NumberCondition):
    key = "word_count"
    fields = frozenset({"word_count"})
    unit = ""
    description = "Compare the article's word count: {gt, gte, lt, lte}."
    schema = {"description": description, **NumberCondition.schema}

    def measure(self, item: Item) -> tuple[float | None, str]:
        return item.word_count, ""

    def truth(self, env: Env) -> tuple[str, str]:
        # inlined: a known count, compared with each bound
        holds = " and ".join(
            f"i.word_count {self._signs[op]} {env.const(limit)}" for op, limit in self.value.items()
        )
        return (
            f"(i.word_count is not None and {holds})",
            f"(i.word_count is not None and not ({holds}))",
        )


@condition
class ReadingTime(NumberCondition):
    key = "reading_time"
    fields = frozenset({"time_to_read", "word_count"})  # else estimated from words
    unit = " min"
    description = (
        "Compare the reading time in minutes: {gt, gte, lt, lte}. Uses Pocket's "
        f"time_to_read, else estimates from the word count at {WORDS_PER_MINUTE} words a minute."
    )
    schema = {"description": description, **NumberCondition.schema}

    def measure(self, item: Item) -> tuple[float | None, str]:
        if item.time_to_read is not None:
            return item.time_to_read, ""
        if item.word_count:
            return math.ceil(item.word_count / WORDS_PER_MINUTE), " (estimated)"
        return None, ""


_TYPES = ("article", "video", "image")


@condition
class Type(Condition):
    key = "type"
    fields = frozenset({"is_article", "has_video", "has_image"})
    description = "What the item is: `article` (is_article), `video` or `image` (is one)."
    schema = one_or_list({"type": "string", "enum": list(_TYPES)}, description)

    def __init__(self, value: Any, ctx: CompileContext) -> None:
        self.wanted = [str(v) for v in as_list(value)]

    def test(self, item: Item, now: int) -> Check:
        facts = {
            "article": item.is_article,
            "video": None if item.has_video is None else item.has_video == 2,
            "image": None if item.has_image is None else item.has_image == 2,
        }
        seen = [facts[w] for w in self.wanted]
        if any(seen):
            return Check(self.key, True, "type " + "/".join(self.wanted))
        if any(s is None for s in seen):
            return Check(self.key, None, "type unknown")
        return Check(self.key, False, "type " + ", ".join(t for t in _TYPES if facts[t]) or "other")


@condition
class Lang(Condition):
    key = "lang"
    fields = frozenset({"lang"})
    description = (
        "Language code as the service detected it (`en`, `de`…); a list means any. "
        "`en` also matches regional codes (`en_US`, `en-GB`); `en_US` only that region."
    )
    schema = one_or_list({"type": "string", "minLength": 1}, description)

    def __init__(self, value: Any, ctx: CompileContext) -> None:
        self.langs = [_lang_code(str(v)) for v in as_list(value)]
        self.ranges = tuple(code + "-" for code in self.langs)

    def matches(self, item: Item, now: int) -> Truth:
        if not item.lang:
            return None
        code = _lang_code(item.lang)
        return code in self.langs or code.startswith(self.ranges)

    def test(self, item: Item, now: int) -> Check:
        if not item.lang:
            return Check(self.key, None, "lang unknown")
        return Check(self.key, self.matches(item, now), f"lang {item.lang}")


def _lang_code(code: str) -> str:
    """Services write a region with ``_`` (Wallabag's ``en_US``) or ``-``
    (BCP 47 ``en-GB``): compare them as one, case-insensitively (RFC 4647
    basic filtering: a language range matches its own subtags)."""
    return code.strip().lower().replace("_", "-")
