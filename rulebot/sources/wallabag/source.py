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
from collections.abc import Callable, Iterator, Mapping
from contextlib import suppress
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rulebot.errors import ItemDataError
from rulebot.library.item import Item
from rulebot.library.tagcase import folded_tags
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.rules.capabilities import WALLABAG
from rulebot.rules.vocab import parse_duration
from rulebot.sources.applier import Answer, Unit, split_tags
from rulebot.sources.cursors import believable, vouched
from rulebot.sources.editing import gather
from rulebot.sources.refining import Replay
from rulebot.sources.server import ServerSession, ServerSource
from rulebot.sources.syncing import SOURCE_KEY, Sync, stored_cursor
from rulebot.sources.wallabag.api import (
    ENV,
    MASS_ACTION_LIMIT,
    NotFound,
    WallabagClient,
    entry_to_item,
)

if TYPE_CHECKING:
    from rulebot.library.store import Store
    from rulebot.rules.config import ServiceSettings
    from rulebot.sources.base import SyncResult
    from rulebot.sources.paging import Bounds

logger = logging.getLogger("rulebot.wallabag")
# Wallabag lower-cases every label it stores (PHP's mb_convert_case to lower
# case): `Foo` and `foo` are one label, `Maße` and `masse` two; rulebot's plan
# compared them so (str.lower), and every request here does too
FOLD = WALLABAG.fold

SINCE_KEY = "wallabag.since"  # the `since` cursor (server unix seconds)
FULL_SCAN_KEY = "wallabag.full_scan_at"  # when the last full scan finished (unix seconds)
DEFAULT_FULL_SCAN_EVERY = "7d"
# `since` is strict, at whole seconds, compared in server-local wall time (a
# DST fold repeats an hour): the cursor stays an hour behind the server's clock
OVERLAP = 3600
MAX_BULK_URL = 300  # longer URLs go one by one (a bulk payload rides in the URL)


class WallabagSession(ServerSession):
    kind, noun = "wallabag", "entry"

    def __init__(
        self,
        client: WallabagClient,
        settings: ServiceSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(client, settings, clock)
        self.client: WallabagClient = client
        self._tag_ids: dict[str, int] | None = None
        self._tag_lock = threading.Lock()

    @property
    def source_id(self) -> str:
        return f"wallabag {self.client.base_url}"

    @property
    def full_scan_every(self) -> int:
        text = self.settings.extra.get("full_scan_every", DEFAULT_FULL_SCAN_EVERY)
        return parse_duration(str(text))

    # -- sync ---------------------------------------------------------------------
    def sync(self, store: Store, *, full: bool = False, progress: bool = False) -> SyncResult:
        """Incremental with ``since``; a full scan when asked, when the store holds
        another library or none yet, or when ``full_scan_every`` has passed."""
        scan = Sync(self, store)
        last_full = _int(store.get_meta(FULL_SCAN_KEY))
        now = int(self.clock())
        cursor = None
        full = (
            full
            or store.get_meta(SOURCE_KEY) != self.source_id
            or last_full is None
            or now - last_full >= self.full_scan_every
            or (cursor := stored_cursor(store, SINCE_KEY, "Wallabag sync cursor", clock=self.clock))
            is None
        )
        items = self._list(since=None if full else cursor or None, bounds=scan.bounds)
        fresh = self._cursor(items)
        # a full scan replaces the cursor: a wrong one (a server's clock that
        # was in 2100 for one answer) would otherwise outlive every repair
        since = str(fresh if fresh is not None else 0 if full else cursor or 0)
        if full:
            return scan.full(items, {FULL_SCAN_KEY: str(now), SINCE_KEY: since})
        return scan.changes(items, set(), {SINCE_KEY: since})

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
        seen: set[str] = set()
        repeated = False
        rows = 0
        items: dict[str, Item] = {}
        for raw in raws:  # each entry read as it comes: the listing is never held (#28)
            rows += 1
            if isinstance(raw, Mapping):
                entry_id = str(raw.get("id"))
                repeated = repeated or entry_id in seen
                seen.add(entry_id)
            # offset paging may show one twice: the last copy counts
            for item in self.read([raw]):
                items[item.item_id] = item
        first, last = self.client.first_total, self.client.last_total
        steady = not repeated and (last is None or first == last == rows)
        return list(items.values()), steady

    def to_item(self, raw: Any) -> Item:
        return entry_to_item(raw)

    # -- apply --------------------------------------------------------------------
    def bulk(self) -> BulkTags:
        return BulkTags(self.client)

    def item_unit(self, item_id: str, actions: list[PlannedAction], current: Item | None) -> Answer:
        """Tag additions first (a crash mid-unit leaves the entry matching), then
        each removal by tag id, then one PATCH for the flags; or one DELETE. The
        entry's tags afterwards as the server answered them (None when deleted,
        or when nothing was sent)."""
        edit = gather(actions, current, FOLD, spell=FOLD)  # Wallabag stores labels lower-cased
        if edit.delete:
            self.client.delete_entry(item_id)
            return Answer(True)
        answer: Any = None
        if edit.tags.attach:
            answer = self.client.add_tags(item_id, edit.tags.attach)
        for label in edit.tags.detach:
            tag_id = self._tag_id(label)
            if tag_id is not None:  # unknown: no entry of ours has it any more
                answer = self.client.remove_tag(item_id, tag_id)
        patch = {
            key: value
            for key, value in (("archive", edit.archived), ("starred", edit.favorite))
            if value is not None
        }
        if patch:
            answer = self.client.update_entry(item_id, **patch)
        if answer is None or current is None or current.tags is None:
            return Answer(True)
        try:
            return Answer(True, tags=entry_to_item(answer).tags)
        except ItemDataError:
            return Answer(True)  # the next sync reads them

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

    def account_wide(self, planned: PlannedAction, library: Mapping[str, Item]) -> Answer:
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


class WallabagSource(ServerSource):
    kind, caps = "wallabag", WALLABAG

    def client(self) -> WallabagClient:
        env = {key: self.settings.env.get(key, default) for key, default in ENV.items()}
        return WallabagClient(
            self.settings.base_url,
            {key: os.environ.get(name) for key, name in env.items()},
            env=env,
            **self.client_settings(),
        )

    def session(self, client: WallabagClient) -> WallabagSession:
        return WallabagSession(client, self.settings)

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


from_config = WallabagSource.from_config
