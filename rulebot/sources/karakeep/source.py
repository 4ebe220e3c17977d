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
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rulebot.errors import ItemDataError
from rulebot.library.item import Item
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.rules.capabilities import KARAKEEP
from rulebot.sources.applier import Answer, split_tags
from rulebot.sources.editing import gather
from rulebot.sources.karakeep.api import (
    API_KEY_ENV,
    KarakeepClient,
    NotFound,
    TagNameConflict,
    bookmark_to_item,
)
from rulebot.sources.refining import Replay
from rulebot.sources.server import ServerSession, ServerSource

if TYPE_CHECKING:
    from collections.abc import Iterator

    from rulebot.rules.config import ServiceSettings
    from rulebot.sources.paging import Bounds

logger = logging.getLogger("rulebot.karakeep")
# Karakeep's tag names are case-sensitive (`JS` and `js` are two tags): rulebot
# compares them case-insensitively (lower-casing, as the plan did) and acts on
# every spelling the bookmark has
FOLD = KARAKEEP.fold


class KarakeepSession(ServerSession):
    kind = "karakeep"

    def __init__(self, client: KarakeepClient, settings: ServiceSettings) -> None:
        super().__init__(client, settings)
        self.client: KarakeepClient = client
        # while applying a plan that attaches tags: the server's tag names, so
        # each unit can say which tags it created (Karakeep keeps a tag when
        # its last bookmark goes: undo deletes the ones a run created)
        self._known: set[str] | None = None
        self._lock = threading.Lock()

    def tag_names(self) -> list[str]:
        """Every tag on the server, with or without bookmarks (one request)."""
        return [str(tag["name"]) for tag in self.client.list_tags()]

    # -- sync: a full scan (Karakeep has no change feed) ----------------------------
    def listing(self, bounds: Bounds) -> Iterator[dict[str, Any]]:
        return self.client.iter_bookmarks(bounds=bounds)

    def to_item(self, raw: Any) -> Item:
        return bookmark_to_item(raw)

    # -- apply ------------------------------------------------------------------
    def prepare(self, plan: Plan) -> None:
        attaches = any(
            planned.name in ("tags_add", "tags_replace") or planned.send.get("tags")
            for planned in plan.actions
            if planned.name != "tags_remove"
        )
        self._known = set(self.tag_names()) if attaches else None

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

    def item_unit(self, item_id: str, actions: list[PlannedAction], current: Item | None) -> Answer:
        """Tag detaches, then attaches (the server's spellings), then one PATCH
        for the flags; or one DELETE. The bookmark's tags afterwards, as
        spelled on the server (None when deleted, or when its tags were
        unknown), and the tags it created."""
        edit = gather(actions, current, FOLD)
        if edit.delete:
            self.client.delete_bookmark(item_id)
            return Answer(True)
        created: list[str] = []
        if edit.tags.detach:
            self.client.detach_tags(item_id, edit.tags.detach)
        if edit.tags.attach:
            self._attach(item_id, edit.tags.attach, created)
        patch = {
            key: value
            for key, value in (("archived", edit.archived), ("favourited", edit.favorite))
            if value is not None
        }
        if patch:
            self.client.update_bookmark(item_id, **patch)
        return Answer(True, tags=edit.tags.after, created_tags=tuple(created))

    def account_wide(self, planned: PlannedAction, library: Mapping[str, Item]) -> Answer:
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


class KarakeepSource(ServerSource):
    kind, caps = "karakeep", KARAKEEP

    def client(self) -> KarakeepClient:
        env = self.settings.env.get("api_key_env", API_KEY_ENV)
        return KarakeepClient(
            self.settings.base_url, os.environ.get(env), api_key_env=env, **self.client_settings()
        )

    def session(self, client: KarakeepClient) -> KarakeepSession:
        return KarakeepSession(client, self.settings)

    def refine(self, plan: Plan, library: Mapping[str, Item]) -> Plan:
        """Tag renames Karakeep would refuse become the per-item actions that
        do the same: the dry run shows what will really be sent.

        Karakeep refuses a rename onto any tag it has, and keeps a tag when its
        last bookmark goes (an undone ``tags_add`` leaves one), which no mirror
        item shows: connected, the server's tags are asked (one request)."""
        if not any(planned.name == "tag_rename" for planned in plan.actions):
            return plan
        session = getattr(self, "_session", None)  # set while connected
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


from_config = KarakeepSource.from_config
