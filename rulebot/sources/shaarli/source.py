"""Shaarli: tags-only bookmarks over its REST API v1 (``specs/shaarli.md``).

Capabilities (``capabilities.SHAARLI``): url, title, tags, created/updated
dates and the ``private`` flag. Shaarli has no read status and no favourite:
conditions on them and ``archive``/``readd``/``favorite``/``unfavorite`` are
refused at validate.

Sync is a full scan of ``GET /links`` (⌈n/page_size⌉ requests). The server's
``/history`` feed is not used: it keeps 31 days, has second resolution and
"strictly newer than" semantics (an event in the same second as the cursor
is lost), reports web-UI imports without link ids, and link ids are reused,
so it cannot bring the mirror back in line on its own; a scan always does.

Per item unit (one rule's actions on one item): ``GET /links/{id}`` first
(ids are reused: a link whose URL differs from the one planned, or whose
``shorturl`` differs from the mirror's, is a different link: the unit is
moot), then the tag changes applied to the server's own tag list and one
``PUT`` with every field sent back unchanged but ``tags`` (PUT replaces the
whole link; a note's url is sent empty, which keeps it a note); or
``DELETE``. Nothing is sent when the tags would not change.

Account-wide: ``tag_rename`` is ``PUT /tags/{old}`` and ``tag_delete`` is
``DELETE /tags/{name}`` where the server does exactly that; Shaarli's tag
routes only take ``[A-Za-z0-9_]+``, touch one exact spelling, and a rename
onto an existing tag leaves duplicates, so otherwise ``refine`` plans the
per-item actions instead (``sources.refining``: they end where the rename
itself would, every spelling of the old tag gone). ``add`` posts the link
with its tags; a 409 (the URL, as the server normalises it, is saved)
counts as done.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from rulebot.errors import ItemDataError
from rulebot.library.item import Item
from rulebot.library.tagcase import folded_tags
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.rules.capabilities import SHAARLI
from rulebot.sources.applier import Answer, split_tags
from rulebot.sources.refining import Replay
from rulebot.sources.server import ServerSession, ServerSource
from rulebot.sources.shaarli.api import (
    API_SECRET_ENV,
    TAG_ROUTE,
    Conflict,
    NotFound,
    ShaarliClient,
    is_link_id,
    link_to_item,
)

if TYPE_CHECKING:
    from rulebot.rules.config import ServiceSettings
    from rulebot.sources.paging import Bounds

logger = logging.getLogger("rulebot.shaarli")
# how Shaarli tells tags apart (its tag list merges with strtolower: ASCII
# letters only); the plan compared them so, and every edit here does too
FOLD = SHAARLI.fold

_TAG_ACTIONS = ("tags_add", "tags_remove", "tags_replace", "tags_clear")


class ShaarliSession(ServerSession):
    kind, noun = "shaarli", "link"

    def __init__(self, client: ShaarliClient, settings: ServiceSettings) -> None:
        super().__init__(client, settings)
        self.client: ShaarliClient = client

    # -- sync: a full scan (see the module's docstring) ---------------------------------
    def listing(self, bounds: Bounds) -> Iterator[dict[str, Any]]:
        return self.client.iter_links(bounds=bounds)

    def to_item(self, raw: Any) -> Item:
        return link_to_item(raw)

    # -- apply ------------------------------------------------------------------
    def item_unit(self, item_id: str, actions: list[PlannedAction], current: Item | None) -> Answer:
        cannot = [p.name for p in actions if p.name not in (*_TAG_ACTIONS, "delete")]
        if cannot:
            return Answer(False, f"Shaarli cannot do `{cannot[0]}` (tags-only bookmarks)")
        link_id = int(item_id)
        link = self.client.get_link(link_id)
        if not _same_link(link, actions[0], current):
            # ids are reused: this is a newer link; the one the plan meant is gone
            return Answer(True, "the link is gone (its id now belongs to another)", moot=True)
        if any(planned.name == "delete" for planned in actions):
            self.client.delete_link(link_id)
            return Answer(True)
        server_tags = link.get("tags")
        if not isinstance(server_tags, list) or not all(isinstance(t, str) for t in server_tags):
            return Answer(False, f"GET /links/{link_id}: the link's tags are not a list of text")
        changes = [(p.name, split_tags(p.send.get("tags"))) for p in actions]
        tags = _apply_tags(list(server_tags), changes)
        if tags == server_tags:
            return Answer(True, tags=tuple(tags))
        if not _editable(link):
            return Answer(False, f"GET /links/{link_id}: the link lacks fields a PUT must keep")
        if _note_url(link):
            # a note's url comes back absolute; sent back so, the note would become a
            # link to itself (and the relative /shaare/… becomes http:///shaare/…):
            # an empty url keeps it a note
            link = {**link, "url": ""}
        saved = self.client.put_link(link_id, {**link, "tags": tags})
        spelled = saved.get("tags")
        if isinstance(spelled, list) and all(isinstance(t, str) for t in spelled):
            return Answer(True, tags=tuple(spelled))
        return Answer(True, tags=tuple(tags))

    def account_wide(self, planned: PlannedAction, library: Mapping[str, Item]) -> Answer:
        send = planned.send
        try:
            if planned.name == "add":
                return self._add(send)
            if planned.name == "tag_rename":
                self.client.rename_tag(str(send["old_tag"]), str(send["new_tag"]))
                return Answer(True)
            if planned.name == "tag_delete":
                self.client.delete_tag(str(send["tag"]))
                return Answer(True)
        except NotFound:
            return Answer(True)  # no link has the tag (any more): nothing left to do
        return Answer(False, f"Shaarli cannot do `{planned.name}` account-wide")

    def _add(self, send: Mapping[str, Any]) -> Answer:
        tags = split_tags(send.get("tags"))
        try:
            created = self.client.create_link(str(send["url"]), str(send.get("title") or ""), tags)
        except Conflict as conflict:
            # saved already (the server strips tracking parameters before comparing)
            existing = conflict.existing if isinstance(conflict.existing, dict) else None
            if existing is None:
                return Answer(True)
            old = existing.get("tags")
            if not isinstance(old, list) or not all(isinstance(t, str) for t in old):
                return Answer(True)  # the next sync brings it
            merged = _apply_tags(list(old), [("tags_add", tags)])
            if merged != old and is_link_id(existing.get("id")) and _editable(existing):
                existing = self.client.put_link(existing["id"], {**existing, "tags": merged})
            created = existing
        try:
            return Answer(True, created=link_to_item(created))
        except ItemDataError as err:
            logger.debug("add: the created link was not readable: %s", err)
            return Answer(True)  # the next sync brings it


def _same_link(link: Mapping[str, Any], planned: PlannedAction, current: Item | None) -> bool:
    """The link the plan meant: its URL as planned (URLs are unique in Shaarli),
    and its shorturl as mirrored. The shorturl alone is not enough: it hashes
    the creation second and the id, so a reused id within a second repeats it."""
    url = (planned.item or {}).get("url") or (current.url if current is not None else None)
    short = current.extra.get("shorturl") if current is not None else None
    return (not url or link.get("url") == url) and (short is None or link.get("shorturl") == short)


def _editable(link: Mapping[str, Any]) -> bool:
    """The link has every field a PUT must send back."""
    return all(key in link for key in ("url", "title", "description", "tags", "private"))


def _note_url(link: Mapping[str, Any]) -> bool:
    url, short = link.get("url"), link.get("shorturl")
    return isinstance(url, str) and isinstance(short, str) and url.endswith(f"/shaare/{short}")


def _apply_tags(tags: list[str], changes: list[tuple[str, list[str]]]) -> list[str]:
    """A unit's tag changes (action word, its tags) on the server's list:
    compared as Shaarli and rulebot's plan compare them (``FOLD``: ASCII
    letters only), the server's spelling and order kept."""
    for name, wanted in changes:
        if name == "tags_add":
            for tag in wanted:
                if FOLD(tag) not in folded_tags(tuple(tags), FOLD):
                    tags.append(tag)
        elif name == "tags_remove":
            gone = folded_tags(tuple(wanted), FOLD)
            tags = [t for t in tags if FOLD(t) not in gone]
        elif name in ("tags_replace", "tags_clear"):
            keep = folded_tags(tuple(wanted), FOLD) if name == "tags_replace" else frozenset()
            tags = [t for t in tags if FOLD(t) in keep]
            for tag in wanted if name == "tags_replace" else []:
                if FOLD(tag) not in folded_tags(tuple(tags), FOLD):
                    tags.append(tag)
    return tags


