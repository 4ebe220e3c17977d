"""What happened and taking it back: the run journal read as history
(``rulebot runs``), the reversal of a run as a plan (``rulebot undo``), and
the items a `where` matches (``rulebot items``).

Every applier journals, next to each planned action, the state of the item(s)
it touches just before it (``before_states``). ``plan_undo`` turns the
actions a run *confirmed* into their reversal (design.md, "Lifecycle"): a
normal ``Plan`` under the rule name ``undo-RUN``, shown and applied like any
other. An action whose effect the library no longer shows (the item changed
since) is left out and reported as stale.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rulebot.errors import RulebotError
from rulebot.library.item import ARCHIVED, NO_EXTRA, STATUS_NAMES, UNREAD, Item
from rulebot.library.tagcase import folded_tags
from rulebot.planning.plan import Plan, PlannedAction, iso
from rulebot.planning.planner import item_ref, url_keys
from rulebot.rules.actions import Action, compile_action, from_send
from rulebot.rules.vocab import CompileContext, VocabError
from rulebot.safe import clipped, json_text, printable, sheet_cell

if TYPE_CHECKING:
    from rulebot.library.journal import JournalEntry, JournalRun
    from rulebot.library.store import Store
    from rulebot.rules.conditions import Where

# -- the before-state journaled with each action -----------------------------------

# what an undo on the local library can put back beyond what an action itself
# sets (``PlannedAction.restore``): every field of a row but its id, status and
# the time of its last change (an undo is a change, and is stamped as one)
RESTORABLE = frozenset(
    {
        "given_url",
        "resolved_url",
        "given_title",
        "resolved_title",
        "favorite",
        "tags",
        "time_added",
        "time_read",
        "time_favorited",
        "word_count",
        "time_to_read",
        "lang",
        "is_article",
        "has_image",
        "has_video",
        "excerpt",
        "extra",
    }
)
# the rest of a row, journaled for a delete only (its excerpt and extra can be long)
_WHOLE = (
    "given_title",
    "resolved_title",
    "word_count",
    "time_to_read",
    "lang",
    "is_article",
    "has_image",
    "has_video",
    "excerpt",
    "extra",
)


def item_state(item: Item, action: str | None = None) -> dict[str, Any]:
    """What undo needs to know about an item before an action changed it.

    ``action``: the item action about to change it; its read and favourited
    times come too (an archive or a favourite stamps them), and for a
    ``delete`` the whole row, which undo brings back on the local library.
    An account-wide action (None) records only what it can change: tags."""
    state = {
        "item_id": item.item_id,
        "given_url": item.given_url,
        "resolved_url": item.resolved_url,
        "title": item.given_title or item.resolved_title,
        "status": item.status,
        "favorite": item.favorite,
        "tags": None if item.tags is None else list(item.tags),
        "time_added": item.time_added,
        "time_updated": item.time_updated,
    }
    if action is not None:
        state["time_read"] = item.time_read
        state["time_favorited"] = item.time_favorited
    if action == "delete":
        for name in _WHOLE:
            value = getattr(item, name)
            state[name] = dict(value) if name == "extra" else value
    return state


# the type each journaled field must have (None is allowed for all but item_id)
_STATE_TYPES: dict[str, tuple[type, ...]] = {
    **dict.fromkeys(
        ("given_url", "resolved_url", "title", "given_title", "resolved_title", "lang", "excerpt"),
        (str,),
    ),
    **dict.fromkeys(
        ("status", "time_added", "time_updated", "time_read", "time_favorited", "word_count"),
        (int,),
    ),
    **dict.fromkeys(("time_to_read", "has_image", "has_video"), (int,)),
    **dict.fromkeys(("favorite", "is_article"), (bool, int)),
    "item_id": (str, int),
    "tags": (list,),
    "extra": (dict,),
}


def _checked_state(state: Any) -> Mapping[str, Any]:
    """A journaled item state whose every field has its type; else a
    ``ValueError`` naming the field (the journal was changed outside rulebot)."""
    if not isinstance(state, Mapping):
        raise ValueError(f"the journal holds {_kind(state)} where an item belongs")
    if state.get("item_id") is None:
        raise ValueError("the journaled item has no item_id")
    for name, kinds in _STATE_TYPES.items():
        value = state.get(name)
        if value is not None and not isinstance(value, kinds):
            raise ValueError(f"the journaled item's field {name!r} is {_kind(value)}")
    if not all(isinstance(tag, (str, int)) for tag in state.get("tags") or ()):
        raise ValueError("the journaled item's tags are not all text")
    return state


def _kind(value: Any) -> str:
    kinds = {list: "a list", str: "text", dict: "an object", bool: "true/false"}
    return kinds.get(type(value), "a number")


def state_item(state: Any) -> Item:
    state = _checked_state(state)
    tags = state.get("tags")
    whole = "given_title" in state  # a deleted item's row, journaled whole
    extra = state.get("extra")
    return Item(
        item_id=str(state["item_id"]),
        given_url=str(state.get("given_url") or ""),
        resolved_url=str(state.get("resolved_url") or ""),
        given_title=str((state.get("given_title") if whole else state.get("title")) or ""),
        resolved_title=str(state.get("resolved_title") or ""),
        status=int(state.get("status") or 0),
        favorite=state.get("favorite"),
        tags=None if tags is None else tuple(str(t) for t in tags),
        time_added=state.get("time_added"),
        time_updated=state.get("time_updated"),
        time_read=state.get("time_read"),
        time_favorited=state.get("time_favorited"),
        word_count=state.get("word_count"),
        time_to_read=state.get("time_to_read"),
        lang=state.get("lang"),
        is_article=state.get("is_article"),
        has_image=state.get("has_image"),
        has_video=state.get("has_video"),
        excerpt=str(state.get("excerpt") or ""),
        extra=dict(extra) if isinstance(extra, dict) and extra else NO_EXTRA,
    )


def restored(item: Item, restore: Mapping[str, Any]) -> Item:
    """``item`` with the fields an undo's ``restore`` puts back."""
    changes: dict[str, Any] = {}
    for name, value in restore.items():
        if name not in RESTORABLE:
            raise ValueError(f"an undo cannot restore {name!r}")
        if name == "tags":
            value = None if value is None else tuple(str(t) for t in value)
        elif name == "extra":
            value = dict(value) if isinstance(value, dict) and value else NO_EXTRA
        changes[name] = value
    return item.replace(**changes)


