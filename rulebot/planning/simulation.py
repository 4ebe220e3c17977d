"""The library as the planner sees it while rules run: ``Simulation`` (the
items as earlier rules left them, in the planner's order), ``Originals`` (as
stored before the plan, with each item's reference in the plan) and ``Urls``
(the saved URLs an ``add`` checks)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rulebot.library.item import Item


def item_ref(item: Item) -> dict[str, Any]:
    """An item as the plan found it: what listings show, and what its actions
    depend on, which ``apply`` of a saved plan checks again (``engine.Seen``):
    a service may change tags without a new ``time_updated`` (Karakeep's tag
    rename keeps ``modifiedAt``)."""
    return {
        "item_id": item.item_id,
        "title": item.title,
        "url": item.url,
        "time_updated": item.time_updated or 0,
        "status": item.status,
        "favorite": item.favorite,
        "tags": None if item.tags is None else list(item.tags),
    }


def url_keys(item: Item) -> set[str]:
    return {u for u in (item.given_url, item.resolved_url) if u}


class Originals(dict[str, Item]):
    """The library as stored before the plan (id -> item). ``ref`` gives an
    item's reference in the plan, made once: all the actions a first run
    plans for one item share one dict (a plan holds 100k+ of them)."""

    def __init__(self, items: Iterable[tuple[str, Item]] | Mapping[str, Item] = ()) -> None:
        super().__init__(items)
        self.refs: dict[str, dict[str, Any]] = {}

    def ref(self, item: Item) -> dict[str, Any]:
        found = self.refs.get(item.item_id)
        if found is None:
            found = self.refs[item.item_id] = item_ref(self.get(item.item_id, item))
        return found


class Simulation:
    """The library as earlier rules left it.

    ``by_id`` serves lookups and account-wide actions; ``in_order`` holds the
    same items oldest first (``None`` where one was deleted), so matching a
    rule is one pass over a list. ``time_added`` and ``item_id`` never change,
    so one sort serves every rule.
    """

    def __init__(self, items: Iterable[Item], *, ordered: bool = False) -> None:
        live = [item for item in items if not item.is_deleted]
        if not ordered:  # Store.items() is already in this order (a refinement of it)
            live.sort(key=_order)
        self.in_order: list[Item | None] = list(live)
        self.position = {item.item_id: index for index, item in enumerate(live)}
        self.by_id = {item.item_id: item for item in live}

    def hide(self, item: Item) -> None:
        """Out of sight of later rules (held back by ``keep_newest`` in one pass)."""
        self.in_order[self.position[item.item_id]] = None
        self.by_id.pop(item.item_id, None)

    def put(self, item: Item) -> None:
        if item.is_deleted:
            self.in_order[self.position[item.item_id]] = None
            self.by_id.pop(item.item_id, None)
        else:
            self.in_order[self.position[item.item_id]] = item
            self.by_id[item.item_id] = item


def _order(item: Item) -> tuple[int, int]:
    item_id = item.item_id
    return (item.time_added or 0, int(item_id) if item_id.isdigit() else 0)


class Urls:
    """The saved URLs of a library (item id -> item), collected only when an
    ``add`` first asks (the library as it is then)."""

    def __init__(self, library: Mapping[str, Item]) -> None:
        self.library = library
        self.seen: set[str] | None = None

    def __contains__(self, url: object) -> bool:
        return url in self._all()

    def add(self, url: str) -> None:
        self._all().add(url)

    def _all(self) -> set[str]:
        if self.seen is None:  # a deleted item (a local apply keeps it so) has no URL saved
            live = (item for item in self.library.values() if not item.is_deleted)
            self.seen = {u for item in live for u in url_keys(item)}
        return self.seen