class ShaarliSource(ServerSource):
    kind, caps = "shaarli", SHAARLI

    def client(self) -> ShaarliClient:
        env = self.settings.env.get("api_secret_env", API_SECRET_ENV)
        return ShaarliClient(
            self.settings.base_url, os.environ.get(env), secret_env=env, **self.client_settings()
        )

    def session(self, client: ShaarliClient) -> ShaarliSession:
        return ShaarliSession(client, self.settings)

    def refine(self, plan: Plan, library: Mapping[str, Item]) -> Plan:
        """Tag renames and deletes Shaarli's tag routes would not do exactly
        become per-item actions: the dry run shows what will really be sent."""
        if not any(p.name in ("tag_rename", "tag_delete") for p in plan.actions):
            return plan
        actions: list[PlannedAction] = []
        replay = Replay(library, FOLD)  # the state each action sees
        for planned in plan.actions:
            if planned.item_id is None and not _route_does_it(planned, replay.state):
                actions.extend(replay.per_item(planned, _per_link_why(planned)))
            else:
                actions.append(_native(planned, replay.state))
                replay.replay(actions[-1])
        return replace(plan, actions=actions)


def _spellings(library: Mapping[str, Item], name: str) -> set[str]:
    folded = FOLD(name)
    return {
        t
        for item in library.values()
        if not item.is_deleted
        for t in item.tags or ()
        if FOLD(t) == folded
    }


