"""Readeck: bookmarks over its API, with a real change feed.

Capabilities: archived, marked (favourite), labels, created/updated, word
count, reading time, language and type (``capabilities.READECK``); every
action. Sync: the first one (and ``sync --full``) lists every bookmark
(⌈n/page_size⌉ requests); after that one ``GET /bookmarks/sync?since=`` names
what was updated or deleted since the cursor (store meta ``readeck_since``),
and only the updated bookmarks are fetched (``GET /bookmarks?id=…``,
⌈changed/page_size⌉ requests). An idle run is one request. The feed is
inclusive, so the bookmarks changed in the last ``DATE_MARGIN`` seconds
before the cursor come back every time: one whose ``updated`` is the one
mirrored is not fetched. The cursor is the server's clock when it answered
(its ``Date``, unless that is further ahead of this machine's clock than a
server's may be: ``rulebot.sources.cursors``), never the newest change the feed
showed: a bookmark dated ahead of the server's clock would move it past
edits still to come.

How a Pocket word becomes Readeck requests, per item unit (one rule's
actions on one item): ``archive``/``readd`` (``is_archived``),
``favorite``/``unfavorite`` (``is_marked``) and every label change
(``add_labels``/``remove_labels``, acting on the server's spelling: labels are
case-sensitive on the server) travel as ONE ``PATCH``; ``delete`` is
``DELETE /bookmarks/{id}`` alone (immediate). Account-wide: ``tag_rename`` is
Readeck's native label rename, which merges onto an existing label (the plan
says so); ``tag_delete`` removes the label everywhere; ``add`` posts the link
only when no item in the mirror has the URL (Readeck never detects a
duplicate). A 404 on an item is moot.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rulebot.library.item import UNREAD, Item
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.rules.capabilities import READECK
from rulebot.sources.applier import Answer, split_tags
from rulebot.sources.cursors import believable, vouched
from rulebot.sources.editing import gather
from rulebot.sources.readeck.api import (
    TOKEN_ENV,
    NotFound,
    ReadeckClient,
    bookmark_to_item,
    is_scheduled_for_deletion,
    parse_time,
)
from rulebot.sources.server import ServerSession, ServerSource
from rulebot.sources.syncing import SOURCE_KEY, Sync, stored_cursor

if TYPE_CHECKING:
    from rulebot.library.store import Store
    from rulebot.rules.config import ServiceSettings
    from rulebot.sources.base import SyncResult

# Readeck's labels are case-sensitive (`Foo` and `foo` can share a bookmark):
# rulebot compares them case-insensitively (lower-casing, as the plan did)
# and acts on every spelling the bookmark has
FOLD = READECK.fold

CURSOR_KEY = "readeck_since"  # store meta: the change feed's next `since` (unix seconds)
# seconds the cursor stays behind the server's Date: a change committed while
# an answer was being made (stamped before its Date) is read again, not missed
DATE_MARGIN = 60


class ReadeckSession(ServerSession):
    kind = "readeck"

    def __init__(
        self,
        client: ReadeckClient,
        settings: ServiceSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(client, settings, clock)
        self.client: ReadeckClient = client

    # -- sync -------------------------------------------------------------------
    def sync(self, store: Store, *, full: bool = False, progress: bool = False) -> SyncResult:
        """Incremental from the stored cursor; a full sync when asked, on the
        first sync, for another library, or when the cursor cannot be right."""
        if (
            full
            or store.get_meta(SOURCE_KEY) != self.source_id
            or (since := stored_cursor(store, CURSOR_KEY, "Readeck sync cursor", clock=self.clock))
            is None
        ):
            return self._full(store)
        return self._incremental(store, since)

    def _full(self, store: Store) -> SyncResult:
        """Every bookmark; the mirror becomes exactly what the list saw. The
        cursor is the server's clock when the list began (its ``Date``), so
        whatever changes during or after the list is in the next feed; it
        replaces whatever cursor was stored."""
        scan = Sync(self, store)
        self.client.server_time = None
        items, _ = self._read(self.client.iter_bookmarks(bounds=scan.bounds))
        newest = max((item.time_updated or 0 for item in items), default=0)
        cursor = self._cursor(self.client.server_time, newest, 0)
        return scan.full(items, {CURSOR_KEY: str(cursor)})

    def _cursor(self, answered: int | None, newest: int, since: int) -> int:
        """The next ``since``: the server's clock when it answered (its ``Date``)
        less ``DATE_MARGIN``. Never the newest change alone: a bookmark dated
        ahead of the server's clock (skew, an import) would carry the cursor
        past edits made before that time, and they would never be synced.
        Without a Date, or with one this machine's clock cannot believe, what
        the changes listed and this machine's clock both vouch for, never
        earlier than ``since`` (``rulebot.sources.cursors``)."""
        if answered is not None:
            date = believable(answered, "Readeck's Date header", clock=self.clock)
            if date is not None:
                return max(0, date - DATE_MARGIN)
        return max(since, vouched(newest, clock=self.clock))

    def _incremental(self, store: Store, since: int) -> SyncResult:
        scan = Sync(self, store)
        self.client.server_time = None
        changes = self.client.changes(since)
        answered = self.client.server_time  # the feed's Date, before any fetch
        mirror = {item.item_id: item for item in store.items()}
        deleted = {change.bookmark_id for change in changes if change.deleted}
        wanted: dict[str, None] = {}
        for change in sorted(changes, key=lambda c: c.time):
            if change.deleted or change.bookmark_id in deleted:
                continue
            known = mirror.get(change.bookmark_id)
            if (
                known is not None
                and parse_time(known.extra.get("updated")) == change.time
                and change.time.timestamp() < since + DATE_MARGIN
            ):
                # re-sent by the overlap and already mirrored: only from a second that
                # had ended when the last sync read (its Date: the cursor + the
                # margin). Readeck's times are whole seconds, so a bookmark edited
                # again in the second its copy was read shows the same time
                continue
            wanted[change.bookmark_id] = None
        items, returned = (
            self._read(self.client.iter_bookmarks(list(wanted))) if wanted else ([], set())
        )
        # asked for and not answered: deleted (or scheduled for deletion) meanwhile
        gone = (deleted | (set(wanted) - returned)) & set(mirror)
        newest = max((int(change.time.timestamp()) for change in changes), default=since)
        cursor = self._cursor(answered, newest, since)
        return scan.changes(items, gone, {CURSOR_KEY: str(cursor)})

    def _read(self, raws: Iterator[dict[str, Any]]) -> tuple[list[Item], set[str]]:
        """Bookmarks as items, and the ids the server still has. A garbled one is
        reported and kept out (never stored half-read) but is not gone; one the
        web UI is deleting (20 s) is gone."""
        items: list[Item] = []
        present: set[str] = set()
        for raw in raws:  # each bookmark read as it comes: the listing is never held (#28)
            if is_scheduled_for_deletion(raw):
                continue
            if isinstance(raw, dict) and isinstance(raw.get("id"), str):
                present.add(raw["id"])
            items.extend(self.read([raw]))
        return items, present

    def to_item(self, raw: Any) -> Item:
        return bookmark_to_item(raw)

    # -- apply ------------------------------------------------------------------
    def item_unit(self, item_id: str, actions: list[PlannedAction], current: Item | None) -> Answer:
        """One PATCH for the whole unit (or one DELETE); the labels afterwards as
        the server spells them (None when deleted or unknown)."""
        edit = gather(actions, current, FOLD, by_name=True)
        if edit.delete:
            self.client.delete_bookmark(item_id)
            return Answer(True)
        patch: dict[str, Any] = {}
        for key, value in (("is_archived", edit.archived), ("is_marked", edit.favorite)):
            if value is not None:
                patch[key] = value
        if edit.tags.attach:
            patch["add_labels"] = edit.tags.attach
        if edit.tags.detach:
            patch["remove_labels"] = edit.tags.detach
        if not patch:
            return Answer(True, tags=edit.tags.after)
        answer = self.client.update_bookmark(item_id, patch)
        spelled = answer.get("labels")
        if isinstance(spelled, list) and all(isinstance(t, str) for t in spelled):
            return Answer(True, tags=tuple(sorted(spelled, key=str.casefold)))
        return Answer(True, tags=edit.tags.after)

    def account_wide(self, planned: PlannedAction, library: Mapping[str, Item]) -> Answer:
        send = planned.send
        if planned.name == "add":
            return self._add(send)
        if planned.name in ("tag_rename", "tag_delete"):
            name = str(send["old_tag"] if planned.name == "tag_rename" else send["tag"])
            new = str(send.get("new_tag") or "")
            for spelling in _spellings(name, library) or [name]:
                if spelling == new:
                    continue
                try:
                    if planned.name == "tag_rename":
                        self.client.rename_label(spelling, new)  # merges onto `new`
                    else:
                        self.client.delete_label(spelling)
                except NotFound:
                    continue  # no bookmark has it (any more): nothing to do
            return Answer(True)
        return Answer(False, f"{planned.name} is not an account-wide action")

    def _add(self, send: Mapping[str, Any]) -> Answer:
        url, title = str(send["url"]), str(send.get("title") or "")
        labels = split_tags(send.get("tags"))
        created = self.client.create_bookmark(url, title or None, labels)
        when = int(send.get("time") or 0) or None
        # 202: extraction runs later; the next sync brings what it finds
        item = Item(
            item_id=created.bookmark_id,
            given_url=url,
            given_title=title,
            resolved_title=title,
            status=UNREAD,
            favorite=False,
            tags=tuple(sorted(dict.fromkeys(labels), key=str.casefold)),
            time_added=when,
            time_updated=when,
            word_count=None,
            lang=None,
        )
        return Answer(True, created=item)


def _spellings(name: str, library: Mapping[str, Item]) -> list[str]:
    """The library's labels rulebot calls ``name`` (every spelling ``FOLD`` joins)."""
    folded = FOLD(name)
    found = {t for item in library.values() for t in item.tags or () if FOLD(t) == folded}
    return sorted(found)