def _restore_json(before: Item, after: Item, names: Container[str]) -> dict[str, Any] | None:
    """The fields among ``names`` that ``after`` holds differently from
    ``before``, at their ``before`` values (JSON-ready); None when none."""
    out: dict[str, Any] = {}
    for name in sorted(RESTORABLE):
        if name not in names:
            continue
        was, now = getattr(before, name), getattr(after, name)
        if name == "extra":
            was, now = dict(was), dict(now)
        if was != now:
            out[name] = list(was) if isinstance(was, tuple) else was
    return out or None


def before_states(plan: Plan, library: Mapping[str, Item]) -> list[dict[str, Any]]:
    """For each action of ``plan``, the state of what it touches just before
    it: ``{"item": …}`` for an item action, ``{"items": [...]}`` (the items it
    changes) for an account-wide one. Walked in plan order on a copy of the
    library, so rule 2's action sees what rule 1's left (as the appliers do)."""
    from rulebot.rules.capabilities import plan_fold

    fold = plan_fold(plan.source)
    state = {item_id: item for item_id, item in library.items() if not item.is_deleted}
    urls = {url for item in state.values() for url in url_keys(item)}
    recorded: list[dict[str, Any]] = []
    for planned in plan.actions:
        when = int(planned.send.get("time") or 0)
        try:
            action = from_send(planned.send, fold)
            if action.account_wide:
                effect = action.on_library(state, urls, when)
                changed = effect.changed if effect else []
                recorded.append({"items": [item_state(state[c.item_id]) for c in changed]})
                for item in changed:
                    state[item.item_id] = item
                if effect is not None and effect.added_url:
                    urls.add(effect.added_url)
                continue
            current = state.get(str(planned.send.get("item_id")))
            if current is None:
                recorded.append({"item": None})
                continue
            recorded.append({"item": item_state(current, action.name)})
            item_effect = action.on_item(current, when)
            if item_effect is not None:
                state[current.item_id] = item_effect.changed[0]
        except (VocabError, KeyError, TypeError, ValueError, NotImplementedError):
            recorded.append({"item": None})  # an action rulebot does not know: not undoable
    return recorded


