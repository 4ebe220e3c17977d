"""Readwise Reader (hosted): documents over its API v3, paced within its rate limits.

The library is the saved documents: ``location`` ``new`` (the Inbox),
``later`` and ``shortlist`` are unread, ``archive`` is archived; highlights
and notes (documents with a parent) are never items, and ``feed`` items
only when the config says ``include_feed: true``. The list a document is in
is kept for the ``location`` condition. Favourite: none, unless the config
maps it (``favorite: shortlist``, read only; ``favorite: tag:NAME``).

Sync: incremental with ``updatedAfter`` (the newest ``updated_at`` seen, as
far as this machine's clock vouches for it, less a minute of overlap: the
comparison's strictness is unconfirmed). Deletions are invisible to it, so
every ``full_scan_every`` (default 7 days; ``rulebot sync --full`` any
time) the sync lists every document, ⌈n/100⌉ requests at 20 a minute (a
library of 10,000 documents: 100 requests, about 5 minutes), and the mirror
becomes exactly that. A document that left the library (moved to the feed,
say) leaves the mirror at the next incremental sync.

How a Pocket word becomes Reader requests, per item unit (one rule's
actions on one document): one ``PATCH /update/<id>/`` with the location
(``archive``; ``readd``: the ``readd_to`` list, default ``new``) and the
whole tag list (Reader replaces the set: rulebot sends the mirror's tags
with the unit's changes, so a tag added in the app between the sync and
the apply would be lost; the sync is the same run's) and, with
``favorite: tag:NAME``, that tag; or one ``DELETE /delete/<id>/``. A 404
is moot. Account-wide: ``add`` saves the URL only when no document in the
mirror has it (Reader answers 200 for a URL it has: a retry makes no
copy); Reader has no tag rename or delete, so ``refine`` plans them as the
per-item tag changes that will be sent.

Every request is paced (``sources.pacing``): 20 a minute for listing and
deleting, 50 for saving and updating (``rate_limits`` changes them); the
plan says how many requests it needs and about how long they take, and
``time_budget`` makes an apply send what fits and leave the rest.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from rulebot.errors import ItemDataError
from rulebot.library.item import Item
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.rules.capabilities import READWISE, Capabilities, readwise_caps
from rulebot.rules.vocab import parse_duration
from rulebot.sources.applier import Answer, split_tags
from rulebot.sources.cursors import believable, vouched
from rulebot.sources.editing import gather
from rulebot.sources.pacing import Cost
from rulebot.sources.readwise.api import (
    TOKEN_ENV,
    ReadwiseClient,
    document_to_item,
    is_library_document,
)
from rulebot.sources.refining import Replay
from rulebot.sources.server import ServerSession, ServerSource
from rulebot.sources.syncing import SOURCE_KEY, Sync, stored_cursor

if TYPE_CHECKING:
    from rulebot.library.store import Store
    from rulebot.rules.config import ServiceSettings
    from rulebot.sources.base import SyncResult

logger = logging.getLogger("rulebot.readwise")
# how Reader compares tag names is unconfirmed (its keys look lower-cased):
# rulebot compares them case-insensitively and keeps each document's spelling
FOLD = READWISE.fold
CURSOR_KEY = "readwise.updated_after"  # unix seconds: the next sync's updatedAfter
FULL_SCAN_KEY = "readwise.full_scan_at"  # when the last full scan finished (unix seconds)
DEFAULT_FULL_SCAN_EVERY = "7d"
OVERLAP = 60  # seconds re-read each sync: whether updatedAfter is strict is unconfirmed
DEFAULT_READD_TO = "new"


class ReadwiseSession(ServerSession):
    kind, noun = "readwise", "document"

    def __init__(self, client: ReadwiseClient, settings: ServiceSettings) -> None:
        super().__init__(client, settings)
        self.client: ReadwiseClient = client
        extra = settings.extra
        self.include_feed = bool(extra.get("include_feed", False))
        self.favorite = extra.get("favorite") if isinstance(extra.get("favorite"), str) else None
        self.readd_to = str(extra.get("readd_to") or DEFAULT_READD_TO)

    @property
    def full_scan_every(self) -> int:
        return parse_duration(str(self.settings.extra.get("full_scan_every") or "7d"))

    # -- sync ---------------------------------------------------------------------
    def sync(self, store: Store, *, full: bool = False, progress: bool = False) -> SyncResult:
        """Incremental with ``updatedAfter``; a full scan when asked, when the store
        holds another library or none yet, or when ``full_scan_every`` has passed."""
        scan = Sync(self, store)
        now = int(self.clock())
        last_full = _int(store.get_meta(FULL_SCAN_KEY))
        cursor = None
        full = (
            full
            or store.get_meta(SOURCE_KEY) != self.source_id
            or last_full is None
            or now - last_full >= self.full_scan_every
            or (cursor := stored_cursor(store, CURSOR_KEY, "Reader sync cursor", clock=self.clock))
            is None
        )
        after = None if full or cursor is None else _iso(cursor)
        items: list[Item] = []
        listed: set[str] = set()  # every id listed, kept or not
        newest = 0
        # each document read as it comes: the listing is never held (#28)
        for raw in self.client.iter_documents(updated_after=after, bounds=scan.bounds):
            newest = max(newest, _updated(raw))
            if isinstance(raw, Mapping):
                listed.add(str(raw.get("id")))
            if is_library_document(raw, include_feed=self.include_feed):
                items.extend(self.read([raw]))
        fresh = self._cursor(newest)
        next_cursor = str(fresh if fresh is not None else cursor or 0)
        if full:
            return scan.full(items, {FULL_SCAN_KEY: str(now), CURSOR_KEY: next_cursor})
        # listed but no longer in the library (moved to the feed, a highlight): out
        gone = listed - {item.item_id for item in items}
        return scan.changes(items, gone, {CURSOR_KEY: next_cursor})

    def to_item(self, raw: Any) -> Item:
        return document_to_item(raw, favorite=self.favorite)

    def _cursor(self, newest: int) -> int | None:
        """The next ``updatedAfter`` (None: keep the one there is): ``newest``,
        the newest change listed (0: none), never past the server's clock
        when the listing began (its Date header; a document dated ahead of it
        would otherwise hide every change made in between) nor past what this
        machine's clock vouches for, less the overlap."""
        listed_at = self.client.listed_at
        if listed_at is not None:
            date = believable(listed_at, "Reader's Date header", clock=self.clock)
            if date is not None:
                newest = min(newest, date) if newest else date
        if not newest:
            return None
        return max(0, vouched(newest, clock=self.clock) - OVERLAP)

    # -- apply --------------------------------------------------------------------
    def unit_cost(self, actions: Sequence[PlannedAction]) -> Cost:
        """A delete: one request of the 20-a-minute class; anything else one
        update (or save) of the 50-a-minute class."""
        if any(planned.name == "delete" for planned in actions):
            return {"list": 1}
        return {"update": 1}

    def item_unit(self, item_id: str, actions: list[PlannedAction], current: Item | None) -> Answer:
        """One PATCH with the location and the whole tag list; or one DELETE."""
        if current is None:  # not in the mirror: its tags are read first (one request)
            raw = self.client.get_document(item_id)
            if raw is None:
                return Answer(True, "the document is gone", moot=True)
            try:
                current = document_to_item(raw, favorite=self.favorite)
            except ItemDataError as err:
                return Answer(False, f"cannot read the document's tags: {err}")
        edit = gather(actions, current, FOLD)
        if edit.delete:
            self.client.delete_document(item_id)
            return Answer(True)
        if edit.favorite is not None and self.favorite and self.favorite.startswith("tag:"):
            mark = self.favorite[4:]
            if edit.favorite:
                edit.tags.add(mark)
            else:
                for spelling in [t for t in edit.tags.tags if FOLD(t) == FOLD(mark)]:
                    edit.tags.drop(spelling)
        patch: dict[str, Any] = {}
        if edit.archived is not None:
            patch["location"] = "archive" if edit.archived else self.readd_to
        if edit.tags.attach or edit.tags.detach:
            patch["tags"] = list(edit.tags.tags)
        if patch:
            self.client.update_document(item_id, **patch)
        return Answer(True, tags=edit.tags.after)

    def account_wide(self, planned: PlannedAction, library: Mapping[str, Item]) -> Answer:
        if planned.name == "add":
            send = planned.send
            tags = split_tags(send.get("tags"))
            document_id, _ = self.client.save(
                str(send["url"]), title=str(send.get("title") or "") or None, tags=tags
            )
            return Answer(True, created=_created(document_id, send, tags, int(self.clock())))
        return Answer(
            False,
            f"Readwise Reader cannot do {planned.name} in one request; plan again "
            "(the plan then lists the per-document actions)",
        )


