"""The action vocabulary: one small class per ``/v3/send`` action.

Each action knows its schema fragment, the exact ``/v3/send`` object it
sends (``item_id`` as a digit string, ``tags`` as a comma string, ``time``),
its effect on an item (so later rules see the simulated state), when it
would change nothing (then it is dropped), and whether it destroys data.

Item actions implement ``on_item``; account-wide ones (``tag_rename``,
``tag_delete``, ``add``) implement ``on_library`` and act on every item.
"""

from __future__ import annotations

import functools
from collections.abc import Container, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rulebot.library.item import ARCHIVED, DELETED, UNREAD, Item
from rulebot.library.tagcase import Fold, tag_sets, unicode_lower
from rulebot.memo import Memo
from rulebot.rules.conditions.base import Env
from rulebot.rules.vocab import CompileContext, VocabError, tag_values, tags_schema


@dataclass
class Effect:
    """What one action would do: the send object and the items it changes."""

    send: dict[str, Any]
    changed: list[Item] = field(default_factory=list)  # new versions of items
    added_url: str | None = None


class Action:
    name: ClassVar[str]
    description: ClassVar[str]
    schema: ClassVar[dict[str, Any] | None] = None  # None: a bare word
    destructive: ClassVar[bool] = False
    account_wide: ClassVar[bool] = False

    def __init__(self, value: Any, ctx: CompileContext) -> None:
        self.value = value

    def describe(self) -> str:
        return self.name

    # item actions
    def on_item(self, item: Item, now: int) -> Effect | None:
        stepped = self.step(item, now)
        return None if stepped is None else Effect(stepped[0], [stepped[1]])

    def step(self, item: Item, now: int) -> tuple[dict[str, Any], Item] | None:
        """``on_item`` as (send, the item afterwards), or None for a no-op:
        the planner's path, one per planned action, without an ``Effect``."""
        raise NotImplementedError

    def unchanged(self, env: Env) -> str | None:
        """A Python expression over ``i`` (a live item) that is true exactly
        when ``step`` would change nothing, for the planner to pass such
        items by inline (``acting.quick_selector``); None when there is none.
        A property test holds each to ``step``."""
        return None

    # account-wide actions
    def on_library(
        self, library: Mapping[str, Item], urls: Container[str], now: int
    ) -> Effect | None:
        raise NotImplementedError

    def _send(self, item: Item | None, now: int, **fields: Any) -> dict[str, Any]:
        send: dict[str, Any] = {"action": self.name}
        if item is not None:
            send["item_id"] = item.item_id
        send.update(fields)
        send["time"] = now
        return send


REGISTRY: dict[str, type[Action]] = {}


def action(cls: type[Action]) -> type[Action]:
    REGISTRY[cls.name] = cls
    return cls


# -- bare words -----------------------------------------------------------------


class _StatusAction(Action):
    def step(self, item: Item, now: int) -> tuple[dict[str, Any], Item] | None:
        changes = self.changes(item, now)
        if changes is None:
            return None
        # the send written out: the planner makes one per planned action
        send = {"action": self.name, "item_id": item.item_id, "time": now}
        return send, item.replace(time_updated=now, **changes)

    def changes(self, item: Item, now: int) -> dict[str, Any] | None:
        raise NotImplementedError


@action
class Archive(_StatusAction):
    name = "archive"
    description = "Move the item to the archive."

    def changes(self, item: Item, now: int) -> dict[str, Any] | None:
        return None if item.status == ARCHIVED else {"status": ARCHIVED, "time_read": now}

    def unchanged(self, env: Env) -> str | None:
        return f"(i.status == {ARCHIVED})"


@action
class Readd(_StatusAction):
    name = "readd"
    description = "Move an archived item back to the unread list."

    def changes(self, item: Item, now: int) -> dict[str, Any] | None:
        return None if item.status == UNREAD else {"status": UNREAD}

    def unchanged(self, env: Env) -> str | None:
        return f"(i.status == {UNREAD})"


@action
class Favorite(_StatusAction):
    name = "favorite"
    description = "Mark the item as a favorite."

    def changes(self, item: Item, now: int) -> dict[str, Any] | None:
        return None if item.favorite is True else {"favorite": True, "time_favorited": now}

    def unchanged(self, env: Env) -> str | None:
        return "(i.favorite is True)"


@action
class Unfavorite(_StatusAction):
    name = "unfavorite"
    description = "Remove the item from favorites."

    def changes(self, item: Item, now: int) -> dict[str, Any] | None:
        # unknown (None) is planned too: we cannot tell a change from a no-op
        return None if item.favorite is False else {"favorite": False, "time_favorited": None}

    def unchanged(self, env: Env) -> str | None:
        return "(i.favorite is False)"


