"""Linkding: bookmarks over its REST API (``specs/linkding.md``).

Capabilities (``capabilities.LINKDING``): url, title, tags, added/modified
dates, the archive (``status``), and Linkding's own ``unread`` and ``shared``
flags (the ``marked_unread`` and ``shared`` conditions, the ``mark_read``,
``mark_unread``, ``share`` and ``unshare`` actions). Linkding has no
favourite: rules on one are refused at validate.

Sync. The first one (and ``sync --full``, another library, a cursor that
cannot be right, ``full_scan_every``) lists everything: the tags (first, so
a tag renamed while the bookmarks are read shows next time), then both lists,
the bookmarks and the archive (each ⌈n/page_size⌉ requests, at least one).
After that, ``modified_since`` on both lists brings what changed since the
cursor (store meta ``linkding_since``). Linkding's change feed cannot see
two things: a deleted bookmark (gone, with no trace) and a tag renamed,
merged or deleted in its web UI (the bookmarks keep their ``date_modified``).
So every incremental sync also reads the tag list (a tag whose name changed
or that went: the web UI did it) and the two totals (one request each, a
page of one bookmark): when the mirror would not hold as many bookmarks as
Linkding then, something was deleted. Either way the sync turns into a full
scan at once. An idle sync costs 5 requests (tags, two lists, two totals); a
full scan ⌈tags/page_size⌉ + ⌈bookmarks/page_size⌉ + ⌈archived/page_size⌉.
The cursor is the server's clock when the first list answered (its ``Date``)
less ``DATE_MARGIN``, so a change committed while a list was being read is
read again next time, never missed (``rulebot.sources.cursors``).

Apply, per item unit (one rule's actions on one item): ``delete`` is one
``DELETE``; everything else travels as ONE ``PATCH`` (``is_archived``,
``unread``, ``shared``, ``tag_names``). ``tag_names`` replaces the whole set,
so a unit that adds or removes tags first reads the bookmark (``GET``) and
sends its tags with the unit's changes applied, compared as Linkding does
(``FOLD``; the server keeps its own spelling of a tag it has). A 404 is moot.

Account-wide: Linkding's API has no tag rename or delete, so ``refine``
spells ``tag_rename``/``tag_delete`` out per bookmark (``sources.refining``):
the plan shows what will be sent. A rename that changes only a tag's case
(or a space for a ``-``) is not planned: Linkding keeps a tag's first
spelling, and only its web UI can change it (a warning says so). ``add``
never overwrites: a URL Linkding has saved already (as it compares URLs) is
left out of the plan when connected, and ``create_bookmark`` asks again
before it sends.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rulebot.errors import ItemDataError
from rulebot.library.item import Item
from rulebot.library.tagcase import folded_tags
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.rules.capabilities import LINKDING, Capabilities
from rulebot.rules.vocab import parse_duration
from rulebot.sources.applier import Answer, Unit, apply_units, kept_spellings, split_tags
from rulebot.sources.base import SyncResult
from rulebot.sources.cursors import believable, from_the_future, vouched
from rulebot.sources.linkding.api import TOKEN_ENV, LinkdingClient, NotFound
from rulebot.sources.linkding.items import (
    SHARED_FLAG,
    UNREAD_FLAG,
    bookmark_id_of,
    bookmark_to_item,
)
from rulebot.sources.paging import Bounds
from rulebot.sources.refining import Replay

if TYPE_CHECKING:
    from rulebot.library.journal import JournalAction
    from rulebot.library.store import Store
    from rulebot.planning.plan import Result
    from rulebot.rules.config import Config, ServiceSettings

logger = logging.getLogger("rulebot.linkding")
# how Linkding tells tags apart: case-insensitively, `read later` being
# `read-later`; the plan compared them so, and every edit here does too
FOLD = LINKDING.fold

SOURCE_KEY = "source"  # store meta: which library the mirror holds
CURSOR_KEY = "linkding_since"  # the next `modified_since` (unix seconds)
TAGS_KEY = "linkding_tags"  # the tag list at the last sync: {"id": "name"}
UNREADABLE_KEY = "linkding_unreadable"  # ids listed but not readable (kept out of the mirror)
FULL_SCAN_KEY = "linkding_full_scan_at"  # when the last full scan finished (unix seconds)
DEFAULT_FULL_SCAN_EVERY = "7d"
# seconds the cursor stays behind the server's Date: `date_modified` is taken
# before its row commits, so a change in flight while a list was read is read again
DATE_MARGIN = 60

_TAG_ACTIONS = ("tags_add", "tags_remove", "tags_replace", "tags_clear")
_STATUS_ACTIONS = {"archive": True, "readd": False}
# Linkding's own flags: action -> (bookmark field, value)
_FLAG_ACTIONS = {
    "mark_read": (UNREAD_FLAG, False),
    "mark_unread": (UNREAD_FLAG, True),
    "share": (SHARED_FLAG, True),
    "unshare": (SHARED_FLAG, False),
}


class LinkdingSession:
    def __init__(
        self,
        client: LinkdingClient,
        settings: ServiceSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.settings = settings
        self.clock = clock  # this machine's: how far a server's time is believed

    @property
    def requests_made(self) -> int:
        return self.client.requests_made

    @property
    def source_id(self) -> str:
        return f"linkding {self.settings.base_url.rstrip('/')}"

    @property
    def full_scan_every(self) -> int:
        text = self.settings.extra.get("full_scan_every", DEFAULT_FULL_SCAN_EVERY)
        return parse_duration(str(text))

    # -- sync -------------------------------------------------------------------
    def recover(self, store: Store, pending: Sequence[JournalAction]) -> None:
        """Nothing to do: the next sync shows whether they landed (every change
        Linkding makes moves ``date_modified``, and a deletion shows in the totals)."""

    def sync(self, store: Store, *, full: bool = False, progress: bool = False) -> SyncResult:
        """Incremental from the stored cursor, turning into a full scan when the
        tags or the totals show what the change feed cannot (see the module)."""
        before = self.client.requests_made
        why = self._scan_due(store, full)
        tags = self.client.tags()  # before any bookmark: a rename meanwhile shows next time
        if why is None:
            why = _tags_changed(store.get_meta(TAGS_KEY), tags)
        if why is None:
            since = int(store.get_meta(CURSOR_KEY) or 0)
            done = self._incremental(store, since, tags)
            if isinstance(done, tuple):
                received, requests = done[0], self.client.requests_made - before
                return SyncResult(False, received, 0, requests)
            why = done
        if not full:
            logger.info("syncing every bookmark: %s", why)
        received, deleted = self._full(store, tags)
        return SyncResult(True, received, deleted, self.client.requests_made - before)

    def _scan_due(self, store: Store, full: bool) -> str | None:
        """Why this sync must list everything before it starts (None: it need not)."""
        since = store.get_meta(CURSOR_KEY)
        last_full = store.get_meta(FULL_SCAN_KEY) or ""
        if full:
            return "asked for"
        if store.get_meta(SOURCE_KEY) != self.source_id:
            return "the store mirrors no library of this Linkding yet"
        if since is None or not (since.isascii() and since.isdigit() and len(since) <= 12):
            return "the store holds no sync cursor"
        if from_the_future(int(since), "Linkding sync cursor", clock=self.clock):
            return "the sync cursor is ahead of this machine's clock"
        if not (last_full.isascii() and last_full.isdigit() and len(last_full) <= 12):
            return "the store does not say when the last full scan was"
        if int(self.clock()) - int(last_full) >= self.full_scan_every:
            return "full_scan_every has passed since the last full scan"
        return None

    def _full(self, store: Store, tags: Mapping[int, str]) -> tuple[int, int]:
        """Every bookmark of both lists; the mirror becomes exactly what they
        held. The cursor is the server's clock when the first list answered."""
        known = {item.item_id for item in store.items()}
        bounds = Bounds(len(known), self.settings.max_items, "linkding.max_items")
        listed = self.client.list_bookmarks(archived=False, bounds=bounds)
        archived = self.client.list_bookmarks(archived=True, bounds=bounds)
        items, unreadable = _read([*listed.bookmarks, *archived.bookmarks])
        newest = max((item.time_updated or 0 for item in items), default=0)
        cursor = self._cursor(listed.server_time, newest, 0)
        with store.transaction() as conn:
            store.replace_all(items, conn)
            store.set_meta(SOURCE_KEY, self.source_id, conn)
            store.set_meta(CURSOR_KEY, str(cursor), conn)
            store.set_meta(TAGS_KEY, _tags_json(tags), conn)
            store.set_meta(UNREADABLE_KEY, json.dumps(sorted(unreadable)), conn)
            store.set_meta(FULL_SCAN_KEY, str(int(self.clock())), conn)
        return len(items), len(known - {item.item_id for item in items})

    def _incremental(
        self, store: Store, since: int, tags: Mapping[int, str]
    ) -> tuple[int, int] | str:
        """What changed since ``since`` on both lists, and (after them) the
        totals: (bookmarks received, 0), or why a full scan must follow (the
        totals disagree with what the mirror would hold: a deletion)."""
        listed = self.client.list_bookmarks(archived=False, modified_since=since)
        archived = self.client.list_bookmarks(archived=True, modified_since=since)
        total = self.client.total(archived=False) + self.client.total(archived=True)
        items, unreadable_now = _read([*listed.bookmarks, *archived.bookmarks])
        readable = {item.item_id for item in items}
        unreadable = (_id_list(store.get_meta(UNREADABLE_KEY)) - readable) | unreadable_now
        listed_ids = readable | unreadable_now
        present = store.get_many(listed_ids | unreadable)
        holds = store.count() + len((listed_ids | unreadable) - present.keys())
        if holds != total:
            return (
                f"Linkding holds {total:,} bookmarks and the mirror would hold {holds:,} "
                "(bookmarks were deleted there, which its change feed never shows)"
            )
        newest = max((item.time_updated or 0 for item in items), default=since)
        cursor = self._cursor(listed.server_time, newest, since)
        with store.transaction() as conn:
            store.upsert(items, conn)
            store.set_meta(CURSOR_KEY, str(cursor), conn)
            store.set_meta(TAGS_KEY, _tags_json(tags), conn)
            store.set_meta(UNREADABLE_KEY, json.dumps(sorted(unreadable)), conn)
        return len(items), 0

    def _cursor(self, answered: int | None, newest: int, since: int) -> int:
        """The next ``modified_since``: the server's clock when the first list
        answered (its ``Date``) less ``DATE_MARGIN``. Never the newest change
        alone: one dated ahead of the server's clock would carry the cursor
        past edits still to come. Without a Date this machine's clock can
        believe, what the changes listed and this machine's clock both vouch
        for, never earlier than ``since`` (``rulebot.sources.cursors``)."""
        if answered is not None:
            date = believable(answered, "Linkding's Date header", clock=self.clock)
            if date is not None:
                return max(0, date - DATE_MARGIN)
        return max(since, vouched(newest, clock=self.clock))

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
        return apply_units(
            store,
            plan,
            self.perform,
            kind="linkding",
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
            return [self._account_wide(first)]
        bookmark_id = bookmark_id_of(first.item_id)
        cannot = [
            p.name
            for _, p in unit
            if p.name not in (*_TAG_ACTIONS, *_STATUS_ACTIONS, *_FLAG_ACTIONS, "delete")
        ]
        if cannot or bookmark_id is None:
            why = f"Linkding cannot do `{cannot[0]}`" if cannot else "not a Linkding bookmark id"
            return [Answer(False, why)] * len(unit)
        try:
            tags = self._item_unit(bookmark_id, [planned for _, planned in unit])
        except NotFound:
            return [Answer(True, "the bookmark is gone on the server", moot=True)] * len(unit)
        return [Answer(True, tags=tags)] * len(unit)

    def _item_unit(self, bookmark_id: int, actions: list[PlannedAction]) -> tuple[str, ...] | None:
        """One DELETE, or one PATCH for the whole unit (after a GET when its
        tag changes start from the bookmark's tags); the tags afterwards as
        the server spells them (None when deleted or unknown)."""
        if any(planned.name == "delete" for planned in actions):
            self.client.delete_bookmark(bookmark_id)
            return None
        body: dict[str, Any] = {}
        changes: list[tuple[str, list[str]]] = []
        for planned in actions:
            if planned.name in _STATUS_ACTIONS:
                body["is_archived"] = _STATUS_ACTIONS[planned.name]
            elif planned.name in _FLAG_ACTIONS:
                field, value = _FLAG_ACTIONS[planned.name]
                body[field] = value
            else:
                changes.append((planned.name, split_tags(planned.send.get("tags"))))
        server: list[str] | None = None
        if changes:
            if changes[0][0] in ("tags_add", "tags_remove"):  # starts from what it has
                server = _tag_names(self.client.get_bookmark(bookmark_id))
            tags = _apply_tags(list(server or ()), changes)
            if server is None or tags != server:
                body["tag_names"] = tags
        if not body:
            return tuple(server) if server is not None else None
        answer = self.client.update_bookmark(bookmark_id, body)
        spelled = _tag_names(answer)
        return tuple(spelled) if spelled is not None else None

    def _account_wide(self, planned: PlannedAction) -> Answer:
        if planned.name == "add":
            return self._add(planned.send)
        # refine spells these out per bookmark; a plan saved without it cannot be sent
        return Answer(
            False,
            f"Linkding's API cannot do `{planned.name}` account-wide; plan again: the plan "
            "then does it bookmark by bookmark",
        )

    def _add(self, send: Mapping[str, Any]) -> Answer:
        url = str(send["url"])
        created = self.client.create_bookmark(
            url, str(send.get("title") or ""), split_tags(send.get("tags"))
        )
        if created.existed:
            logger.info("add %s: Linkding has this URL saved already; left as it is", url)
            return Answer(True)
        try:
            return Answer(True, created=bookmark_to_item(created.bookmark))
        except ItemDataError as err:
            logger.debug("add: the created bookmark was not readable: %s", err)
            return Answer(True)  # the next sync brings it

    def saved(self, url: str) -> str | None:
        """The URL under which Linkding has ``url`` saved (as it compares URLs), or None."""
        found = self.client.check(url)
        if found is None:
            return None
        saved_url = found.get("url")
        return saved_url if isinstance(saved_url, str) else url


def _read(raws: Iterable[Any]) -> tuple[list[Item], set[str]]:
    """Bookmarks as items (one per id: a bookmark listed in both lists moved
    while they were read, and its later state wins), and the ids of those
    rulebot cannot read: reported, kept out of the mirror, but not gone."""
    items: dict[str, Item] = {}
    unreadable: set[str] = set()
    for raw in raws:
        try:
            item = bookmark_to_item(raw)
        except ItemDataError as err:
            logger.warning("skipped a bookmark rulebot cannot read: %s", err)
            bookmark_id = raw.get("id") if isinstance(raw, Mapping) else None
            if isinstance(bookmark_id, int) and not isinstance(bookmark_id, bool):
                unreadable.add(str(bookmark_id))
            continue
        known = items.get(item.item_id)
        if known is None or (item.time_updated or 0) >= (known.time_updated or 0):
            items[item.item_id] = item
    return list(items.values()), unreadable - set(items)


def _tags_changed(stored: str | None, tags: Mapping[int, str]) -> str | None:
    """Why the tag list shows a change the change feed misses: a tag of the
    last sync renamed (merged) or gone, which only the web UI does."""
    try:
        before = json.loads(stored) if stored else None
    except ValueError:
        before = None
    if not isinstance(before, dict):
        return "the store holds no tag list of the last sync"
    for tag_id, name in before.items():
        now = tags.get(int(tag_id)) if str(tag_id).isdigit() else None
        if now != name:
            what = "gone" if now is None else f"now {now!r}"
            return (
                f"the tag {name!r} is {what}: renamed, merged or deleted in Linkding's web UI, "
                "which its change feed never shows"
            )
    return None


def _tags_json(tags: Mapping[int, str]) -> str:
    return json.dumps({str(tag_id): name for tag_id, name in sorted(tags.items())})


def _id_list(stored: str | None) -> set[str]:
    try:
        ids = json.loads(stored) if stored else []
    except ValueError:
        ids = []
    return {str(i) for i in ids} if isinstance(ids, list) else set()


def _tag_names(bookmark: Mapping[str, Any]) -> list[str] | None:
    tags = bookmark.get("tag_names")
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        return list(tags)
    return None


def _apply_tags(tags: list[str], changes: list[tuple[str, list[str]]]) -> list[str]:
    """A unit's tag changes (action word, its tags) on the bookmark's tags,
    compared as Linkding and the plan compare them (``FOLD``): the server's
    spelling and order of a tag it has are kept."""
    for name, wanted in changes:
        if name == "tags_add":
            for tag in wanted:
                if FOLD(tag) not in folded_tags(tuple(tags), FOLD):
                    tags.append(tag)
        elif name == "tags_remove":
            gone = folded_tags(tuple(wanted), FOLD)
            tags = [t for t in tags if FOLD(t) not in gone]
        elif name == "tags_clear":
            tags = []
        elif name == "tags_replace":
            keep = kept_spellings(tags, wanted, FOLD)
            tags = [t for t in tags if t in keep]
            for tag in wanted:
                if FOLD(tag) not in folded_tags(tuple(tags), FOLD):
                    tags.append(tag)
    return tags


class LinkdingSource:
    kind = "linkding"
    remote = True

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self._session: LinkdingSession | None = None

    @property
    def capabilities(self) -> Capabilities:
        return LINKDING

    def describe(self) -> dict[str, Any]:
        return {"kind": "linkding", "base_url": self.settings.base_url}

    @contextmanager
    def connect(self) -> Iterator[LinkdingSession]:
        env = self.settings.env.get("token_env", TOKEN_ENV)
        with LinkdingClient(
            self.settings.base_url,
            os.environ.get(env),
            page_size=self.settings.page_size,
            timeout=self.settings.timeout,
            max_wait=self.settings.max_rate_wait,
            token_env=env,
            on_wait=lambda message: logger.warning("%s", message),
        ) as client:
            self._session = LinkdingSession(client, self.settings)
            try:
                yield self._session
            finally:
                self._session = None

    def refine(self, plan: Plan, library: Mapping[str, Item]) -> Plan:
        """The plan as Linkding will carry it out: tag renames and deletes per
        bookmark (its API has neither), a case-only rename left out, and
        (connected) an ``add`` of a URL Linkding has saved already left out."""
        if all(planned.item_id is not None for planned in plan.actions):
            return plan
        actions: list[PlannedAction] = []
        replay = Replay(library, FOLD)  # the state each action sees
        for planned in plan.actions:
            send = planned.send
            if planned.name == "tag_rename" and FOLD(send["old_tag"]) == FOLD(send["new_tag"]):
                logger.warning(
                    "rule %s: tag_rename %s → %s is not planned: Linkding keeps the first "
                    "spelling of a tag and its API cannot change it (its web UI's tag editor can)",
                    planned.rule,
                    send["old_tag"],
                    send["new_tag"],
                )
            elif planned.name in ("tag_rename", "tag_delete"):
                actions.extend(replay.per_item(planned, _per_bookmark_why(planned)))
            elif planned.name == "add" and self._saved_already(planned):
                continue
            else:
                actions.append(planned)
                replay.replay(planned)
        return replace(plan, actions=actions)

    def _saved_already(self, planned: PlannedAction) -> bool:
        """Whether Linkding has the URL of this ``add`` saved (asked when
        connected: one request; a create would overwrite that bookmark)."""
        if self._session is None:
            return False
        url = str(planned.send["url"])
        saved = self._session.saved(url)
        if saved is None:
            return False
        logger.warning(
            "rule %s: add %s is not planned: Linkding has it saved already as %s "
            "(it compares URLs normalised), and saving it again would overwrite that bookmark",
            planned.rule,
            url,
            saved,
        )
        return True


def _per_bookmark_why(planned: PlannedAction) -> str:
    send = planned.send
    if planned.name == "tag_rename":
        what = f"tag_rename {send['old_tag']} → {send['new_tag']}"
    else:
        what = f"tag_delete {send['tag']}"
    return f"{what} per bookmark: Linkding's API has no tag rename or delete"


def from_config(config: Config) -> LinkdingSource:
    assert config.service is not None and config.service.kind == "linkding"
    return LinkdingSource(config.service)