# -- runs -----------------------------------------------------------------------------


def run_json(run: JournalRun) -> dict[str, Any]:
    states = run.states
    return {
        "run_id": run.run_id,
        "started_at": iso(run.started_at),
        "finished_at": None if run.finished_at is None else iso(run.finished_at),
        "command": run.command,
        "source": run.source or "unknown",
        "status": run.status,
        "succeeded": states.get("confirmed", 0),
        "failed": states.get("failed", 0),
        "skipped": states.get("skipped", 0),
        "unconfirmed": states.get("sent", 0) + states.get("planned", 0),
    }


def _source_text(source: Any) -> str:
    if not isinstance(source, dict):
        return "unknown"
    base = source.get("base_url")
    return f"{source.get('kind', '?')} {base}" if base else str(source.get("kind", "?"))


def runs_text(runs: Sequence[JournalRun]) -> str:
    if not runs:
        return "no runs in the journal yet"
    lines = [f"{'RUN':>5}  {'STARTED':20}  {'COMMAND':8}  {'STATUS':11}  SUCCEEDED FAILED SKIPPED"]
    for run in runs:
        row = run_json(run)
        lines.append(
            f"{row['run_id']:>5}  {row['started_at']:20}  {row['command']:8}  "
            f"{row['status']:11}  {row['succeeded']:>9} {row['failed']:>6} {row['skipped']:>7}"
            f"  {printable(_source_text(run.source))}"
        )
    return "\n".join(lines)


# -- undo -----------------------------------------------------------------------------


@dataclass
class Undo:
    run_id: int
    plan: Plan
    stale: list[str] = field(default_factory=list)  # what was left out, and why
    # what is undone but cannot come back exactly on this source, per item
    inexact: list[str] = field(default_factory=list)


def chosen_run(store: Store, run_id: int | None) -> JournalRun:
    """The run to undo: the one named, or the most recent that changed something."""
    if run_id is not None:
        run = store.journal_run(run_id)
        if run is None:
            raise RulebotError(
                f"no run {run_id} in the journal of {store.path} (see `rulebot runs`)"
            )
        return run
    for run in store.journal_runs(limit=1_000_000):
        if run.states.get("confirmed"):
            return run
    raise RulebotError(f"no run in the journal of {store.path} changed anything; nothing to undo")


def plan_undo(
    store: Store,
    run_id: int | None,
    library: Mapping[str, Item],
    now: int,
    *,
    source: dict[str, Any],
    config_sha256: str = "",
) -> Undo:
    run = chosen_run(store, run_id)
    if run.source is not None and run.source != source:
        raise RulebotError(
            f"run {run.run_id} changed {_source_text(run.source)}, but this config uses "
            f"{_source_text(source)}; undo it with the config of that library"
        )
    done = [e for e in store.journal_entries(run.run_id) if e.state == "confirmed"]
    if not done:
        raise RulebotError(f"run {run.run_id} confirmed no action; there is nothing to undo")
    if any(entry.before is None for entry in done):
        raise RulebotError(
            f"run {run.run_id} cannot be undone: it was journaled by an older rulebot that did "
            "not record the items' state before each action"
        )
    reverser = _Reverser(run.run_id, library, now, kind=str(source.get("kind", "local")))
    for entry in reversed(done):  # last change first, so each sees the state it left
        reverser.reverse(entry)
    reverser.drop_created_tags(done)
    plan = Plan(
        created_at=now,
        actions=reverser.planned,
        config_sha256=config_sha256,
        source=source,
        rules=[reverser.rule],
    )
    return Undo(run.run_id, plan, reverser.stale, reverser.inexact)