class _FlagAction(_StatusAction):
    """A flag only some services keep (Linkding's ``unread`` and ``shared``), in
    ``Item.extra``; every other source refuses these actions at validate."""

    flag: ClassVar[str]  # the Item.extra key
    sets: ClassVar[bool]  # what the action sets it to

    def changes(self, item: Item, now: int) -> dict[str, Any] | None:
        # unknown (absent) is planned too: we cannot tell a change from a no-op
        if item.extra.get(self.flag) is self.sets:
            return None
        return {"extra": {**item.extra, self.flag: self.sets}}

    def unchanged(self, env: Env) -> str | None:
        return f"(i.extra.get({env.const(self.flag)}) is {self.sets})"


@action
class MarkRead(_FlagAction):
    name = "mark_read"
    description = "Linkding: clear the bookmark's own unread (read later) flag."
    flag, sets = "unread", False


@action
class MarkUnread(_FlagAction):
    name = "mark_unread"
    description = "Linkding: set the bookmark's own unread (read later) flag."
    flag, sets = "unread", True


@action
class Share(_FlagAction):
    name = "share"
    description = "Linkding: share the bookmark (others see it once sharing is on)."
    flag, sets = "shared", True


@action
class Unshare(_FlagAction):
    name = "unshare"
    description = "Linkding: stop sharing the bookmark."
    flag, sets = "shared", False


# the service-only flag actions, by name: (Item.extra key, the value it sets)
FLAG_ACTIONS = {cls.name: (cls.flag, cls.sets) for cls in (MarkRead, MarkUnread, Share, Unshare)}


@action
class Delete(_StatusAction):
    name = "delete"
    description = "Permanently delete the item. Counts against limits.max_deletes."
    destructive = True

    def changes(self, item: Item, now: int) -> dict[str, Any] | None:
        return None if item.is_deleted else {"status": DELETED}

    def unchanged(self, env: Env) -> str | None:
        return "False"  # a live item is not deleted yet


@action
class TagsClear(_StatusAction):
    name = "tags_clear"
    description = "Remove every tag from the item."

    def changes(self, item: Item, now: int) -> dict[str, Any] | None:
        return None if item.tags == () else {"tags": ()}

    def unchanged(self, env: Env) -> str | None:
        return "(i.tags == ())"


# -- tag lists ----------------------------------------------------------------------


class _TagsAction(Action):
    def __init__(self, value: Any, ctx: CompileContext) -> None:
        self.fold = ctx.fold  # how the source compares tags (rulebot.library.tagcase)
        self.tags = _dedupe(tag_values(value), self.fold)
        self.folded = frozenset(map(self.fold, self.tags))
        self.sets = tag_sets(self.fold)

    def describe(self) -> str:
        return f"{self.name} {','.join(self.tags)}"

    def step(self, item: Item, now: int) -> tuple[dict[str, Any], Item] | None:
        outcome = self.outcome(item)
        if outcome is None:
            return None
        sent, tags = outcome
        send = {"action": self.name, "item_id": item.item_id, "tags": ",".join(sent), "time": now}
        return send, item.replace(tags=tags, time_updated=now)

    def outcome(self, item: Item) -> tuple[list[str], tuple[str, ...] | None] | None:
        """(tags to send, the item's tags afterwards) or None for a no-op."""
        raise NotImplementedError


def _dedupe(tags: list[str], fold: Fold) -> list[str]:
    seen: set[str] = set()
    out = []
    for tag in tags:
        if fold(tag) not in seen:
            seen.add(fold(tag))
            out.append(tag)
    return out


@action
class TagsAdd(_TagsAction):
    name = "tags_add"
    description = "Add these tags (only those the item lacks are sent)."
    schema = tags_schema("Tags to add.")

    def outcome(self, item: Item) -> tuple[list[str], tuple[str, ...] | None] | None:
        if item.tags is None:  # unknown: cannot tell a change from a no-op
            return None
        have = item.tag_set(self.fold)
        if self.folded <= have:
            return None  # the common case on a tidy library: decided by one set test
        new = [t for t in self.tags if self.fold(t) not in have]
        return (new, (*item.tags, *new)) if new else None

    def unchanged(self, env: Env) -> str | None:
        return f"(i.tags is None or {env.const(self.folded)} <= {env.const(self.sets)}[i.tags])"


@action
class TagsRemove(_TagsAction):
    name = "tags_remove"
    description = "Remove these tags (only those the item has are sent)."
    schema = tags_schema("Tags to remove.")

    def outcome(self, item: Item) -> tuple[list[str], tuple[str, ...] | None] | None:
        if item.tags is None:
            return None
        have = item.tag_set(self.fold)
        if self.folded.isdisjoint(have):
            return None
        gone = [t for t in self.tags if self.fold(t) in have]
        if not gone:
            return None
        drop = {self.fold(t) for t in gone}
        return gone, tuple(t for t in item.tags if self.fold(t) not in drop)

    def unchanged(self, env: Env) -> str | None:
        have = f"{env.const(self.sets)}[i.tags]"
        return f"(i.tags is None or {env.const(self.folded)}.isdisjoint({have}))"


