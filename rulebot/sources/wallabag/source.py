"""Wallabag (self-hosted or wallabag.it): entries over its v2 API.

Capabilities: archived and starred with their times, tags (lower-case
labels), the created/updated dates, reading time and language
(``capabilities.WALLABAG``); every action.

Sync: incremental with ``since`` (entries whose ``updated_at`` is strictly
after the cursor; the cursor is the server's clock when the last listing
began, from its ``Date`` header, minus an hour of overlap, because the
comparison is at whole seconds in the server's local time; a Date further
ahead of this machine's clock than a server's may be is not believed:
``rulebot.sources.cursors``). Wallabag
hard-deletes and ``since`` never reports a deletion, so every
``full_scan_every`` (default 7 days; ``rulebot sync --full`` any time) the
sync lists every entry and the mirror becomes exactly that list. A listing
the library moved under (offset paging) is read once more. A 404 on an
action is moot and the entry leaves the mirror.

How a Pocket word becomes Wallabag requests, per item unit (one rule's
actions on one entry), additions first so a crash mid-unit leaves the entry
still matching its rule and the next run finishes it:

- tags to add: ``POST /entries/{id}/tags`` (one request for all of them);
  units that only add tags (each its entry's only unit, ahead of every
  account-wide action, two or more of them) go through the bulk
  ``POST /entries/tags/lists`` instead, up to 10 entries per request;
- tags to remove: ``DELETE /entries/{id}/tags/{tagId}`` per tag (the tag ids
  come from one ``GET /tags`` per run);
- ``archive``/``readd``/``favorite``/``unfavorite``: one ``PATCH`` with
  ``archive``/``starred``;
- ``delete``: ``DELETE /entries/{id}`` alone.

Account-wide: Wallabag has no tag rename, so ``refine`` plans it as the
per-item ``tags_add`` + ``tags_remove`` that will really run. ``tag_delete``
is ``DELETE /tag/label``. ``add`` posts the URL only when no entry in the
mirror has it (a re-post merges tags into the existing entry).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rulebot.errors import ItemDataError
from rulebot.library.item import Item
from rulebot.library.tagcase import folded_tags
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.rules.capabilities import WALLABAG, Capabilities
from rulebot.rules.vocab import parse_duration
from rulebot.sources.applier import Answer, Unit, apply_units, split_tags
from rulebot.sources.base import SyncResult
from rulebot.sources.cursors import believable, from_the_future, vouched
from rulebot.sources.paging import Bounds
from rulebot.sources.refining import Replay
from rulebot.sources.wallabag.api import (
    ENV,
    MASS_ACTION_LIMIT,
    NotFound,
    WallabagClient,
    entry_to_item,
)

if TYPE_CHECKING:
    from rulebot.library.journal import JournalAction
    from rulebot.library.store import Store
    from rulebot.planning.plan import Result
    from rulebot.rules.config import Config, ServiceSettings

logger = logging.getLogger("rulebot.wallabag")
# Wallabag lower-cases every label it stores (PHP's mb_convert_case to lower
# case): `Foo` and `foo` are one label, `Maße` and `masse` two; rulebot's plan
# compared them so (str.lower), and every request here does too
FOLD = WALLABAG.fold

SOURCE_KEY = "source"  # store meta: which library the mirror holds
SINCE_KEY = "wallabag.since"  # the `since` cursor (server unix seconds)
FULL_SCAN_KEY = "wallabag.full_scan_at"  # when the last full scan finished (unix seconds)
DEFAULT_FULL_SCAN_EVERY = "7d"
# `since` is strict, at whole seconds, compared in server-local wall time (a
# DST fold repeats an hour): the cursor stays an hour behind the server's clock
OVERLAP = 3600
MAX_BULK_URL = 300  # longer URLs go one by one (a bulk payload rides in the URL)


class WallabagSession:
    def __init__(
        self,
        client: WallabagClient,
        settings: ServiceSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock
        self._tag_ids: dict[str, int] | None = None
        self._tag_lock = threading.Lock()

    @property
    def requests_made(self) -> int:
        return self.client.requests_made

    @property
    def full_scan_every(self) -> int:
        text = self.settings.extra.get("full_scan_every", DEFAULT_FULL_SCAN_EVERY)
        return parse_duration(str(text))

    # -- sync ---------------------------------------------------------------------
    def recover(self, store: Store, pending: Sequence[JournalAction]) -> None:
        """Nothing to do: the next sync shows whether they landed."""

    def sync(self, store: Store, *, full: bool = False, progress: bool = False) -> SyncResult:
        """Incremental with ``since``; a full scan when asked, when the store holds
        another library or none yet, or when ``full_scan_every`` has passed."""
        before = self.client.requests_made
        source = f"wallabag {self.client.base_url}"
        cursor = _int(store.get_meta(SINCE_KEY))
        last_full = _int(store.get_meta(FULL_SCAN_KEY))
        now = int(self.clock())
        full = (
            full
            or store.get_meta(SOURCE_KEY) != source
            or cursor is None
            or last_full is None
            or now - last_full >= self.full_scan_every
            or from_the_future(cursor, "Wallabag sync cursor", clock=self.clock)
        )
        bounds = Bounds(store.count(), self.settings.max_items, "wallabag.max_items")
        if full:
            items, deleted = self._full_scan(store, bounds)
        else:
            items = self._list(since=cursor or None, bounds=bounds)
            deleted = 0
        fresh = self._cursor(items)
        # a full scan replaces the cursor: a wrong one (a server's clock that
        # was in 2100 for one answer) would otherwise outlive every repair
        cursor = fresh if fresh is not None else 0 if full else cursor or 0
        with store.transaction() as conn:
            if full:
                store.replace_all(items, conn)
                store.set_meta(FULL_SCAN_KEY, str(now), conn)
            else:
                store.upsert(items, conn)
            store.set_meta(SINCE_KEY, str(cursor), conn)
            store.set_meta(SOURCE_KEY, source, conn)
        return SyncResult(full, len(items), deleted, self.client.requests_made - before)

    def _cursor(self, items: list[Item]) -> int | None:
        """The next ``since``: the server's clock when the listing began (its
        Date header), else (none, or one this machine's clock cannot believe)
        what the newest change seen and this machine's clock vouch for (None:
        no change seen), minus the overlap (``rulebot.sources.cursors``). From the
        server's clock, an idle library re-reads nothing; from the newest
        change, the last hour of changes is read again each time."""
        listed_at = self.client.listed_at
        if listed_at is not None:
            date = believable(listed_at, "Wallabag's Date header", clock=self.clock)
            if date is not None:
                return max(0, date - OVERLAP)
        newest = max((item.time_updated or 0 for item in items), default=0)
        if not newest:
            return None
        return max(0, vouched(newest, clock=self.clock) - OVERLAP)

    def _full_scan(self, store: Store, bounds: Bounds) -> tuple[list[Item], int]:
        known = {item.item_id for item in store.items()}
        items = self._list(bounds=bounds)
        return items, len(known - {item.item_id for item in items})

    def _list(self, since: int | None = None, bounds: Bounds | None = None) -> list[Item]:
        """Every entry, or those changed after ``since``. Paging is by offset, so
        a listing the library moved under is read once more: a ``total`` that
        changed between the first and the last page (an entry deleted from a
        page already read shifts an unread one onto it, where the full scan
        would take it for deleted), or an entry seen twice (one changed
        meanwhile moves to the end of a ``since`` listing, shifting another the
        same way)."""
        items, steady = self._read(self.client.iter_entries(since=since, bounds=bounds))
        if not steady:
            logger.info("the library changed while it was listed; listing once more")
            items, _ = self._read(self.client.iter_entries(since=since, bounds=bounds))
        return items

    def _read(self, raws: Iterator[dict[str, Any]]) -> tuple[list[Item], bool]:
        """The readable entries, and whether the listing held still: every
        page saw the same ``total``, that many rows came, no entry twice.
        Unreadable entries are skipped but still counted as rows."""
        items: dict[str, Item] = {}
        seen: set[str] = set()
        rows, repeated = 0, False
        for raw in raws:
            rows += 1
            if isinstance(raw, Mapping):
                entry_id = str(raw.get("id"))
                repeated = repeated or entry_id in seen
                seen.add(entry_id)
            try:
                item = entry_to_item(raw)
            except ItemDataError as err:
                logger.warning("skipped an entry rulebot cannot read: %s", err)
                continue
            items[item.item_id] = item  # offset paging may show one twice
        first, last = self.client.first_total, self.client.last_total
        steady = not repeated and (last is None or first == last == rows)
        return list(items.values()), steady

    # -- apply --------------------------------------------------------------------
    def apply(
        self,
        store: Store,
        plan: Plan,
        *,
        check_stale: bool,
        stop: Callable[[], bool] | None = None,
        progress: bool = False,
    ) -> Result:
        return apply_units(
            store,
            plan,
            self.perform,
            kind="wallabag",
            concurrency=self.settings.concurrency,
            requests=lambda: self.client.requests_made,
            check_stale=check_stale,
            stop=stop,
            progress=progress,
            bulk=BulkTags(self.client),
        )

    def perform(
        self, unit: Unit, current: Item | None, library: Mapping[str, Item]
    ) -> list[Answer]:
        first = unit[0][1]
        if first.item_id is None:
            return [self._account_wide(first)]
        try:
            tags = self._item_unit(first.item_id, [planned for _, planned in unit], current)
        except NotFound:
            return [Answer(True, "the entry is gone on the server", moot=True)] * len(unit)
        return [Answer(True, tags=tags)] * len(unit)

    def _item_unit(
        self, entry_id: str, actions: list[PlannedAction], current: Item | None
    ) -> tuple[str, ...] | None:
        """The requests for one unit; the entry's tags afterwards as the server
        answered them (None when deleted, or when nothing was sent)."""
        tags = list(current.tags or ()) if current is not None else []
        attach: list[str] = []
        detach: list[str] = []
        patch: dict[str, bool] = {}

        def drop(label: str) -> None:
            tags.remove(label)
            if label in attach:
                attach.remove(label)
            else:
                detach.append(label)

        def add(tag: str) -> None:
            label = FOLD(tag)  # Wallabag stores labels lower-cased
            if label in folded_tags(tuple(tags), FOLD):
                return
            tags.append(label)
            if label in detach:
                detach.remove(label)
            else:
                attach.append(label)

        for planned in actions:
            name = planned.name
            if name == "delete":
                self.client.delete_entry(entry_id)
                return None
            if name in ("archive", "readd"):
                patch["archive"] = name == "archive"
            elif name in ("favorite", "unfavorite"):
                patch["starred"] = name == "favorite"
            elif name == "tags_add":
                for tag in split_tags(planned.send.get("tags")):
                    add(tag)
            elif name == "tags_remove":
                gone = folded_tags(tuple(split_tags(planned.send.get("tags"))), FOLD)
                for label in [t for t in tags if FOLD(t) in gone]:
                    drop(label)
            elif name in ("tags_replace", "tags_clear"):
                wanted = split_tags(planned.send.get("tags")) if name == "tags_replace" else []
                keep = folded_tags(tuple(wanted), FOLD)
                for label in [t for t in tags if FOLD(t) not in keep]:
                    drop(label)
                for tag in wanted:
                    add(tag)
        answer: Any = None
        if attach:  # additions first: a crash mid-unit leaves the entry matching
            answer = self.client.add_tags(entry_id, attach)
        for label in detach:
            tag_id = self._tag_id(label)
            if tag_id is not None:  # unknown: no entry of ours has it any more
                answer = self.client.remove_tag(entry_id, tag_id)
        if patch:
            answer = self.client.update_entry(entry_id, **patch)
        if answer is None or current is None or current.tags is None:
            return None
        try:
            return entry_to_item(answer).tags
        except ItemDataError:
            return None  # the next sync reads them

    def _tag_id(self, label: str) -> int | None:
        """A label's global id, from one ``GET /tags`` per run (again for a label
        created since)."""
        with self._tag_lock:
            for attempt in (0, 1):
                if self._tag_ids is None or attempt:
                    self._tag_ids = {
                        FOLD(str(t["label"])): int(t["id"]) for t in self.client.list_tags()
                    }
                if FOLD(label) in self._tag_ids:
                    return self._tag_ids[FOLD(label)]
        return None

    def _account_wide(self, planned: PlannedAction) -> Answer:
        send = planned.send
        if planned.name == "add":
            return self._add(send)
        if planned.name == "tag_delete":
            with suppress(NotFound):  # no entry of ours has it: done
                self.client.delete_tag_label(FOLD(str(send["tag"])))
            with self._tag_lock:
                self._tag_ids = None
            return Answer(True)
        return Answer(
            False,
            f"Wallabag cannot do {planned.name} in one request; plan again "
            "(the plan then lists the per-item actions)",
        )

    def _add(self, send: Mapping[str, Any]) -> Answer:
        tags = [FOLD(tag) for tag in split_tags(send.get("tags"))]
        created = self.client.create_entry(
            str(send["url"]), title=str(send.get("title") or "") or None, tags=tags
        )
        try:
            item = entry_to_item(created)
        except ItemDataError as err:
            logger.debug("add: the created entry was not readable: %s", err)
            return Answer(True)  # the next sync brings it
        return Answer(True, created=item)


class BulkTags:
    """Units that only add tags travel ``MASS_ACTION_LIMIT`` to a
    ``POST /entries/tags/lists`` (matched by URL; an entry it does not find
    is gone: moot)."""

    size = MASS_ACTION_LIMIT

    def __init__(self, client: WallabagClient) -> None:
        self.client = client

    def accepts(self, unit: Unit, current: Item | None) -> bool:
        # the payload rides in the query string: keep each URL short
        return (
            current is not None
            and current.tags is not None
            and 0 < len(current.url) <= MAX_BULK_URL
            and all(planned.name == "tags_add" for _, planned in unit)
        )

    def __call__(self, batch: list[tuple[Unit, Item | None]]) -> list[list[Answer]]:
        changes: list[tuple[str, list[str]]] = []
        for unit, current in batch:
            assert current is not None
            labels = [FOLD(t) for _, p in unit for t in split_tags(p.send.get("tags"))]
            changes.append((current.url, list(dict.fromkeys(labels))))
        answered = self.client.bulk_add_tags(changes)
        found = {
            str(row.get("url")): row.get("entry") for row in answered if isinstance(row, Mapping)
        }
        result: list[list[Answer]] = []
        for (unit, current), (url, labels) in zip(batch, changes, strict=True):
            assert current is not None
            if url not in found:
                answer = Answer(False, "Wallabag's bulk answer did not mention this entry")
            elif found[url] is False:
                answer = Answer(True, "no entry has this URL any more", moot=True)
            else:
                folded = folded_tags(tuple(current.tags or ()), FOLD)
                tags = (*(current.tags or ()), *(t for t in labels if FOLD(t) not in folded))
                answer = Answer(True, tags=tuple(sorted(tags, key=str.casefold)))
            result.append([answer] * len(unit))
        return result


class WallabagSource:
    kind = "wallabag"
    remote = True

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings

    @property
    def capabilities(self) -> Capabilities:
        return WALLABAG

    def describe(self) -> dict[str, Any]:
        return {"kind": "wallabag", "base_url": self.settings.base_url}

    @contextmanager
    def connect(self) -> Iterator[WallabagSession]:
        env = {key: self.settings.env.get(key, default) for key, default in ENV.items()}
        with WallabagClient(
            self.settings.base_url,
            {key: os.environ.get(name) for key, name in env.items()},
            env=env,
            page_size=self.settings.page_size,
            timeout=self.settings.timeout,
            max_wait=self.settings.max_rate_wait,
            on_wait=lambda message: logger.warning("%s", message),
        ) as client:
            yield WallabagSession(client, self.settings)

    def refine(self, plan: Plan, library: Mapping[str, Item]) -> Plan:
        """Wallabag has no tag rename: each becomes, per entry with the old tag,
        ``tags_add`` new then ``tags_remove`` old, the requests that will run."""
        if not any(planned.name == "tag_rename" for planned in plan.actions):
            return plan
        actions: list[PlannedAction] = []
        replay = Replay(library, FOLD)  # the state each rename sees
        for planned in plan.actions:
            if planned.name != "tag_rename":
                actions.append(planned)
                replay.replay(planned)
                continue
            old, new = str(planned.send["old_tag"]), str(planned.send["new_tag"])
            if FOLD(old) == FOLD(new):
                continue  # labels are lower-case on the server: nothing to do
            why = f"tag_rename {old} → {new} per entry: Wallabag has no tag rename"
            actions.extend(replay.per_item(planned, why, add_first=True))
        return replace(plan, actions=actions)


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def from_config(config: Config) -> WallabagSource:
    assert config.service is not None and config.service.kind == "wallabag"
    return WallabagSource(config.service)
