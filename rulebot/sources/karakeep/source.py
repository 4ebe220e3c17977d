"""Karakeep (formerly Hoarder): bookmarks over its REST API v1.

Capabilities: archived, favourited, tags and the created/modified dates
(``capabilities.KARAKEEP``); every action. No change feed, so a sync is a
full scan of the bookmark list (⌈n/100⌉ requests), and a bookmark missing
from a complete scan leaves the mirror. No batch endpoint, so a plan is
applied unit by unit on ``concurrency`` workers (``sources.applier``).

How a Pocket word becomes Karakeep requests, per item unit (one rule's
actions on one item), in this order so a crash mid-unit leaves the item
still matching the rule and the next run finishes it:

- tag changes: ``DELETE /bookmarks/{id}/tags`` (the server's spellings:
  tags compare case-insensitively in rulebot, exactly on the server), then
  ``POST /bookmarks/{id}/tags`` (an unknown name creates the tag);
- ``archive``/``readd``/``favorite``/``unfavorite``: one ``PATCH`` with
  ``archived``/``favourited`` together;
- ``delete``: ``DELETE /bookmarks/{id}`` alone (what came before it in the
  unit is moot).

Account-wide: ``tag_rename`` is ``PATCH /tags/{id}``, except onto a name the
server already has, on a bookmark or not (Karakeep answers 400 and cannot
merge): ``refine`` then plans per-item ``tags_remove`` + ``tags_add`` instead,
so the plan is what happens. ``tag_delete`` is ``DELETE /tags/{id}``. ``add``
posts the link only when no item in the mirror has the URL (re-posting
un-archives it), then attaches its tags. A 404 on an item is moot.

Karakeep keeps a tag when its last bookmark goes, and attaching an unknown
name creates one: an apply that attaches tags lists the server's tags once
and journals, per unit, the ones it created, which ``undo`` deletes again.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rulebot.errors import ItemDataError
from rulebot.library.item import Item
from rulebot.library.tagcase import folded_tags
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.rules.capabilities import KARAKEEP, Capabilities
from rulebot.sources.applier import Answer, Unit, apply_units, kept_spellings, split_tags
from rulebot.sources.base import SyncResult
from rulebot.sources.karakeep.api import (
    API_KEY_ENV,
    KarakeepClient,
    NotFound,
    TagNameConflict,
    bookmark_to_item,
)
from rulebot.sources.paging import Bounds
from rulebot.sources.refining import Replay

if TYPE_CHECKING:
    from rulebot.library.journal import JournalAction
    from rulebot.library.store import Store
    from rulebot.planning.plan import Result
    from rulebot.rules.config import Config, ServiceSettings

logger = logging.getLogger("rulebot.karakeep")
# Karakeep's tag names are case-sensitive (`JS` and `js` are two tags): rulebot
# compares them case-insensitively (lower-casing, as the plan did) and acts on
# every spelling the bookmark has
FOLD = KARAKEEP.fold

SOURCE_KEY = "source"  # store meta: which library the mirror holds


class KarakeepSession:
    def __init__(self, client: KarakeepClient, settings: ServiceSettings) -> None:
        self.client = client
        self.settings = settings
        # while applying a plan that attaches tags: the server's tag names, so
        # each unit can say which tags it created (Karakeep keeps a tag when
        # its last bookmark goes: undo deletes the ones a run created)
        self._known: set[str] | None = None
        self._lock = threading.Lock()

    def tag_names(self) -> list[str]:
        """Every tag on the server, with or without bookmarks (one request)."""
        return [str(tag["name"]) for tag in self.client.list_tags()]

    @property
    def requests_made(self) -> int:
        return self.client.requests_made

    # -- sync -------------------------------------------------------------------
    def recover(self, store: Store, pending: Sequence[JournalAction]) -> None:
        """Nothing to do: the next sync shows whether they landed."""

    def sync(self, store: Store, *, full: bool = False, progress: bool = False) -> SyncResult:
        """A full scan (Karakeep has no change feed); the mirror becomes exactly
        what the scan saw. A bookmark the server garbles is reported and kept
        out of the mirror (never stored half-read)."""
        before = self.client.requests_made
        known = {item.item_id for item in store.items()}
        items: list[Item] = []
        bounds = Bounds(len(known), self.settings.max_items, "karakeep.max_items")
        for raw in self.client.iter_bookmarks(bounds=bounds):
            try:
                items.append(bookmark_to_item(raw))
            except ItemDataError as err:
                logger.warning("skipped a bookmark rulebot cannot read: %s", err)
        seen = {item.item_id for item in items}
        with store.transaction() as conn:
            store.replace_all(items, conn)
            store.set_meta(SOURCE_KEY, f"karakeep {self.settings.base_url.rstrip('/')}", conn)
        requests = self.client.requests_made - before
        return SyncResult(True, len(items), len(known - seen), requests)

    # -- apply ------------------------------------------------------------------
    def apply(
        self,
        store: Store,
        plan: Plan,
        *,
        check_stale: bool,
        stop: Callable[[], bool] | None = None,
        progress: bool = False,
    ) -> Result:
        attaches = any(
            planned.name in ("tags_add", "tags_replace") or planned.send.get("tags")
            for planned in plan.actions
            if planned.name != "tags_remove"
        )
        self._known = set(self.tag_names()) if attaches else None
        return apply_units(
            store,
            plan,
            self.perform,
            kind="karakeep",
            concurrency=self.settings.concurrency,
            requests=lambda: self.client.requests_made,
            check_stale=check_stale,
            stop=stop,
            progress=progress,
        )

    def perform(
        self, unit: Unit, current: Item | None, library: Mapping[str, Item]
    ) -> list[Answer]:
        first = unit[0][1]
        if first.item_id is None:
            return [self._account_wide(first, library)]
        created: list[str] = []
        try:
            tags = self._item_unit(
                first.item_id, [planned for _, planned in unit], current, created
            )
        except NotFound:
            return [Answer(True, "the bookmark is gone on the server", moot=True)] * len(unit)
        return [Answer(True, tags=tags, created_tags=tuple(created))] * len(unit)

    def _attach(self, bookmark_id: str, names: list[str], created: list[str]) -> None:
        """Attach by name; the names the server did not have go to ``created``."""
        new = []
        if self._known is not None:
            with self._lock:
                new = [n for n in map(_normalised, names) if n and n not in self._known]
        self.client.attach_tags(bookmark_id, names)
        if self._known is not None:
            with self._lock:
                self._known.update(new)
        created.extend(new)

    def _item_unit(
        self,
        bookmark_id: str,
        actions: list[PlannedAction],
        current: Item | None,
        created: list[str],
    ) -> tuple[str, ...] | None:
        """The requests for one unit; the bookmark's tags afterwards, as spelled
        on the server (None when deleted, or when its tags were unknown)."""
        tags = list(current.tags or ()) if current is not None else []
        attach: list[str] = []
        detach: list[str] = []
        patch: dict[str, bool] = {}

        def drop(spelling: str) -> None:
            tags.remove(spelling)
            if spelling in attach:
                attach.remove(spelling)  # attached by this unit: never send it
            else:
                detach.append(spelling)

        def add(tag: str) -> None:
            if FOLD(tag) in folded_tags(tuple(tags), FOLD):
                return
            tags.append(tag)
            if tag in detach:
                detach.remove(tag)
            else:
                attach.append(tag)

        for planned in actions:
            name = planned.name
            if name == "delete":
                self.client.delete_bookmark(bookmark_id)
                return None
            if name in ("archive", "readd"):
                patch["archived"] = name == "archive"
            elif name in ("favorite", "unfavorite"):
                patch["favourited"] = name == "favorite"
            elif name == "tags_add":
                for tag in split_tags(planned.send.get("tags")):
                    add(tag)
            elif name == "tags_remove":
                gone = folded_tags(tuple(split_tags(planned.send.get("tags"))), FOLD)
                for spelling in [t for t in tags if FOLD(t) in gone]:
                    drop(spelling)
            elif name in ("tags_replace", "tags_clear"):
                wanted = split_tags(planned.send.get("tags")) if name == "tags_replace" else []
                keep = kept_spellings(tags, wanted, FOLD)
                for spelling in [t for t in tags if t not in keep]:
                    drop(spelling)
                for tag in wanted:
                    add(tag)
        if detach:
            self.client.detach_tags(bookmark_id, detach)
        if attach:
            self._attach(bookmark_id, attach, created)
        if patch:
            self.client.update_bookmark(bookmark_id, **patch)
        return tuple(tags) if current is not None and current.tags is not None else None

    def _account_wide(self, planned: PlannedAction, library: Mapping[str, Item]) -> Answer:
        send = planned.send
        if planned.name == "add":
            return self._add(send)
        if planned.name == "tag_rename":
            old, new = str(send["old_tag"]), str(send["new_tag"])
            for tag in self._tags_named(old):
                if tag["name"] == new:
                    continue
                try:
                    self.client.rename_tag(tag["id"], new)
                except NotFound:
                    continue  # deleted meanwhile: nothing left to rename
                except TagNameConflict as err:  # made since the plan, which would know of it
                    return Answer(
                        False,
                        f"{err}; the tag {new!r} was made after the plan: nothing was "
                        "changed, and the next plan moves the bookmarks one by one",
                    )
                if self._known is not None:
                    with self._lock:
                        self._known.add(new)
            return Answer(True)
        if planned.name == "tag_delete":
            for tag in self._tags_named(str(send["tag"])):
                try:
                    self.client.delete_tag(tag["id"])
                except NotFound:
                    continue
            return Answer(True)
        return Answer(False, f"{planned.name} is not an account-wide action")

    def _tags_named(self, name: str) -> list[dict[str, Any]]:
        """The server's tags that rulebot calls ``name`` (every spelling ``FOLD`` joins)."""
        folded = FOLD(name)
        return [t for t in self.client.list_tags() if FOLD(str(t["name"])) == folded]

    def _add(self, send: Mapping[str, Any]) -> Answer:
        created = self.client.create_link(str(send["url"]), str(send.get("title") or "") or None)
        # already_existed: the mirror did not have the URL (the applier checked),
        # so this is our own earlier attempt whose answer was lost; not a duplicate
        try:
            item = bookmark_to_item(created.bookmark)
        except ItemDataError as err:
            logger.debug("add: the created bookmark was not readable: %s", err)
            return Answer(True)  # the next sync brings it
        tags = split_tags(send.get("tags"))
        made: list[str] = []
        if tags:
            self._attach(item.item_id, tags, made)
            item = item.replace(tags=tuple(dict.fromkeys([*(item.tags or ()), *tags])))
        return Answer(True, created=item, created_tags=tuple(made))


