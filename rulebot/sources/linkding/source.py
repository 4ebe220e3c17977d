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
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rulebot.errors import ItemDataError
from rulebot.library.item import Item
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.rules.capabilities import LINKDING
from rulebot.rules.vocab import parse_duration
from rulebot.sources.applier import Answer, split_tags
from rulebot.sources.cursors import believable, vouched
from rulebot.sources.editing import gather
from rulebot.sources.linkding.api import TOKEN_ENV, LinkdingClient
from rulebot.sources.linkding.items import (
    SHARED_FLAG,
    UNREAD_FLAG,
    bookmark_id_of,
    bookmark_to_item,
    is_id,
)
from rulebot.sources.refining import Replay
from rulebot.sources.server import ServerSession, ServerSource
from rulebot.sources.syncing import SOURCE_KEY, Sync, skipped, stored_cursor

if TYPE_CHECKING:
    from rulebot.library.store import Store
    from rulebot.rules.config import ServiceSettings
    from rulebot.sources.base import SyncResult

# how Linkding tells tags apart: case-insensitively, `read later` being
# `read-later`; the plan compared them so, and every edit here does too
FOLD = LINKDING.fold

CURSOR_KEY = "linkding_since"  # the next `modified_since` (unix seconds)
TAGS_KEY = "linkding_tags"  # the tag list at the last sync: {"id": "name"}
UNREADABLE_KEY = "linkding_unreadable"  # ids listed but not readable (kept out of the mirror)
FULL_SCAN_KEY = "linkding_full_scan_at"  # when the last full scan was (unix seconds)
DEFAULT_FULL_SCAN_EVERY = "7d"
# seconds the cursor stays behind the server's Date: `date_modified` is taken
# before its row commits, so a change in flight while a list was read is read again
DATE_MARGIN = 60

_TAG_ACTIONS = ("tags_add", "tags_remove", "tags_replace", "tags_clear")
# Linkding's own flags: action -> (bookmark field, value)
_FLAG_ACTIONS = {
    "mark_read": (UNREAD_FLAG, False),
    "mark_unread": (UNREAD_FLAG, True),
    "share": (SHARED_FLAG, True),
    "unshare": (SHARED_FLAG, False),
}
_ACTIONS = frozenset({*_TAG_ACTIONS, *_FLAG_ACTIONS, "archive", "readd", "delete"})