@action
class TagsReplace(_TagsAction):
    name = "tags_replace"
    description = "Replace all of the item's tags with these."
    schema = tags_schema("The item's new tags.")

    def outcome(self, item: Item) -> tuple[list[str], tuple[str, ...] | None] | None:
        wanted = sorted(map(self.fold, self.tags))
        if item.tags is not None and sorted(map(self.fold, item.tags)) == wanted:
            return None  # tags compare as the source does (case-insensitively)
        return self.tags, tuple(self.tags)

    def unchanged(self, env: Env) -> str | None:
        fold = self.fold
        spelled: Memo[tuple[str, ...], list[str]] = Memo(lambda tags: sorted(map(fold, tags)))
        wanted = env.const(sorted(map(fold, self.tags)))
        return f"(i.tags is not None and {env.const(spelled)}[i.tags] == {wanted})"


# -- account-wide -------------------------------------------------------------------


@action
class TagRename(Action):
    name = "tag_rename"
    description = "Rename a tag on every item that has it (account-wide: no `where`)."
    account_wide = True
    schema = {
        "description": description,
        "type": "object",
        "additionalProperties": False,
        "required": ["old_tag", "new_tag"],
        "properties": {
            "old_tag": {"description": "The tag to rename.", "type": "string", "minLength": 1},
            "new_tag": {"description": "Its new name.", "type": "string", "minLength": 1},
        },
    }

    def __init__(self, value: Mapping[str, Any], ctx: CompileContext) -> None:
        self.fold = ctx.fold
        try:
            [self.old] = tag_values([value["old_tag"]])
        except VocabError as err:
            raise VocabError(err.message, ("old_tag",)) from None
        try:
            [self.new] = tag_values([value["new_tag"]])
        except VocabError as err:
            raise VocabError(err.message, ("new_tag",)) from None

    def describe(self) -> str:
        return f"tag_rename {self.old} → {self.new}"

    def on_library(
        self, library: Mapping[str, Item], urls: Container[str], now: int
    ) -> Effect | None:
        fold, sets = self.fold, tag_sets(self.fold)
        old = fold(self.old)
        changed = []
        for item in library.values():  # every item, every run: the cheap tests first
            if not item.tags or old not in sets[item.tags] or item.is_deleted:
                continue
            # every spelling of the old tag goes, so a case-only rename of an
            # item tagged both `Python` and `python` leaves exactly `Python`;
            # the new name takes the old one's place (a rename back is exact)
            others = {fold(t) for t in item.tags if fold(t) != old}
            placed = fold(self.new) in others  # it has the new one already
            kept = []
            for tag in item.tags:
                if fold(tag) != old:
                    kept.append(tag)
                elif not placed:
                    kept.append(self.new)
                    placed = True
            if tuple(kept) == item.tags:
                continue  # already renamed: only the new spelling is there
            changed.append(item.replace(tags=tuple(kept), time_updated=now))
        if not changed:
            return None
        send = self._send(None, now, old_tag=self.old, new_tag=self.new)
        return Effect(send, changed)


@action
class TagDelete(Action):
    name = "tag_delete"
    description = "Delete a tag from every item (account-wide: no `where`). Counts as a delete."
    account_wide = True
    destructive = True
    schema = {"description": description, "type": "string", "minLength": 1}

    def __init__(self, value: Any, ctx: CompileContext) -> None:
        self.fold = ctx.fold
        try:
            [self.tag] = tag_values([value])
        except VocabError as err:
            raise VocabError(err.message) from None  # the value itself, not a list slot

    def describe(self) -> str:
        return f"tag_delete {self.tag}"

    def on_library(
        self, library: Mapping[str, Item], urls: Container[str], now: int
    ) -> Effect | None:
        fold, sets = self.fold, tag_sets(self.fold)
        gone = fold(self.tag)
        changed = [  # every item, every run: the cheap tests first
            item.replace(tags=tuple(t for t in tags if fold(t) != gone), time_updated=now)
            for item in library.values()
            if (tags := item.tags) and gone in sets[tags] and not item.is_deleted
        ]
        if not changed:
            return None
        return Effect(self._send(None, now, tag=self.tag), changed)