# the fields a reversed action changes, which the local library restores exactly
_STATUS_FIELDS = frozenset({"time_read"})
_FAVORITE_FIELDS = frozenset({"favorite", "time_favorited"})
_TAG_FIELDS = frozenset({"tags"})
_TIME_NAMES = {"time_read": "read time", "time_favorited": "favourited time"}


class _Reverser:
    """The reversal of a run's confirmed actions, walked last first on a copy
    of the library (``state``) so each reversal sees what the later ones left.

    On the local library every field comes back exactly: what no action can
    set travels in the action's ``restore``. On a server, what cannot come
    back (a time the server stamps, a new id) is said per item (``inexact``)."""

    def __init__(self, run_id: int, library: Mapping[str, Item], now: int, *, kind: str):
        from rulebot.rules.capabilities import ALL_FIELDS, SOURCES, fold_of

        self.run_id = run_id
        self.rule = f"undo-{run_id}"
        self.original = {k: v for k, v in library.items() if not v.is_deleted}
        self.state = dict(self.original)
        self.now = now
        self.local = kind == "local"
        caps = SOURCES.get(kind)
        self.fields = caps.fields if caps is not None else ALL_FIELDS
        self.lowercased = caps is not None and caps.tags_lowercased
        self.label = caps.name if caps is not None else kind
        self.fold = fold_of(kind)  # the source's (rulebot.library.tagcase), as its runs compared
        self.ctx = CompileContext(fold=self.fold)
        self.planned: list[PlannedAction] = []
        self.stale: list[str] = []
        self.inexact: list[str] = []

    def reverse(self, entry: JournalEntry) -> None:
        if entry.unreadable:
            self.stale.append(
                f"run {self.run_id} action {entry.index}: cannot be reversed: the journal's "
                f"record of it is damaged ({entry.unreadable})"
            )
            return
        name = str(entry.send.get("action"))
        before = entry.before or {}
        try:
            if name == "add":
                self._undo_add(entry, before.get("created"))
            elif name in ("tag_rename", "tag_delete"):
                self._undo_tags_wide(entry, [state_item(s) for s in before.get("items") or []])
            elif before.get("item") is None:
                self.stale.append(f"{self._what(entry)}: its item was not in the library")
            elif name == "delete":
                self._undo_delete(entry, state_item(before["item"]))
            else:
                self._undo_item(entry, state_item(before["item"]))
        except (VocabError, KeyError, TypeError, ValueError) as err:
            self.stale.append(f"{self._what(entry)}: cannot be reversed ({err})")

    def _what(self, entry: JournalEntry) -> str:
        send = entry.send
        target = send.get("item_id") or send.get("url") or send.get("tag") or send.get("old_tag")
        return printable(f"run {self.run_id} action {entry.index} ({send.get('action')} {target})")

    def _plan(
        self,
        action: Action,
        item: Item,
        why: str,
        *,
        before: Item | None = None,
        fields: Container[str] = frozenset(),
    ) -> Item | None:
        """Plan ``action`` on ``item``; on the local library, with the
        ``fields`` it leaves unlike ``before`` put back. The item afterwards."""
        effect = action.on_item(item, self.now)
        if effect is None:
            return None
        after = effect.changed[0]
        restore = None
        if self.local and before is not None:
            restore = _restore_json(before, after, fields)
            if restore is not None:
                after = restored(after, restore)
        # a row this undo brings back was in no library when planned: no ref,
        # so applying the plan saved does not take it for one gone since
        known = self.original.get(item.item_id)
        ref = None if known is None else item_ref(known)
        self.planned.append(PlannedAction(self.rule, effect.send, ref, (why,), restore))
        if after.is_deleted:
            self.state.pop(item.item_id, None)
        else:
            self.state[item.item_id] = after
        return after

    def _lost_times(
        self, entry: JournalEntry, before: Item, after: Item, names: Container[str]
    ) -> None:
        """On a server: the times this source keeps that the reversal stamps anew."""
        if self.local:
            return
        for name, label in _TIME_NAMES.items():
            if name in names and name in self.fields:
                was, now = getattr(before, name), getattr(after, name)
                if was != now:
                    shown = "never" if was is None else iso(was)
                    note = f"its {label} becomes the undo's (was {shown}): the server stamps it"
                    self.inexact.append(f"{self._what(entry)}: {note}")
                    last = self.planned[-1]  # the reversal just planned says so too
                    self.planned[-1] = replace(last, reasons=(*last.reasons, note))

    def _undo_item(self, entry: JournalEntry, before: Item) -> None:
        current = self.state.get(before.item_id)
        if current is None:
            self.stale.append(f"{self._what(entry)}: the item is gone")
            return
        name = str(entry.send["action"])
        done = from_send(entry.send, self.fold).on_item(before, self.now)
        after = done.changed[0] if done else before
        why = f"undo run {self.run_id}: {name}"
        if name in ("archive", "readd"):
            if current.status != after.status:
                self.stale.append(f"{self._what(entry)}: the item's status changed since")
                return
            word = "readd" if before.status == UNREAD else "archive"
            back = self._plan(
                compile_action(word, self.ctx), current, why, before=before, fields=_STATUS_FIELDS
            )
            if back is not None:
                self._lost_times(entry, before, back, _STATUS_FIELDS)
        elif name in ("favorite", "unfavorite"):
            if current.favorite != after.favorite:
                self.stale.append(f"{self._what(entry)}: the item's favourite changed since")
                return
            word = "favorite" if before.favorite else "unfavorite"
            if before.favorite is None and not self.local:
                self.inexact.append(
                    f"{self._what(entry)}: its favourite was unknown before the run; "
                    "it becomes not a favourite"
                )
            back = self._plan(
                compile_action(word, self.ctx), current, why, before=before, fields=_FAVORITE_FIELDS
            )
            if back is not None:
                self._lost_times(entry, before, back, _FAVORITE_FIELDS)
        else:  # the tag actions
            if current.tag_set(self.fold) != after.tag_set(self.fold):
                self.stale.append(f"{self._what(entry)}: the item's tags changed since")
                return
            self._restore_tags(entry, current, before, why)

    def _restore_tags(self, entry: JournalEntry, current: Item, before: Item, why: str) -> None:
        """Give ``current`` the tags of ``before`` back, spelled as they were.

        Sources compare tags case-insensitively (a ``tags_replace`` keeps the
        server's spelling of a tag it has), so a tag whose spelling must
        change is removed and added again; the local library also gets their
        order back (``restore``)."""
        wanted = before.tags
        if wanted is None:
            if self.local:  # unknown again: cleared, then marked unknown
                self._plan(
                    compile_action("tags_clear", self.ctx),
                    current,
                    why,
                    before=before,
                    fields=_TAG_FIELDS,
                )
            else:
                self.inexact.append(
                    f"{self._what(entry)}: its tags were unknown before the run; left as they are"
                )
            return
        have = current.tags or ()
        if list(have) == list(wanted):
            return
        wrong = [t for t in have if t not in wanted]
        missing = [t for t in wanted if t not in have]
        respell = folded_tags(tuple(wrong), self.fold) & folded_tags(tuple(wanted), self.fold)
        steps: list[Any]
        back = [t for t in wanted if t in missing or self.fold(t) in respell]
        self._say_spellings(entry, current.item_id, wanted, back)
        if not wrong and not missing:
            steps = []  # only their order differs: kept (a server has none)
        elif respell:  # removed in every spelling, then added back as it was
            steps = [{"tags_remove": wrong}, {"tags_add": back}]
        elif not missing:
            steps = [{"tags_remove": wrong}]
        elif not wrong:
            steps = [{"tags_add": missing}]
        else:
            steps = [{"tags_replace": list(wanted)}]
        for number, step in enumerate(steps):
            last = number == len(steps) - 1
            self._plan(
                compile_action(step, self.ctx),
                self.state[current.item_id],
                why,
                before=before if last else None,
                fields=_TAG_FIELDS,
            )

    def _say_spellings(
        self, entry: JournalEntry, item_id: str, wanted: Sequence[str], back: list[str]
    ) -> None:
        """What no tag action can give back, said per item: two spellings of
        one tag on one item (rulebot's tags compare case-insensitively, so one
        comes back), and a spelling a source that lower-cases tags cannot keep."""
        what = self._what(entry)
        if entry.send.get("item_id") is None:
            what = f"{what} on item {printable(item_id)}"
        first: dict[str, str] = {}
        for tag in wanted:
            other = first.setdefault(self.fold(tag), tag)
            if other != tag:
                self.inexact.append(
                    f"{what}: it had {other!r} and {tag!r}, one tag to rulebot "
                    "(tags compare case-insensitively): one spelling comes back"
                )
        if self.lowercased:
            for tag in back:
                if tag != tag.lower():
                    self.inexact.append(
                        f"{what}: {self.label} stores tags lower-cased: "
                        f"{tag!r} comes back as {tag.lower()!r}"
                    )

    def _undo_delete(self, entry: JournalEntry, before: Item) -> None:
        urls = {u for item in self.state.values() for u in url_keys(item)}
        if before.item_id in self.state or urls & url_keys(before):
            self.stale.append(f"{self._what(entry)}: the item (or its URL) is back already")
            return
        send: dict[str, Any] = {"action": "add", "url": before.given_url or before.resolved_url}
        if before.given_title:
            send["title"] = before.given_title
        if before.tags:
            send["tags"] = ",".join(before.tags)
        send["time"] = self.now
        if self.local:  # the same row comes back, as it was
            send["item_id"] = before.item_id
            why = f"undo run {self.run_id}: delete (item {before.item_id} comes back as it was)"
            self._restore_row(send, before, why)
            return
        lost = [
            "it gets a new id",
            f"its added time becomes the undo's (was {iso(before.time_added or 0)})",
        ]
        if before.status == ARCHIVED:
            lost.append("it comes back unread (was archived)")
        if before.favorite:
            lost.append("it comes back not a favourite (was one)")
        detail = "; ".join(lost)
        why = f"undo run {self.run_id}: delete (saved again as a new item: {detail})"
        self.inexact.append(f"{self._what(entry)}: saved again as a new item: {detail}")
        self.planned.append(PlannedAction(self.rule, send, None, (why,)))

    def _restore_row(self, send: dict[str, Any], before: Item, why: str) -> None:
        """A deleted row back on the local library: the add, then its status
        and favourite as actions, every other field through ``restore``."""
        added = Item(
            item_id=before.item_id,
            given_url=send["url"],
            given_title=str(send.get("title", "")),
            tags=before.tags,
            time_added=self.now,
            time_updated=self.now,
        )
        later: set[str] = set()  # what the archive and favorite below put back
        if before.status == ARCHIVED:
            later |= _STATUS_FIELDS
        if before.favorite:
            later |= _FAVORITE_FIELDS
        restore = _restore_json(before, added, RESTORABLE - later)
        if restore is not None:
            added = restored(added, restore)
        self.planned.append(PlannedAction(self.rule, send, None, (why,), restore))
        self.state[added.item_id] = added
        if before.status == ARCHIVED:
            self._plan(
                compile_action("archive", self.ctx),
                added,
                why,
                before=before,
                fields=_STATUS_FIELDS,
            )
        if before.favorite:
            item = self.state[added.item_id]
            self._plan(
                compile_action("favorite", self.ctx),
                item,
                why,
                before=before,
                fields=_FAVORITE_FIELDS,
            )

    def _undo_add(self, entry: JournalEntry, created: Any) -> None:
        """Delete the item the run created, unless it changed since."""
        if not isinstance(created, dict):
            self.stale.append(
                f"{self._what(entry)}: the journal does not say which item the run created "
                "(a run of an older rulebot, or the server's answer named none); delete it "
                "yourself if it should go"
            )
            return
        made = state_item(created)
        current = self.state.get(made.item_id)
        if current is None:
            self.stale.append(f"{self._what(entry)}: the item it added is gone")
            return
        changed = [
            what
            for what, differs in (
                ("status", current.status != made.status),
                ("favourite", current.favorite != made.favorite),
                ("tags", current.tag_set(self.fold) != made.tag_set(self.fold)),
            )
            if differs
        ]
        if changed:
            self.stale.append(
                f"{self._what(entry)}: the item it added changed since ({', '.join(changed)})"
            )
            return
        url = str(entry.send.get("url", ""))
        self._plan(
            compile_action("delete", self.ctx), current, f"undo run {self.run_id}: add {url}"
        )

    def _undo_tags_wide(self, entry: JournalEntry, befores: list[Item]) -> None:
        send = entry.send
        why = f"undo run {self.run_id}: {send['action']}"
        if send["action"] == "tag_delete":
            gone = str(send["tag"])
            for before in befores:
                current = self.state.get(before.item_id)
                if current is None:
                    self.stale.append(f"{self._what(entry)}: item {before.item_id} is gone")
                    continue
                spelled = [t for t in before.tags or () if self.fold(t) == self.fold(gone)]
                expected = before.tag_set(self.fold) - {self.fold(gone)}
                self._plan(
                    compile_action({"tags_add": spelled or [gone]}, self.ctx),
                    current,
                    why,
                    # the order back too, unless the item's tags changed since
                    before=before if current.tag_set(self.fold) == expected else None,
                    fields=_TAG_FIELDS,
                )
            return
        old, new = str(send["old_tag"]), str(send["new_tag"])
        if self._rename_back(old, new, befores, why):
            return
        rename = compile_action({"tag_rename": {"old_tag": old, "new_tag": new}}, self.ctx)
        for before in befores:  # otherwise each renamed item gets its old tags back
            current = self.state.get(before.item_id)
            effect = rename.on_library({before.item_id: before}, _NO_URLS, self.now)
            after = effect.changed[0] if effect is not None and effect.changed else before
            if current is None or current.tag_set(self.fold) != after.tag_set(self.fold):
                self.stale.append(f"{self._what(entry)}: item {before.item_id} changed since")
                continue
            self._restore_tags(entry, current, before, why)

    def _rename_back(self, old: str, new: str, befores: list[Item], why: str) -> bool:
        """One ``tag_rename`` back, when it is exact: every renamed item had
        one spelling of the old tag, the same one (which the rename back
        gives), none had the new one besides, and no other item carries the
        new one now."""
        spellings = set()
        for before in befores:
            if before.tags is None:
                return False
            olds = [t for t in before.tags if self.fold(t) == self.fold(old)]
            news = [t for t in before.tags if self.fold(t) == self.fold(new)]
            if len(olds) != 1 or any(t not in olds for t in news):
                return False
            spellings.add(olds[0])
        if len(spellings) != 1:
            return False
        [spelled] = spellings
        holders = {i.item_id for i in self.state.values() if self.fold(new) in i.tag_set(self.fold)}
        if not holders or holders != {b.item_id for b in befores}:
            return False
        rename = compile_action({"tag_rename": {"old_tag": new, "new_tag": spelled}}, self.ctx)
        effect = rename.on_library(self.state, _NO_URLS, self.now)
        if effect is not None:
            self.planned.append(PlannedAction(self.rule, effect.send, None, (why,)))
            for item in effect.changed:
                self.state[item.item_id] = item
        return True

    def drop_created_tags(self, done: Sequence[JournalEntry]) -> None:
        """A service that keeps a tag no item carries (Karakeep) journals the
        tags a run created: those the undo leaves on no item go too, so the
        service's tags are as before the run (and a later rename onto one is
        not refused)."""
        created: dict[str, None] = {}
        for entry in done:
            for tag in (entry.before or {}).get("created_tags") or ():
                created[str(tag)] = None
        for tag in created:
            folded = self.fold(tag)
            if any(folded in item.tag_set(self.fold) for item in self.state.values()):
                if not any(tag in (item.tags or ()) for item in self.state.values()):
                    self.inexact.append(
                        f"run {self.run_id} created the tag {printable(tag)}: it is left "
                        "(with no items) because another spelling of it is in use"
                    )
                continue
            send = {"action": "tag_delete", "tag": tag, "time": self.now}
            why = f"undo run {self.run_id}: it created the tag {tag}, which no item carries now"
            self.planned.append(PlannedAction(self.rule, send, None, (why,)))