class ReadwiseSource(ServerSource):
    kind, caps = "readwise", READWISE

    @property
    def capabilities(self) -> Capabilities:
        return readwise_caps(self.settings.extra.get("favorite"))

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "base_url": self.settings.base_url}

    def client(self) -> ReadwiseClient:
        env = self.settings.env.get("token_env", TOKEN_ENV)
        return ReadwiseClient(
            self.settings.base_url,
            os.environ.get(env),
            token_env=env,
            **self.client_settings(),
            rate_limits=self.settings.rate_limits,
        )

    def session(self, client: ReadwiseClient) -> ReadwiseSession:
        return ReadwiseSession(client, self.settings)

    def refine(self, plan: Plan, library: Mapping[str, Item]) -> Plan:
        """Reader has no tag rename or delete: each becomes, per document with
        the tag, the tag changes that will really be sent (one update each)."""
        if not any(planned.name in ("tag_rename", "tag_delete") for planned in plan.actions):
            return plan
        actions: list[PlannedAction] = []
        replay = Replay(library, FOLD)
        for planned in plan.actions:
            if planned.name in ("tag_rename", "tag_delete"):
                why = f"{planned.name} per document: Readwise Reader has no account-wide tag edit"
                actions.extend(replay.per_item(planned, why))
            else:
                actions.append(planned)
                replay.replay(planned)
        return replace(plan, actions=actions)


def _created(document_id: str, send: Mapping[str, Any], tags: Iterable[str], now: int) -> Item:
    """The saved document as the mirror holds it until the next sync brings it."""
    return Item(
        item_id=document_id,
        given_url=str(send["url"]),
        given_title=str(send.get("title") or ""),
        tags=tuple(dict.fromkeys(tags)),
        time_added=now,
        time_updated=now,
        favorite=None,
        extra={"location": "new"},
    )


def _updated(raw: Any) -> int:
    """A listed document's ``updated_at`` in unix seconds (0: unreadable)."""
    text = raw.get("updated_at") if isinstance(raw, Mapping) else None
    try:
        parsed = datetime.fromisoformat(str(text))
    except ValueError:
        return 0
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp())


def _iso(stamp: int) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _int(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


from_config = ReadwiseSource.from_config
