"""Conditions on the library as a whole: ``duplicate`` (another live item
has the same URL)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rulebot.library.item import Item
from rulebot.rules.conditions.base import Check, Condition, Env, Truth, condition
from rulebot.rules.vocab import CompileContext


@condition
class Duplicate(Condition):
    """Needs the whole library, not one item: ``Where.select`` calls ``prepare``
    with every live item (as the rule sees the library) before any test."""

    cost = 1
    key = "duplicate"
    fields = frozenset({"url", "time_added"})
    library_wide = True
    description = (
        "Another live item has the same URL (normalised: scheme, www., tracking parameters, "
        "trailing slash and fragment ignored; given and resolved URL both count). Matches "
        "every copy except the one kept: the oldest (keep: oldest) or newest by time_added."
    )
    schema = {
        "description": description,
        "type": "object",
        "additionalProperties": False,
        "required": ["by"],
        "properties": {
            "by": {"description": "What makes a duplicate: the URL.", "enum": ["url"]},
            "keep": {
                "description": "The copy that does not match: oldest (default) or newest.",
                "enum": ["oldest", "newest"],
                "default": "oldest",
            },
        },
    }

    def __init__(self, value: Mapping[str, Any], ctx: CompileContext) -> None:
        self.newest = value.get("keep", "oldest") == "newest"
        # item_id -> the id of the copy kept; filled in place (the generated
        # predicate holds this very dict)
        self.copies: dict[str, str] = {}
        self._keys: dict[str, str] = {}  # URL -> normalised, across prepares

    def _key(self, url: str) -> str:
        key = self._keys.get(url)
        if key is None:
            from rulebot.library.urls import normalise_url

            key = self._keys[url] = normalise_url(url)
        return key

    def prepare(self, items: Iterable[Item | None]) -> None:
        parent: dict[str, str] = {}

        def root(key: str) -> str:
            while parent[key] != key:
                parent[key] = parent[parent[key]]
                key = parent[key]
            return key

        keyed: list[tuple[Item, str]] = []
        for item in items:
            if item is None or item.is_deleted:
                continue
            keys = [
                k for k in {self._key(u) for u in (item.given_url, item.resolved_url) if u} if k
            ]
            if not keys:
                continue
            for key in keys:
                parent.setdefault(key, key)
            for key in keys[1:]:  # given and resolved URL join their groups
                parent[root(key)] = root(keys[0])
            keyed.append((item, keys[0]))
        groups: dict[str, list[Item]] = {}
        for item, key in keyed:
            groups.setdefault(root(key), []).append(item)
        self.copies.clear()
        pick = max if self.newest else min
        for members in groups.values():
            if len(members) < 2:
                continue
            kept = pick(members, key=lambda i: i.sort_key)
            for member in members:
                if member is not kept:
                    self.copies[member.item_id] = kept.item_id

    def matches(self, item: Item, now: int) -> Truth:
        return item.item_id in self.copies

    def truth(self, env: Env) -> tuple[str, str]:
        copies = env.const(self.copies)
        return f"(i.item_id in {copies})", f"(i.item_id not in {copies})"

    def test(self, item: Item, now: int) -> Check:
        kept = self.copies.get(item.item_id)
        which = "newest" if self.newest else "oldest"
        if kept is None:
            return Check(self.key, False, f"not a duplicate (or the {which} copy, kept)")
        return Check(self.key, True, f"duplicate of item {kept} (same URL; the {which} is kept)")