_NO_URLS: Container[str] = frozenset()


# -- items ----------------------------------------------------------------------------


def matching_items(
    items: Sequence[Item], where: Where | None, now: int, limit: int | None = None
) -> list[Item]:
    """Live items ``where`` definitely matches, oldest first (as a rule sees
    the library before any rule changed it)."""
    from rulebot.planning.planner import Simulation

    state = Simulation(items)
    if where is None:
        found = [item for item in state.in_order if item is not None]
    else:
        found = where.select(state.in_order, now)
    return found if limit is None else found[:limit]


ITEM_COLUMNS = ("item_id", "status", "favorite", "time_added", "tags", "title", "url")


def item_row(item: Item) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "status": STATUS_NAMES.get(item.status, str(item.status)),
        "favorite": item.favorite,
        "time_added": None if item.time_added is None else iso(item.time_added),
        "tags": None if item.tags is None else list(item.tags),
        "title": item.title,
        "url": item.url,
    }


def items_output(items: Sequence[Item], fmt: str) -> str:
    """The items as text, JSON or CSV: each read on a terminal, CSV in a
    spreadsheet too, so library text is escaped (and formula-guarded) as
    in every output of rulebot (``rulebot.safe``)."""
    rows = [item_row(item) for item in items]
    if fmt == "json":
        return json_text(rows)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(ITEM_COLUMNS)
        for row in rows:
            tags = row["tags"]
            cells = [
                *(row[c] for c in ITEM_COLUMNS[:4]),
                "" if tags is None else ",".join(tags),
                row["title"],
                row["url"],
            ]
            writer.writerow([sheet_cell(c) if isinstance(c, str) else c for c in cells])
        return buffer.getvalue()
    lines = []
    for row in rows:  # one line per item: long text clipped (JSON and CSV carry it whole)
        tags = "?" if row["tags"] is None else ",".join(row["tags"]) or "-"
        lines.append(
            f"{clipped(row['item_id'], 40)}  {row['status']:8}  {clipped(tags, 80)}  "
            f"{clipped(row['title'], 100)}  {clipped(row['url'], 120)}"
        )
    count = len(rows)
    lines.append(f"{count} item{'s' if count != 1 else ''}")
    return "\n".join(lines)