class ReadeckSource(ServerSource):
    kind, caps = "readeck", READECK

    def client(self) -> ReadeckClient:
        env = self.settings.env.get("token_env", TOKEN_ENV)
        return ReadeckClient(
            self.settings.base_url, os.environ.get(env), token_env=env, **self.client_settings()
        )

    def session(self, client: ReadeckClient) -> ReadeckSession:
        return ReadeckSession(client, self.settings)

    def refine(self, plan: Plan, library: Mapping[str, Item]) -> Plan:
        """Readeck renames labels natively, merging onto a label that exists:
        the plan keeps the one rename and says so."""
        if not any(planned.name == "tag_rename" for planned in plan.actions):
            return plan
        return replace(plan, actions=[_with_merge_note(p, library) for p in plan.actions])


def _with_merge_note(planned: PlannedAction, library: Mapping[str, Item]) -> PlannedAction:
    if planned.name != "tag_rename":
        return planned
    old, new = str(planned.send["old_tag"]), str(planned.send["new_tag"])
    olds = [t for t in _spellings(old, library) if t != new]
    existing = _spellings(new, library)
    notes = []
    if new in existing:
        notes.append(f"Readeck merges {old} into the existing label {new} (native rename)")
    elif existing:  # labels are case-sensitive on the server: both stay
        others = ", ".join(existing)
        notes.append(f"Readeck keeps {others} beside {new}: its labels are case-sensitive")
    if len(olds) > 1:
        notes.append(f"renames every spelling of {old}: {', '.join(olds)}")
    if not notes:
        return planned
    return replace(planned, reasons=("; ".join(notes), *planned.reasons))


from_config = ReadeckSource.from_config