class LinkdingSession(ServerSession):
    kind = "linkding"

    def __init__(
        self,
        client: LinkdingClient,
        settings: ServiceSettings,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(client, settings, clock)
        self.client: LinkdingClient = client

    @property
    def full_scan_every(self) -> int:
        text = self.settings.extra.get("full_scan_every", DEFAULT_FULL_SCAN_EVERY)
        return parse_duration(str(text))

    # -- sync -------------------------------------------------------------------
    def sync(self, store: Store, *, full: bool = False, progress: bool = False) -> SyncResult:
        """Incremental from the stored cursor, turning into a full scan when the
        tags or the totals show what the change feed cannot (see the module)."""
        scan = Sync(self, store)
        since = stored_cursor(store, CURSOR_KEY, "Linkding sync cursor", clock=self.clock)
        why = self._scan_due(store, since, full)
        tags = self.client.tags()  # before any bookmark: a rename meanwhile shows next time
        if why is None:
            why = _tags_changed(store.get_meta(TAGS_KEY), tags)
        if why is None and since is not None:
            done = self._incremental(scan, since, tags)
            if not isinstance(done, str):
                return done
            why = done
        if not full:
            self.logger.info("syncing every bookmark: %s", why)
        return self._full(scan, tags)

    def _scan_due(self, store: Store, since: int | None, full: bool) -> str | None:
        """Why this sync must list everything before it starts (None: it need not)."""
        last_full = store.get_meta(FULL_SCAN_KEY) or ""
        if full:
            return "asked for"
        if store.get_meta(SOURCE_KEY) != self.source_id:
            return "the store mirrors no library of this Linkding yet"
        if since is None:
            return "the store holds no sync cursor this machine can vouch for"
        if not (last_full.isascii() and last_full.isdigit() and len(last_full) <= 12):
            return "the store does not say when the last full scan was"
        if int(self.clock()) - int(last_full) >= self.full_scan_every:
            return "full_scan_every has passed since the last full scan"
        return None

    def _full(self, scan: Sync, tags: Mapping[int, str]) -> SyncResult:
        """Every bookmark of both lists; the mirror becomes exactly what they
        held. The cursor is the server's clock when the first list answered."""
        listed = self.client.list_bookmarks(self._kept, archived=False, bounds=scan.bounds)
        archived = self.client.list_bookmarks(self._kept, archived=True, bounds=scan.bounds)
        items, unreadable = self._read([*listed.bookmarks, *archived.bookmarks])
        newest = max((item.time_updated or 0 for item in items), default=0)
        meta = {
            CURSOR_KEY: str(self._cursor(listed.server_time, newest, 0)),
            TAGS_KEY: _tags_json(tags),
            UNREADABLE_KEY: json.dumps(sorted(unreadable)),
            FULL_SCAN_KEY: str(int(self.clock())),
        }
        return scan.full(items, meta)

    def _incremental(self, scan: Sync, since: int, tags: Mapping[int, str]) -> SyncResult | str:
        """What changed since ``since`` on both lists, and (after them) the
        totals; or why a full scan must follow (the totals disagree with what
        the mirror would hold: a deletion)."""
        store = scan.store
        listed = self.client.list_bookmarks(self._kept, archived=False, modified_since=since)
        archived = self.client.list_bookmarks(self._kept, archived=True, modified_since=since)
        total = self.client.total(archived=False) + self.client.total(archived=True)
        items, unreadable_now = self._read([*listed.bookmarks, *archived.bookmarks])
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
        meta = {
            CURSOR_KEY: str(self._cursor(listed.server_time, newest, since)),
            TAGS_KEY: _tags_json(tags),
            UNREADABLE_KEY: json.dumps(sorted(unreadable)),
        }
        return scan.changes(items, set(), meta)

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

    def _kept(self, raw: Any) -> tuple[str | None, Item | ItemDataError]:
        """What a listing holds of one bookmark as its page comes: its id (None
        when it has none rulebot can use) and the item it reads as, or why it
        cannot. Never the bookmark's JSON (#28: 45 MiB for 25,000 held)."""
        listed_id = str(raw["id"]) if isinstance(raw, dict) and is_id(raw.get("id")) else None
        try:
            return listed_id, self.to_item(raw)
        except ItemDataError as err:
            return listed_id, err

    def _read(
        self, kept: Iterable[tuple[str | None, Item | ItemDataError]]
    ) -> tuple[list[Item], set[str]]:
        """Listed bookmarks as items (one per id: a bookmark listed in both lists
        moved while they were read, and its later state wins), and the ids of
        those rulebot cannot read: reported, kept out of the mirror, but not gone."""
        items: dict[str, Item] = {}
        ids: set[str] = set()
        for listed_id, item in kept:
            if listed_id is not None:
                ids.add(listed_id)
            if isinstance(item, ItemDataError):
                skipped(self.logger, "a bookmark", item)
                continue
            known = items.get(item.item_id)
            if known is None or (item.time_updated or 0) >= (known.time_updated or 0):
                items[item.item_id] = item
        return list(items.values()), ids - set(items)

    def to_item(self, raw: Any) -> Item:
        return bookmark_to_item(raw)

    # -- apply ------------------------------------------------------------------
    def item_unit(self, item_id: str, actions: list[PlannedAction], current: Item | None) -> Answer:
        """One DELETE, or one PATCH for the whole unit (after a GET when its
        tag changes start from the bookmark's tags); the tags afterwards as
        the server spells them."""
        bookmark_id = bookmark_id_of(item_id)
        cannot = [planned.name for planned in actions if planned.name not in _ACTIONS]
        if cannot or bookmark_id is None:
            return Answer(
                False, f"Linkding cannot do `{cannot[0]}`" if cannot else "not a Linkding id"
            )
        tagging = [planned.name for planned in actions if planned.name in _TAG_ACTIONS]
        server: tuple[str, ...] | None = None
        if tagging[:1] in (["tags_add"], ["tags_remove"]):  # they start from what it has
            server = _tag_names(self.client.get_bookmark(bookmark_id))
        edit = gather(actions, Item(item_id, tags=server or ()), FOLD)
        if edit.delete:
            self.client.delete_bookmark(bookmark_id)
            return Answer(True)
        body: dict[str, Any] = {}
        if edit.archived is not None:
            body["is_archived"] = edit.archived
        for planned in actions:  # the flags as the unit's last word on each leaves them
            if planned.name in _FLAG_ACTIONS:
                flag, value = _FLAG_ACTIONS[planned.name]
                body[flag] = value
        after = edit.tags.after
        if tagging and after is not None and after != server:
            body["tag_names"] = list(after)
        if not body:
            return Answer(True, tags=server)
        spelled = _tag_names(self.client.update_bookmark(bookmark_id, body))
        return Answer(True, tags=spelled)

    def account_wide(self, planned: PlannedAction, library: Mapping[str, Item]) -> Answer:
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
            self.logger.info("add %s: Linkding has this URL saved already; left as it is", url)
            return Answer(True)
        item = self.read([created.bookmark])
        return Answer(True, created=item[0] if item else None)  # else the next sync brings it


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


def _tag_names(bookmark: Mapping[str, Any]) -> tuple[str, ...] | None:
    tags = bookmark.get("tag_names")
    if isinstance(tags, list) and all(isinstance(t, str) for t in tags):
        return tuple(tags)
    return None


class LinkdingSource(ServerSource):
    kind, caps = "linkding", LINKDING

    def client(self) -> LinkdingClient:
        env = self.settings.env.get("token_env", TOKEN_ENV)
        return LinkdingClient(
            self.settings.base_url, os.environ.get(env), token_env=env, **self.client_settings()
        )

    def session(self, client: LinkdingClient) -> LinkdingSession:
        return LinkdingSession(client, self.settings)

    def refine(self, plan: Plan, library: Mapping[str, Item]) -> Plan:
        """The plan as Linkding will carry it out: tag renames and deletes per
        bookmark (its API has neither), a case-only rename left out, and
        (connected) an ``add`` of a URL Linkding has saved already left out."""
        if all(planned.item_id is not None for planned in plan.actions):
            return plan
        actions: list[PlannedAction] = []
        replay = Replay(library, FOLD)  # the state each action sees
        logger = logging.getLogger("rulebot.linkding")
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
            elif planned.name == "add" and self._saved_already(planned, replay.state, logger):
                continue
            else:
                actions.append(planned)
                replay.replay(planned)
        return replace(plan, actions=actions)

    def _saved_already(
        self, planned: PlannedAction, state: Mapping[str, Item], logger: logging.Logger
    ) -> bool:
        """Whether Linkding has the URL of this ``add`` saved (asked when
        connected: one request; a create would overwrite that bookmark), and
        no earlier action of the plan deletes that bookmark (``state``: the
        library as they leave it), which makes the URL free again."""
        session = self._session
        if not isinstance(session, LinkdingSession):
            return False
        url = str(planned.send["url"])
        found = session.client.check(url)
        if found is None:
            return False
        known = state.get(str(found.get("id")))
        if known is not None and known.is_deleted:
            return False
        saved = found.get("url") if isinstance(found.get("url"), str) else url
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


from_config = LinkdingSource.from_config
