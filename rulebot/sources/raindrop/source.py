"""Raindrop.io: bookmarks ("raindrops") over its REST API v1.

Capabilities (``capabilities.RAINDROP``): tags, ``important`` as the
favourite, the created/updated dates and the bookmark's type. Raindrop.io
has no read state: with ``archive_collection`` set, a bookmark is archived
when it is in that collection, ``archive`` moves it there and ``readd``
moves it to ``readd_collection`` (default Unsorted); without it, rules on
``status``, ``archive`` and ``readd`` are refused. ``delete`` moves to
Trash (a second delete from Trash is for good: only with
``delete_permanently``).

Sync: Raindrop.io has no "updated since" parameter. A sync lists
collection 0 newest change first (``sort=-lastUpdate``) and stops at the
cursor (the server's clock when the last listing began, from its ``Date``,
less ``OVERLAP``), and Trash the same way (what moved there since is gone);
then one ``GET /tags`` checks the tag names against the mirror: a tag
another client renamed (if that did not touch ``lastUpdate``: unconfirmed)
makes it a full scan. Bookmarks deleted for good leave no trace: every
``full_scan_every`` (default 7 days; ``rulebot sync --full`` any time) the
sync lists everything and the mirror becomes exactly that.

Apply (``bulk``): units with a bulk form go many to a
``PUT``/``DELETE /raindrops/{collection}`` (``sources.raindrop.bulk``); the
others are one ``GET /raindrop/{id}`` (the bookmark as it is now: its tags,
its collection, whether it is in Trash) and one ``PUT`` with the whole
result, or a ``DELETE`` scoped to its collection. Account-wide: ``PUT
/tags`` renames or merges every spelling of the old tag at once, ``DELETE
/tags`` removes every spelling; where the native merge would leave a case
variant rulebot would not, ``refine`` plans the per-item actions instead.
``add`` posts only when no bookmark in the mirror has the link, and a
create whose answer was lost is looked up before it is sent again.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rulebot.errors import ItemDataError
from rulebot.library.item import Item
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.rules.capabilities import RAINDROP, Capabilities
from rulebot.rules.vocab import parse_duration
from rulebot.sources.applier import Answer, split_tags
from rulebot.sources.cursors import believable, vouched
from rulebot.sources.editing import gather
from rulebot.sources.raindrop.api import (
    ALL,
    TOKEN_ENV,
    TRASH,
    UNSORTED,
    RaindropClient,
    RaindropError,
    collection_of,
    raindrop_to_item,
    stamp,
)
from rulebot.sources.raindrop.bulk import RaindropBulk
from rulebot.sources.raindrop.refine import refined_plan, spellings
from rulebot.sources.refining import lookup
from rulebot.sources.server import ServerSession, ServerSource
from rulebot.sources.syncing import SOURCE_KEY, Sync, stored_cursor

if TYPE_CHECKING:
    from rulebot.library.store import Store
    from rulebot.rules.config import ServiceSettings
    from rulebot.sources.base import SyncResult
    from rulebot.sources.pacing import Cost
    from rulebot.sources.paging import Bounds

logger = logging.getLogger("rulebot.raindrop")
FOLD = RAINDROP.fold  # the tag list groups case variants; each bookmark keeps its spelling

CURSOR_KEY = "raindrop.since"  # the incremental cursor (server unix seconds)
FULL_SCAN_KEY = "raindrop.full_scan_at"  # when the last full scan finished (unix seconds)
DEFAULT_FULL_SCAN_EVERY = "7d"
# lastUpdate is in milliseconds and the listing is sorted by it, so little
# overlap is needed: it covers a change stamped while the last listing ran
OVERLAP = 300


class RaindropSession(ServerSession):
    kind, noun = "raindrop", "bookmark"

    def __init__(
        self,
        client: RaindropClient,
        settings: ServiceSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(client, settings, clock)
        self.client: RaindropClient = client
        self._ids: dict[str, int | None] = {}  # setting -> collection id, once resolved
        self._lock = threading.Lock()

    # -- the settings -----------------------------------------------------------------
    @property
    def full_scan_every(self) -> int:
        return parse_duration(
            str(self.settings.extra.get("full_scan_every", DEFAULT_FULL_SCAN_EVERY))
        )

    def collection(self, key: str) -> int | None:
        """The collection a setting names (a title is looked up once; None: unset)."""
        with self._lock:
            if key not in self._ids:
                self._ids[key] = self._resolve(key, self.settings.extra.get(key))
            return self._ids[key]

    def _resolve(self, key: str, value: Any) -> int | None:
        if value is None:
            return None
        if isinstance(value, int) or str(value).lstrip("-").isdigit():
            return int(value)
        wanted = str(value).strip()
        found = [c for c in self.client.collections() if str(c.get("title", "")).strip() == wanted]
        if not found:
            found = [
                c
                for c in self.client.collections()
                if str(c.get("title", "")).strip().casefold() == wanted.casefold()
            ]
        if len(found) != 1:
            what = "no collection" if not found else f"{len(found)} collections"
            raise RaindropError(
                f"raindrop.{key} is {wanted!r}, but Raindrop.io has {what} with that title; "
                "write the collection's id instead (the number in its address in the web app)"
            )
        return int(found[0]["_id"])

    @property
    def archive(self) -> int | None:
        return self.collection("archive_collection")

    def moves(self, action: str, current: Item) -> int | None:
        """Where ``archive``/``readd`` moves ``current`` (None: nowhere, it is there)."""
        archive = self.archive
        if archive is None:
            raise LookupError("no archive collection")
        here = current.extra.get("collection")
        if action == "archive":
            return None if here == archive else archive
        readd = self.collection("readd_collection")
        return (UNSORTED if readd is None else readd) if here == archive else None

    @property
    def source_id(self) -> str:
        # which collection means archived is part of what the mirror holds
        return f"{super().source_id} archive={self.archive}"

    # -- sync ---------------------------------------------------------------------
    def sync(self, store: Store, *, full: bool = False, progress: bool = False) -> SyncResult:
        """Changes since the cursor, newest first, and what moved to Trash; a
        full scan when asked, when the store holds another library (or
        another archive collection), when ``full_scan_every`` has passed, or
        when the tag list shows a change the listing could not."""
        scan = Sync(self, store)
        now = int(self.clock())
        last_full = store.get_meta(FULL_SCAN_KEY)
        cursor = stored_cursor(store, CURSOR_KEY, "Raindrop.io sync cursor", clock=self.clock)
        due = not (last_full or "").isdigit() or now - int(last_full or 0) >= self.full_scan_every
        if not (full or due or cursor is None or store.get_meta(SOURCE_KEY) != self.source_id):
            assert cursor is not None
            changed, gone, fresh = self._changes(cursor, scan.bounds)
            if self._tags_agree(store, changed, gone):
                return scan.changes(changed, gone, {CURSOR_KEY: str(fresh or cursor)})
            logger.info(
                "the tags changed on Raindrop.io beyond what the listing shows; listing all"
            )
        items, fresh = self._everything(scan.bounds)
        return scan.full(items, {FULL_SCAN_KEY: str(now), CURSOR_KEY: str(fresh or 0)})

    def _everything(self, bounds: Bounds) -> tuple[list[Item], int | None]:
        """Every bookmark outside Trash; a listing the library moved under
        (offset paging: the count changed, a bookmark came twice) is read once more."""
        for attempt in (0, 1):
            items: list[Item] = []
            rows = newest = 0
            # each bookmark read as it comes: the listing is never held (#28)
            for raw in self.client.iter_raindrops(ALL, sort="-created", bounds=bounds):
                rows += 1
                newest = max(newest, _newest([raw]))
                items.extend(self.read([raw]))
            first, last = self.client.first_count, self.client.last_count
            steady = first == last and (last is None or last == rows)
            fresh = self._cursor(newest)
            if steady or attempt:
                return items, fresh
            logger.info("the library changed while it was listed; listing once more")
        raise AssertionError("unreachable")

    def _changes(self, cursor: int, bounds: Bounds) -> tuple[list[Item], set[str], int | None]:
        """The bookmarks changed at or after ``cursor`` and those that went to
        Trash since; the next cursor."""
        changed = self._since(ALL, cursor, bounds)
        fresh = self._cursor(_newest(changed))
        items = {item.item_id: item for item in self.read(changed)}
        trashed = self._since(TRASH, cursor, bounds)
        gone = {str(raw.get("_id")) for raw in trashed if isinstance(raw, Mapping)} - set(items)
        return list(items.values()), gone, fresh

    def _since(self, collection: int, cursor: int, bounds: Bounds) -> list[Any]:
        listed: list[Any] = []
        for raw in self.client.iter_raindrops(collection, sort="-lastUpdate", bounds=bounds):
            when = stamp(raw, "lastUpdate") if isinstance(raw, Mapping) else None
            if when is not None and when < cursor:
                break  # older than the cursor: the rest is older still
            listed.append(raw)
        return listed

    def _cursor(self, newest: int) -> int | None:
        """The next cursor: the server's clock when the listing began (its
        Date), else what ``newest`` (the newest change seen; 0: none) and
        this machine's clock vouch for, less ``OVERLAP``
        (``rulebot.sources.cursors``)."""
        listed_at = self.client.listed_at
        if listed_at is not None:
            date = believable(listed_at, "Raindrop.io's Date header", clock=self.clock)
            if date is not None:
                return max(0, date - OVERLAP)
        return max(0, vouched(newest, clock=self.clock) - OVERLAP) if newest else None

    def _tags_agree(self, store: Store, changed: list[Item], gone: set[str]) -> bool:
        """Whether ``GET /tags`` (one request) names no tag the mirror will
        lack: a tag another client renamed, if Raindrop.io did not bump the
        bookmarks' ``lastUpdate`` for it (unconfirmed), shows only there. A
        tag the server lacks is no sign: a deletion for good looks the same."""
        # the mirror as the sync leaves it, its tags only (the items are not held)
        fresh = {item.item_id for item in changed}
        held = {FOLD(t) for item in changed if item.item_id not in gone for t in item.tags or ()}
        held.update(FOLD(t) for t in store.live_tags(skip=gone | fresh))
        server = {FOLD(str(tag["_id"])) for tag in self.client.list_tags()}
        return not server - held

    def to_item(self, raw: Any) -> Item:
        return raindrop_to_item(raw, self.archive)

    # -- apply --------------------------------------------------------------------
    def prepare(self, plan: Plan) -> None:
        if any(planned.name in ("archive", "readd") for planned in plan.actions):
            self.archive  # noqa: B018  (resolved before the workers start)
            self.collection("readd_collection")

    def bulk(self) -> RaindropBulk:
        permanent = bool(self.settings.extra.get("delete_permanently"))
        return RaindropBulk(self.client, FOLD, self.moves, permanent=permanent)

    def unit_cost(self, actions: Sequence[PlannedAction]) -> Cost:
        """What a unit costs when sent alone (``sources.pacing``): a ``GET`` and a
        ``PUT`` or scoped ``DELETE`` (and one more to empty it from Trash, when
        asked); an account-wide action one request. A unit that goes in bulk
        costs less: its share of one request."""
        if not actions or actions[0].item_id is None:
            return {"default": 1}
        permanent = bool(self.settings.extra.get("delete_permanently"))
        deletes = any(planned.name == "delete" for planned in actions)
        return {"default": 3 if deletes and permanent else 2}

    def item_unit(self, item_id: str, actions: list[PlannedAction], current: Item | None) -> Answer:
        """The bookmark as it is now (``GET``), then one ``PUT`` with what the
        unit leaves (its whole tag list, ``important``, the collection it moves
        to), or a delete scoped to its collection. A bookmark in Trash is gone."""
        raw = self.client.get(item_id)
        if raw.get("removed") is True or collection_of(raw) == TRASH:
            return Answer(True, "the bookmark is in Trash", moot=True)
        try:
            fresh = raindrop_to_item(raw, self.archive)
        except ItemDataError as err:
            return Answer(False, str(err))
        edit = gather(actions, fresh, FOLD)
        collection = fresh.extra["collection"]
        if edit.delete:
            self.client.bulk_remove(collection, [int(item_id)])  # never from Trash
            if self.settings.extra.get("delete_permanently"):
                self.client.bulk_remove(TRASH, [int(item_id)])
            return Answer(True)
        fields: dict[str, Any] = {}
        if edit.tags.attach or edit.tags.detach:
            fields["tags"] = list(edit.tags.tags)
        if edit.favorite is not None and edit.favorite != fresh.favorite:
            fields["important"] = edit.favorite
        if edit.archived is not None:
            target = self.moves("archive" if edit.archived else "readd", fresh)
            if target is not None:
                fields["collection"] = {"$id": target}
        if not fields:
            return Answer(True, tags=fresh.tags)
        updated = self.client.update(item_id, fields)
        try:
            return Answer(True, tags=raindrop_to_item(updated, self.archive).tags)
        except ItemDataError:
            return Answer(True)  # the next sync reads them

    def account_wide(self, planned: PlannedAction, library: Mapping[str, Item]) -> Answer:
        send = planned.send
        if planned.name == "add":
            return self._add(send)
        if planned.name == "tag_rename":
            old, new = str(send["old_tag"]), str(send["new_tag"])
            self.client.rename_tags(spellings(old, library.values()), new)
            return Answer(True)
        if planned.name == "tag_delete":
            self.client.delete_tags(spellings(str(send["tag"]), library.values()))
            return Answer(True)
        return Answer(False, f"{planned.name} is not an account-wide action")

    def _add(self, send: Mapping[str, Any]) -> Answer:
        tags = split_tags(send.get("tags"))
        created = self.client.create(
            str(send["url"]), title=str(send.get("title") or "") or None, tags=tags, collection=None
        )
        try:
            return Answer(True, created=raindrop_to_item(created, self.archive))
        except ItemDataError as err:
            logger.debug("add: the created bookmark was not readable: %s", err)
            return Answer(True)  # the next sync brings it


class RaindropSource(ServerSource):
    kind, caps = "raindrop", RAINDROP

    @property
    def capabilities(self) -> Capabilities:
        return self.caps.configured(self.settings.extra)

    def client(self) -> RaindropClient:
        env = self.settings.env.get("token_env", TOKEN_ENV)
        return RaindropClient(
            self.settings.base_url,
            os.environ.get(env),
            token_env=env,
            rate_limits=dict(self.settings.rate_limits),
            **self.client_settings(),
        )

    def session(self, client: RaindropClient) -> RaindropSession:
        return RaindropSession(client, self.settings)

    def refine(self, plan: Plan, library: Mapping[str, Item]) -> Plan:
        """The plan as Raindrop.io will carry it out: a tag rename whose
        native merge would leave a case variant of the new tag beside it
        becomes per-item actions; each account-wide tag action says which
        spellings it names; each action that goes in bulk says so. Made as
        the plan is read, holding neither it nor the library
        (``sources.raindrop.refine``)."""
        session = self._session
        moves = session.moves if isinstance(session, RaindropSession) else _unknown_moves
        return refined_plan(plan, lookup(library), moves)


def _unknown_moves(action: str, current: Item) -> int | None:
    raise LookupError("not connected")


from_config = RaindropSource.from_config


def _newest(raws: Iterable[Any]) -> int:
    """The newest ``lastUpdate`` among ``raws`` (0: none)."""
    times = (stamp(raw, "lastUpdate") for raw in raws if isinstance(raw, Mapping))
    return int(max((t for t in times if t is not None), default=0))