def _native(planned: PlannedAction, library: Mapping[str, Item]) -> PlannedAction:
    """A native tag action names the server's exact spelling (its routes are case-sensitive)."""
    key = {"tag_rename": "old_tag", "tag_delete": "tag"}.get(planned.name)
    if key is None:
        return planned
    spelled = _spellings(library, str(planned.send[key]))
    if len(spelled) == 1 and spelled != {planned.send[key]}:
        return replace(planned, send={**planned.send, key: spelled.pop()})
    return planned


def _route_does_it(planned: PlannedAction, library: Mapping[str, Item]) -> bool:
    """Whether Shaarli's tag route does exactly what ``tag_rename``/``tag_delete``
    does (any other action: nothing to decide). The routes (``PUT``/``DELETE
    /tags/{name}``, ``TagsController`` in the installed package) take only
    ``[A-Za-z0-9_]+``; answer 404 unless ``name`` is the spelling the tag list
    shows for its case-insensitive group (the first one met); then change that
    exact spelling only, and only its first copy on each link; a rename
    onto a tag a link already has leaves it there twice. So: one spelling,
    never twice on a link, and (rename) a new name no link has in another
    spelling, without spaces."""
    send = planned.send
    if planned.name == "tag_rename":
        old, new = str(send["old_tag"]), str(send["new_tag"])
        clash = _spellings(library, new) - _spellings(library, old)
        if clash or new != new.strip() or " " in new:
            return False
    elif planned.name == "tag_delete":
        old = str(send["tag"])
    else:
        return True
    olds = _spellings(library, old)
    doubled = any(
        sum(FOLD(t) == FOLD(old) for t in item.tags or ()) > 1 for item in library.values()
    )
    return (
        len(olds) <= 1
        and all(TAG_ROUTE.fullmatch(t) for t in olds)
        and not doubled
        and TAG_ROUTE.fullmatch(old) is not None
    )


def _per_link_why(planned: PlannedAction) -> str:
    send = planned.send
    if planned.name == "tag_rename":
        return f"tag_rename {send['old_tag']} → {send['new_tag']} per link on Shaarli"
    return f"{planned.name} {send.get('tag')} per link on Shaarli"


from_config = ShaarliSource.from_config