class KarakeepSource:
    kind = "karakeep"
    remote = True

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings

    @property
    def capabilities(self) -> Capabilities:
        return KARAKEEP

    def describe(self) -> dict[str, Any]:
        return {"kind": "karakeep", "base_url": self.settings.base_url}

    @contextmanager
    def connect(self) -> Iterator[KarakeepSession]:
        env = self.settings.env.get("api_key_env", API_KEY_ENV)
        with KarakeepClient(
            self.settings.base_url,
            os.environ.get(env),
            page_size=self.settings.page_size,
            timeout=self.settings.timeout,
            max_wait=self.settings.max_rate_wait,
            api_key_env=env,
            on_wait=lambda message: logger.warning("%s", message),
        ) as client:
            session = KarakeepSession(client, self.settings)
            self._session: KarakeepSession | None = session
            try:
                yield session
            finally:
                self._session = None

    def refine(self, plan: Plan, library: Mapping[str, Item]) -> Plan:
        """Tag renames Karakeep would refuse become the per-item actions that
        do the same: the dry run shows what will really be sent.

        Karakeep refuses a rename onto any tag it has, and keeps a tag when its
        last bookmark goes (an undone ``tags_add`` leaves one), which no mirror
        item shows: connected, the server's tags are asked (one request)."""
        if not any(planned.name == "tag_rename" for planned in plan.actions):
            return plan
        session = getattr(self, "_session", None)
        server = frozenset(session.tag_names()) if session is not None else frozenset()
        actions: list[PlannedAction] = []
        replay = Replay(library, FOLD)  # the state each rename sees
        for planned in plan.actions:
            if planned.name == "tag_rename" and _refused_rename(planned, replay.state, server):
                rename = f"tag_rename {planned.send['old_tag']} → {planned.send['new_tag']}"
                why = f"{rename} per item: Karakeep cannot rename onto an existing tag"
                actions.extend(replay.per_item(planned, why))
            else:
                actions.append(planned)
                replay.replay(planned)
        return replace(plan, actions=actions)


def _refused_rename(
    planned: PlannedAction, library: Mapping[str, Item], server: frozenset[str] = frozenset()
) -> bool:
    """Whether the native rename would fail: the new name (in any spelling) is
    already a tag, on a bookmark or on the server (``server``: its tag names,
    an empty tag included), or the old name has several spellings (both would
    be renamed onto one name)."""
    old, new = str(planned.send["old_tag"]), str(planned.send["new_tag"])
    spellings = {t for item in library.values() for t in item.tags or () if not item.is_deleted}
    spellings |= server
    olds = {t for t in spellings if FOLD(t) == FOLD(old)}
    clash = {t for t in spellings if FOLD(t) == FOLD(new)} - olds
    return bool(clash) or len(olds) > 1


def _normalised(name: str) -> str:
    """A tag name as Karakeep stores one attached by name (trimmed, no leading #)."""
    return name.strip().lstrip("#").strip()


def from_config(config: Config) -> KarakeepSource:
    assert config.service is not None and config.service.kind == "karakeep"
    return KarakeepSource(config.service)
