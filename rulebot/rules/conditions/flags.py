"""State and flags: ``status`` (unread/archived), ``favorite``, ``private``, ``location``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rulebot.library.item import ARCHIVED, UNREAD, Item
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

_STATUS = {"unread": UNREAD, "archived": ARCHIVED}


@condition
class Status(Condition):
    cost = 1
    key = "status"
    fields = frozenset({"status"})
    description = "Pocket status: `unread` (0) or `archived` (1); a list means any of them."
    schema = one_or_list({"type": "string", "enum": list(_STATUS)}, description)

    def __init__(self, value: Any, ctx: CompileContext) -> None:
        self.wanted = [str(v) for v in as_list(value)]
        self.codes = frozenset(_STATUS[w] for w in self.wanted)

    def matches(self, item: Item, now: int) -> Truth:
        return item.status in self.codes

    def truth(self, env: Env) -> tuple[str, str]:
        codes = env.const(self.codes)
        return f"(i.status in {codes})", f"(i.status not in {codes})"

    def test(self, item: Item, now: int) -> Check:
        name = {UNREAD: "unread", ARCHIVED: "archived"}.get(item.status, f"status {item.status}")
        ok = any(_STATUS[w] == item.status for w in self.wanted)
        return Check(self.key, ok, f"status {name}")

    def because(self, item: Item, now: int) -> Sequence[str]:
        return _STATUS_REASONS[item.status]  # it matched: unread or archived

    @property
    def fixed(self) -> tuple[str, ...] | None:
        return _STATUS_REASONS[next(iter(self.codes))] if len(self.codes) == 1 else None


_STATUS_REASONS = {code: (f"status {name}",) for name, code in _STATUS.items()}


@condition
class Favorite(Condition):
    cost = 1
    key = "favorite"
    fields = frozenset({"favorite"})
    description = "true: is a favorite; false: is not."
    schema = {"description": description, "type": "boolean"}

    def matches(self, item: Item, now: int) -> Truth:
        return None if item.favorite is None else item.favorite == bool(self.value)

    def truth(self, env: Env) -> tuple[str, str]:
        # favorite is True, False or None (unknown): None is neither T nor F
        wanted = bool(self.value)
        return f"(i.favorite is {wanted})", f"(i.favorite is {not wanted})"

    def test(self, item: Item, now: int) -> Check:
        if item.favorite is None:
            return Check(self.key, None, "favorite unknown")
        ok = item.favorite == bool(self.value)
        return Check(self.key, ok, "favorite" if item.favorite else "not favorite")


@condition
class Private(Condition):
    cost = 1
    key = "private"
    fields = frozenset({"private"})
    description = "true: a private bookmark; false: a public one (Shaarli; unknown elsewhere)."
    schema = {"description": description, "type": "boolean"}

    def matches(self, item: Item, now: int) -> Truth:
        private = item.extra.get("private")
        return private == bool(self.value) if isinstance(private, bool) else None

    def test(self, item: Item, now: int) -> Check:
        private = item.extra.get("private")
        if not isinstance(private, bool):
            return Check(self.key, None, "private flag unknown")
        return Check(self.key, private == bool(self.value), "private" if private else "public")


# Readwise Reader's lists: `archive` is archived, the others unread (`feed`
# only when the config takes feed items into the library)
_LOCATIONS = ("new", "later", "shortlist", "archive", "feed")


@condition
class Location(Condition):
    cost = 1
    key = "location"
    fields = frozenset({"location"})
    description = (
        "Readwise Reader's list: `new` (the Inbox), `later`, `shortlist`, `archive`, "
        "`feed`; a list means any of them (unknown on every other source)."
    )
    schema = one_or_list({"type": "string", "enum": list(_LOCATIONS)}, description)

    def __init__(self, value: Any, ctx: CompileContext) -> None:
        self.wanted = frozenset(str(v) for v in as_list(value))

    def matches(self, item: Item, now: int) -> Truth:
        location = _location(item)
        return None if location is None else location in self.wanted

    def test(self, item: Item, now: int) -> Check:
        location = _location(item)
        if location is None:
            return Check(self.key, None, "location unknown")
        return Check(self.key, location in self.wanted, f"location {location}")


def _location(item: Item) -> str | None:
    """The item's list, as the actions before left it: an item archived since
    the sync is in `archive`; one put back is in the list `readd` chose,
    which the mirror does not know yet (unknown)."""
    location = item.extra.get("location")
    if location not in _LOCATIONS:
        return None
    if item.status == ARCHIVED:
        return "archive"
    return None if location == "archive" else str(location)