# the inline `where` of `rulebot items --where`, checked as the config is: it is
# placed in a one-rule config whose last line starts with this prefix, so every
# problem found on that line points at a column of the argument itself
_WHERE_PREFIX = "  where: "


def inline_where(text: str, timezone_name: str) -> Where:
    """``--where YAML`` compiled like a rule's `where`; errors name the column
    of the argument (and the path inside it)."""
    from rulebot.rules.config import errors_in, load_config_text, validate_text

    if not text.strip():
        raise RulebotError("--where is empty; give a YAML mapping such as '{tag: read-later}'")
    if "\n" in text.strip():
        text = " ".join(line.strip() for line in text.strip().splitlines())
    head = f"version: 1\ntimezone: {json.dumps(timezone_name)}\nrules:\n- name: items\n"
    head += "  actions: [archive]\n"
    document = head + _WHERE_PREFIX + text.strip() + "\n"
    where_line = document.count("\n", 0, len(head)) + 1
    problems = errors_in(validate_text(document, "--where"))
    if problems:
        shown = []
        for problem in problems[:5]:
            at = problem.col - len(_WHERE_PREFIX) if problem.line == where_line else 1
            path = problem.path.replace("$.rules[0].where", "where", 1)
            message = problem.message.replace(f" at line {where_line}", "")
            shown.append(f"--where, column {max(at, 1)}: {message} [{path}]")
        raise RulebotError("\n".join(shown))
    where = load_config_text(document, "--where").rules[0].where
    if where is None:  # `where: null` is refused by validation; kept for mypy
        raise RulebotError("--where is empty; give a YAML mapping such as '{tag: read-later}'")
    return where