@action
class Add(Action):
    name = "add"
    description = "Save a URL (account-wide: no `where`); skipped when an item has that URL."
    account_wide = True
    schema = {
        "description": description,
        "type": "object",
        "additionalProperties": False,
        "required": ["url"],
        "properties": {
            "url": {
                "description": "The URL to save (http or https).",
                "type": "string",
                "pattern": "^https?://[^\\s/?#]+[^\\s]*$",
            },
            "title": {"description": "A title for it.", "type": "string"},
            "tags": tags_schema("Tags for the new item."),
        },
    }

    def __init__(self, value: Mapping[str, Any], ctx: CompileContext) -> None:
        self.url = str(value["url"]).strip()
        self.title = value.get("title")
        try:
            self.tags = _dedupe(tag_values(value["tags"]), ctx.fold) if "tags" in value else []
        except VocabError as err:
            raise VocabError(err.message, ("tags", *err.path)) from None

    def describe(self) -> str:
        return f"add {self.url}"

    def on_library(
        self, library: Mapping[str, Item], urls: Container[str], now: int
    ) -> Effect | None:
        if self.url in urls:
            return None
        fields: dict[str, Any] = {"url": self.url}
        if self.title:
            fields["title"] = self.title
        if self.tags:
            fields["tags"] = ",".join(self.tags)
        return Effect(self._send(None, now, **fields), [], added_url=self.url)


BARE_WORDS = [name for name, cls in REGISTRY.items() if cls.schema is None]


def compile_action(value: Any, ctx: CompileContext | None = None) -> Action:
    """One entry of ``actions:`` — a bare word or a one-key mapping."""
    ctx = ctx or CompileContext()
    if isinstance(value, str):
        if value not in BARE_WORDS:
            raise VocabError(f"unknown action {value!r}")
        return REGISTRY[value](None, ctx)
    if not isinstance(value, Mapping) or len(value) != 1:
        raise VocabError("an action is a word (archive) or a one-key mapping (tags_add: [x])")
    [(name, arg)] = value.items()
    if name not in REGISTRY or REGISTRY[name].schema is None:
        raise VocabError(f"unknown action {name!r}")
    try:
        return REGISTRY[name](arg, ctx)
    except VocabError as err:
        raise VocabError(err.message, (name, *err.path)) from None


def action_schema() -> dict[str, Any]:
    """The JSON-Schema `$defs/action`: a bare word, or one key naming the action.

    Keyed by name with if/then/else rather than a big ``oneOf``, so an error
    says exactly which action or argument is wrong.
    """
    return {
        "description": "An action: a bare word (" + ", ".join(BARE_WORDS) + ") or a one-key "
        "mapping naming the action and its argument.",
        "if": {"type": "string"},
        "then": {"enum": BARE_WORDS},
        "else": {
            "type": "object",
            "minProperties": 1,
            "maxProperties": 1,
            "additionalProperties": False,
            "properties": {
                name: cls.schema for name, cls in REGISTRY.items() if cls.schema is not None
            },
        },
    }


def from_send(send: Mapping[str, Any], fold: Fold = unicode_lower) -> Action:
    """Rebuild the action behind a ``/v3/send`` object (to apply a saved plan),
    comparing tags by ``fold``: the plan's source's (``capabilities.plan_fold``),
    as the planner compared them. Every applier passes it; the default (lower
    case) is the local library's, for callers outside rulebot.

    Actions are immutable, and a plan repeats a few of them on thousands of
    items: the rebuilt action is shared (cached by the fields that make it)."""
    key = tuple(send.get(k) for k in _ACTION_FIELDS)
    try:
        return _cached_action(key, fold)
    except TypeError:  # an unhashable value (a saved plan's odd field): build it afresh
        return _from_send(send, fold)


_ACTION_FIELDS = ("action", "tags", "old_tag", "new_tag", "tag", "url", "title")


@functools.lru_cache(maxsize=4096)
def _cached_action(key: tuple[Any, ...], fold: Fold) -> Action:
    send = {k: v for k, v in zip(_ACTION_FIELDS, key, strict=True) if v is not None}
    return _from_send(send, fold)


def _from_send(send: Mapping[str, Any], fold: Fold) -> Action:
    name = send.get("action")
    ctx = CompileContext(fold=fold)
    if name in BARE_WORDS:
        return compile_action(name, ctx)
    if name in ("tags_add", "tags_remove", "tags_replace"):
        return compile_action({name: send.get("tags", "")}, ctx)
    if name == "tag_rename":
        value = {"old_tag": send["old_tag"], "new_tag": send["new_tag"]}
        return compile_action({name: value}, ctx)
    if name == "tag_delete":
        return compile_action({name: send["tag"]}, ctx)
    if name == "add":
        value = {k: send[k] for k in ("url", "title", "tags") if send.get(k)}
        return compile_action({name: value}, ctx)
    raise VocabError(f"unknown action {name!r}")
