"""Raindrop.io's bulk update: units that travel many to a request.

``PUT /raindrops/{collection}`` with ``ids`` sets ``important``, appends
tags (``[]`` clears them all) and moves to a collection, for the ids that
are in that collection *now*; ``DELETE /raindrops/{collection}`` moves them
to Trash. Scoped so, a bookmark another client moved or trashed since the
sync is left alone, and a repeated delete never deletes for good.

A unit (one rule's actions on one bookmark) goes in bulk when it is
its bookmark's only unit, comes before every account-wide action (the
applier's rule, ``sources.applier``), and every action of it has a bulk
form: ``favorite``/``unfavorite``, ``archive``/``readd``, ``tags_add`` of
tags the bookmark has in no spelling (the service appends, and keeps a
case variant beside one it has), ``tags_clear`` without a ``tags_add``
after it, and ``delete``. ``tags_remove``/``tags_replace`` have none: they
go per item (a ``GET`` and a ``PUT``). Units with the same change on the
same collection share a request, 100 ids at most.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rulebot.errors import CredentialsError, RateLimited, RulebotError
from rulebot.library.tagcase import folded_tags
from rulebot.sources.applier import Answer, Unit, split_tags
from rulebot.sources.raindrop.api import TRASH, NotFound, RaindropClient, collection_of

if TYPE_CHECKING:
    from rulebot.library.item import Item
    from rulebot.library.tagcase import Fold
    from rulebot.planning.plan import PlannedAction

BULK_SIZE = 100  # ids per bulk request (no limit documented; DELETE /collections enforces 100)
BULKABLE = frozenset(
    {"favorite", "unfavorite", "archive", "readd", "tags_add", "tags_clear", "delete"}
)


@dataclass(frozen=True)
class Change:
    """What one unit asks of the bulk endpoint for one bookmark in ``collection``:
    ``delete``, or the ``fields`` of a bulk PUT (``{}``: nothing to send)."""

    collection: int
    delete: bool = False
    fields: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()  # the bookmark's tags after it

    @property
    def key(self) -> tuple[int, bool, str]:
        return (self.collection, self.delete, json.dumps(self.fields, sort_keys=True))


def change_of(
    unit: Sequence[PlannedAction],
    current: Item | None,
    fold: Fold,
    moves: Callable[[str, Item], int | None],
) -> Change | None:
    """``unit``'s bulk form on ``current`` (None: it has none). ``moves``
    gives the collection ``archive``/``readd`` moves the bookmark to (None:
    it is there already; ``LookupError``: not known yet)."""
    if current is None or current.tags is None:
        return None
    collection = current.extra.get("collection")
    if not isinstance(collection, int) or collection == TRASH:
        return None
    if any(planned.name not in BULKABLE for planned in unit):
        return None
    if any(planned.name == "delete" for planned in unit):
        return Change(collection, delete=True)
    fields: dict[str, Any] = {}
    tags = list(current.tags)
    appended: list[str] = []
    cleared = False
    for planned in unit:
        name = planned.name
        if name in ("favorite", "unfavorite"):
            fields["important"] = name == "favorite"
        elif name in ("archive", "readd"):
            try:
                target = moves(name, current)
            except LookupError:  # the archive collection is not known yet
                return None
            if target is not None:
                fields["collection"] = {"$id": target}
            else:
                fields.pop("collection", None)
        elif name == "tags_clear":
            if appended:
                return None  # a clear after an append: two requests, not one
            cleared, tags = bool(tags) or cleared, []
        elif name == "tags_add":
            if cleared:
                return None  # `[]` clears and a list appends: not both in one
            for tag in split_tags(planned.send.get("tags")):
                if fold(tag) not in folded_tags(tuple(tags), fold):
                    tags.append(tag)
                    appended.append(tag)
    if fields.get("important") == current.favorite:
        del fields["important"]
    if cleared:
        fields["tags"] = []
    elif appended:
        fields["tags"] = appended
    return Change(collection, fields=fields, tags=tuple(tags))


class RaindropBulk:
    """The applier's bulk hook (``sources.applier.Bulk``) for Raindrop.io."""

    size = BULK_SIZE

    def __init__(
        self,
        client: RaindropClient,
        fold: Fold,
        moves: Callable[[str, Item], int | None],
        *,
        permanent: bool = False,
    ) -> None:
        self.client, self.fold, self.moves, self.permanent = client, fold, moves, permanent
        # one bulk request against the time budget (``sources.pacing``); a delete
        # for good is a second one
        self.cost = {"default": 2 if permanent else 1}

    def change(self, unit: Unit, current: Item | None) -> Change | None:
        return change_of([planned for _, planned in unit], current, self.fold, self.moves)

    def accepts(self, unit: Unit, current: Item | None) -> bool:
        return self.change(unit, current) is not None

    def __call__(self, batch: list[tuple[Unit, Item | None]]) -> list[list[Answer]]:
        changes = [self.change(unit, current) for unit, current in batch]
        groups: dict[tuple[int, bool, str], list[int]] = {}
        for index, change in enumerate(changes):
            assert change is not None
            if change.delete or change.fields:
                groups.setdefault(change.key, []).append(index)
        answers: dict[int, Answer] = {}
        for indexes in groups.values():
            first = changes[indexes[0]]
            assert first is not None
            ids = [int(batch[i][0][0][1].item_id or 0) for i in indexes]
            try:
                found = self._send(first, ids)
            except (CredentialsError, RateLimited):
                raise  # no later request will do better: the run stops
            except RulebotError as err:
                for i in indexes:
                    answers[i] = Answer(False, str(err))
                continue
            for i, raindrop_id in zip(indexes, ids, strict=True):
                answers[i] = self._answer(changes[i], found.get(raindrop_id, True))
        result = []
        for index, (unit, _) in enumerate(batch):
            change = changes[index]
            assert change is not None
            answer = answers.get(index, Answer(True, tags=change.tags))  # nothing to send
            result.append([answer] * len(unit))
        return result

    def _send(self, change: Change, ids: list[int]) -> dict[int, Any]:
        """One request for ``ids``; where the server says it modified fewer,
        each bookmark as it now is (``True``: modified; a dict: the raindrop;
        None: gone for good)."""
        if change.delete:
            modified = self.client.bulk_remove(change.collection, ids)
            if self.permanent:
                self.client.bulk_remove(TRASH, ids)  # asked for: from Trash, for good
        else:
            modified = self.client.bulk_update(change.collection, ids, change.fields)
        if modified == len(ids):
            return {}
        found: dict[int, Any] = {}
        for raindrop_id in ids:  # fewer than asked (or not said): see which
            try:
                found[raindrop_id] = self.client.get(str(raindrop_id))
            except NotFound:
                found[raindrop_id] = None
        return found

    def _answer(self, change: Change | None, now: Any) -> Answer:
        assert change is not None
        if now is True:
            return Answer(True, tags=None if change.delete else change.tags)
        if now is None:
            return Answer(True, "the bookmark is gone on the server", moot=True)
        in_trash = now.get("removed") is True or collection_of(now) == TRASH
        if change.delete:
            return Answer(True) if in_trash else Answer(False, _MOVED)
        if in_trash:
            return Answer(True, "the bookmark is in Trash", moot=True)
        if not self._holds(change, now):
            return Answer(False, _MOVED)
        return Answer(True, tags=change.tags)

    def _holds(self, change: Change, now: Mapping[str, Any]) -> bool:
        """Whether the raindrop holds what ``change`` asked (a no-op the
        server did not count as modified)."""
        fields = change.fields
        listed = now.get("tags")
        tags: list[Any] = listed if isinstance(listed, list) else []
        if "important" in fields and bool(now.get("important", False)) != fields["important"]:
            return False
        if "collection" in fields and collection_of(now) != fields["collection"]["$id"]:
            return False
        have = folded_tags(tuple(str(t) for t in tags), self.fold)
        wanted = folded_tags(tuple(fields.get("tags", ())), self.fold)
        return not wanted - have and (fields.get("tags") != [] or not tags)


_MOVED = (
    "the bookmark left its collection after the sync (another client moved it); "
    "nothing was changed, and the next run plans it again"
)
