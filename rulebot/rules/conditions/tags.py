"""Tags: ``tag``, ``tags`` (any/all/none) and ``untagged``, which does not
count rulebot's own grace marks as tags."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

from rulebot.library.item import Item
from rulebot.library.tagcase import tag_sets
from rulebot.memo import Memo
from rulebot.rules.conditions.base import Check, Condition, Env, Truth, condition
from rulebot.rules.vocab import CompileContext, VocabError, tag_values


def _tags_seen(item: Item) -> str:
    if item.tags is None:
        return "tags unknown"
    return "tags " + (", ".join(item.tags) if item.tags else "(none)")


@condition
class Tag(Condition):
    key = "tag"
    fields = frozenset({"tags"})
    description = "Has this tag (case-insensitive). A list means: has all of them."
    schema = {
        "description": description,
        "type": ["string", "array"],
        "items": {"type": "string", "minLength": 1},
        "minItems": 1,
        "minLength": 1,
    }

    def __init__(self, value: Any, ctx: CompileContext) -> None:
        if isinstance(value, str) and "," in value:
            raise VocabError(
                f"tag {value!r} contains a comma, and no tag can; for items with all of "
                "several tags write a list: tag: [a, b]"
            )
        self.tags = tag_values(value) if isinstance(value, list) else [str(value).strip()]
        self.fold = ctx.fold  # as the source compares tags (rulebot.library.tagcase)
        self.folded = frozenset(map(self.fold, self.tags))
        self.label = ("tag " + ", ".join(self.tags),)

    def matches(self, item: Item, now: int) -> Truth:
        tags = item.tags
        if tags is None:
            return None
        return bool(tags) and self.folded <= item.tag_set(self.fold)

    def truth(self, env: Env) -> tuple[str, str]:
        have = f"{env.const(tag_sets(self.fold))}[i.tags]"  # a lookup, no call
        has = f"({env.const(self.folded)} <= {have})"
        return f"(bool(i.tags) and {has})", f"(i.tags is not None and not (i.tags and {has}))"

    def test(self, item: Item, now: int) -> Check:
        if item.tags is None:
            return Check(self.key, None, f"tag {', '.join(self.tags)}: {_tags_seen(item)}")
        have = item.tag_set(self.fold)
        ok = all(self.fold(t) in have for t in self.tags)
        label = self.label[0]
        return Check(self.key, ok, label if ok else f"{label}: {_tags_seen(item)}")

    def because(self, item: Item, now: int) -> Sequence[str]:
        return self.label

    @property
    def fixed(self) -> tuple[str, ...] | None:
        return self.label


@condition
class Tags(Condition):
    key = "tags"
    fields = frozenset({"tags"})
    description = "Tag set tests: `any` (at least one), `all` (every one), `none` (not one)."
    _list = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
    schema = {
        "description": description,
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "any": {**_list, "description": "Has at least one of these tags."},
            "all": {**_list, "description": "Has every one of these tags."},
            "none": {**_list, "description": "Has none of these tags."},
        },
    }

    def __init__(self, value: Mapping[str, Any], ctx: CompileContext) -> None:
        self.tests = {}
        for test_name in ("any", "all", "none"):
            if test_name in value:
                try:
                    self.tests[test_name] = tag_values(value[test_name])
                except VocabError as err:
                    raise VocabError(err.message, (test_name, *err.path)) from None
        self.fold = ctx.fold  # as the source compares tags (rulebot.library.tagcase)
        self.folded = [(name, frozenset(map(self.fold, tags))) for name, tags in self.tests.items()]
        self.label = (
            "; ".join(f"tags {name} of {', '.join(tags)}" for name, tags in self.tests.items()),
        )

    def matches(self, item: Item, now: int) -> Truth:
        if item.tags is None:
            return None
        have = item.tag_set(self.fold)
        for name, folded in self.folded:
            if name == "any":
                if folded.isdisjoint(have):
                    return False
            elif name == "all":
                if not folded <= have:
                    return False
            elif not folded.isdisjoint(have):
                return False
        return True

    def truth(self, env: Env) -> tuple[str, str]:
        have = f"{env.const(tag_sets(self.fold))}[i.tags]"  # a lookup, no call
        tests = []
        for name, folded in self.folded:
            wanted = env.const(folded)
            tests.append(
                {
                    "any": f"not {wanted}.isdisjoint({have})",
                    "all": f"{wanted} <= {have}",
                    "none": f"{wanted}.isdisjoint({have})",
                }[name]
            )
        holds = " and ".join(tests)
        return f"(i.tags is not None and {holds})", f"(i.tags is not None and not ({holds}))"

    def test(self, item: Item, now: int) -> Check:
        if item.tags is None:
            return Check(self.key, None, f"tags: {_tags_seen(item)}")
        have = item.tag_set(self.fold)
        ok = True
        for name, tags in self.tests.items():
            hits = [t for t in tags if self.fold(t) in have]
            passed = {"any": bool(hits), "all": len(hits) == len(tags), "none": not hits}[name]
            ok = ok and passed
        reason = self.label[0]
        return Check(self.key, ok, reason if ok else f"{reason}: {_tags_seen(item)}")

    def because(self, item: Item, now: int) -> Sequence[str]:
        return self.label

    @property
    def fixed(self) -> tuple[str, ...] | None:
        return self.label


@condition
class Untagged(Condition):
    cost = 1
    key = "untagged"
    fields = frozenset({"tags"})
    description = "true: has no tags at all; false: has at least one. Unknown tags never match."
    schema = {"description": description, "type": "boolean"}

    def matches(self, item: Item, now: int) -> Truth:
        return None if item.tags is None else only_marks(item.tags) == bool(self.value)

    def truth(self, env: Env) -> tuple[str, str]:
        wanted = bool(self.value)
        only = env.const(only_marks_of)  # a lookup, no call
        return (
            f"(i.tags is not None and (not i.tags or {only}[i.tags]) is {wanted})",
            f"(i.tags is not None and (not i.tags or {only}[i.tags]) is not {wanted})",
        )

    def test(self, item: Item, now: int) -> Check:
        if item.tags is None:
            return Check(self.key, None, "untagged: tags unknown")
        bare = only_marks(item.tags)
        return Check(self.key, bare == bool(self.value), "untagged" if bare else _tags_seen(item))


# A grace mark (`rulebot:RULE:YYYY-MM-DD`, see planning/grace.py) is rulebot's own
# bookkeeping kept in the library: an item carrying only marks still counts as
# untagged, so marking an item never changes what an `untagged` rule does.
# `tag`/`tags` see marks like any tag (they are only matched when named).
MARK = re.compile(  # fullmatch
    r"rulebot:[a-z0-9_-]+:[0-9]{4}-[0-9]{2}-[0-9]{2}", re.IGNORECASE | re.ASCII
)


def _only_marks(tags: tuple[str, ...]) -> bool:
    return all(MARK.fullmatch(tag) for tag in tags)


only_marks_of = Memo(_only_marks)  # a library repeats a few tag lists


def only_marks(tags: tuple[str, ...]) -> bool:
    """True when every tag (possibly none) is a grace mark."""
    return only_marks_of[tags]
