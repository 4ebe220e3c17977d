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
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from rulebot.actions import Action, compile_action, from_send
from rulebot.errors import RulebotError
from rulebot.item import ARCHIVED, STATUS_NAMES, UNREAD, Item
from rulebot.plan import Plan, PlannedAction, iso
from rulebot.planner import item_ref, url_keys
from rulebot.safe import printable
from rulebot.vocab import VocabError

if TYPE_CHECKING:
    from rulebot.conditions import Where
    from rulebot.store import JournalEntry, JournalRun, Store

# -- the before-state journaled with each action -----------------------------------


def item_state(item: Item) -> dict[str, Any]:
    """What undo needs to know about an item before an action changed it."""
    return {
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


def state_item(state: Mapping[str, Any]) -> Item:
    tags = state.get("tags")
    return Item(
        item_id=str(state["item_id"]),
        given_url=str(state.get("given_url") or ""),
        resolved_url=str(state.get("resolved_url") or ""),
        given_title=str(state.get("title") or ""),
        status=int(state.get("status") or 0),
        favorite=state.get("favorite"),
        tags=None if tags is None else tuple(str(t) for t in tags),
        time_added=state.get("time_added"),
        time_updated=state.get("time_updated"),
    )


def before_states(plan: Plan, library: Mapping[str, Item]) -> list[dict[str, Any]]:
    """For each action of ``plan``, the state of what it touches just before
    it: ``{"item": …}`` for an item action, ``{"items": [...]}`` (the items it
    changes) for an account-wide one. Walked in plan order on a copy of the
    library, so rule 2's action sees what rule 1's left (as the appliers do)."""
    state = {item_id: item for item_id, item in library.items() if not item.is_deleted}
    urls = {url for item in state.values() for url in url_keys(item)}
    recorded: list[dict[str, Any]] = []
    for planned in plan.actions:
        when = int(planned.send.get("time") or 0)
        try:
            action = from_send(planned.send)
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
            recorded.append({"item": item_state(current)})
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
    reverser = _Reverser(run.run_id, library, now, local=source.get("kind") == "local")
    for entry in reversed(done):  # last change first, so each sees the state it left
        reverser.reverse(entry)
    plan = Plan(
        created_at=now,
        actions=reverser.planned,
        config_sha256=config_sha256,
        source=source,
        rules=[reverser.rule],
    )
    return Undo(run.run_id, plan, reverser.stale)


class _Reverser:
    def __init__(self, run_id: int, library: Mapping[str, Item], now: int, *, local: bool):
        self.run_id = run_id
        self.rule = f"undo-{run_id}"
        self.original = {k: v for k, v in library.items() if not v.is_deleted}
        self.state = dict(self.original)
        self.now = now
        self.local = local
        self.planned: list[PlannedAction] = []
        self.stale: list[str] = []

    def reverse(self, entry: JournalEntry) -> None:
        name = str(entry.send.get("action"))
        before = entry.before or {}
        try:
            if name == "add":
                self._undo_add(entry)
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

    def _plan(self, action: Action, item: Item, why: str) -> None:
        effect = action.on_item(item, self.now)
        if effect is None:
            return
        ref = item_ref(self.original.get(item.item_id, item))
        self.planned.append(PlannedAction(self.rule, effect.send, ref, (why,)))
        self.state[item.item_id] = effect.changed[0]

    def _undo_item(self, entry: JournalEntry, before: Item) -> None:
        current = self.state.get(before.item_id)
        if current is None:
            self.stale.append(f"{self._what(entry)}: the item is gone")
            return
        name = str(entry.send["action"])
        done = from_send(entry.send).on_item(before, self.now)
        after = done.changed[0] if done else before
        why = f"undo run {self.run_id}: {name}"
        if name in ("archive", "readd"):
            if current.status != after.status:
                self.stale.append(f"{self._what(entry)}: the item's status changed since")
                return
            word = "readd" if before.status == UNREAD else "archive"
            self._plan(compile_action(word), current, why)
        elif name in ("favorite", "unfavorite"):
            if bool(current.favorite) != bool(after.favorite):
                self.stale.append(f"{self._what(entry)}: the item's favourite changed since")
                return
            word = "favorite" if before.favorite else "unfavorite"
            self._plan(compile_action(word), current, why)
        else:  # the tag actions
            if current.tag_set() != after.tag_set():
                self.stale.append(f"{self._what(entry)}: the item's tags changed since")
                return
            if name == "tags_add":
                sent = [t for t in str(entry.send.get("tags", "")).split(",") if t]
                self._plan(compile_action({"tags_remove": sent}), current, why)
            else:
                self._restore_tags(current, before.tags or (), why)

    def _restore_tags(self, current: Item, tags: Sequence[str], why: str) -> None:
        word: Any = {"tags_replace": list(tags)} if tags else "tags_clear"
        self._plan(compile_action(word), current, why)

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
        if self.local:  # the same row comes back (its id; status and favourite below)
            send["item_id"] = before.item_id
            why = f"undo run {self.run_id}: delete (item {before.item_id} comes back)"
        else:
            why = (
                f"undo run {self.run_id}: delete (saved again as a new item: the server gives "
                f"it a new id; it comes back unread, not favourite)"
            )
        # locally the row comes back as it was added (the add's time is its time_added)
        send["time"] = (before.time_added or self.now) if self.local else self.now
        self.planned.append(PlannedAction(self.rule, send, None, (why,)))
        if not self.local:
            return
        restored = Item(
            item_id=before.item_id,
            given_url=send["url"],
            given_title=before.given_title,
            tags=before.tags,
            time_added=send["time"],
            time_updated=send["time"],
        )
        self.state[restored.item_id] = restored
        if before.status == ARCHIVED:
            self._plan(compile_action("archive"), restored, f"undo run {self.run_id}: delete")
        if before.favorite:
            self._plan(compile_action("favorite"), self.state[restored.item_id], why)

    def _undo_add(self, entry: JournalEntry) -> None:
        url = str(entry.send.get("url", ""))
        found = [i for i in self.state.values() if url in url_keys(i)]
        if not found:
            self.stale.append(f"{self._what(entry)}: no item has that URL any more")
            return
        for item in found:
            self._plan(compile_action("delete"), item, f"undo run {self.run_id}: add {url}")

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
                spelled = [t for t in before.tags or () if t.casefold() == gone.casefold()]
                self._plan(compile_action({"tags_add": spelled or [gone]}), current, why)
            return
        old, new = str(send["old_tag"]), str(send["new_tag"])
        changed = {b.item_id for b in befores}
        holders = [i for i in self.state.values() if new.casefold() in i.tag_set()]
        fresh = all(b.tags is not None and new.casefold() not in b.tag_set() for b in befores)
        if fresh and holders and {i.item_id for i in holders} == changed:
            # nobody else carries the new name: renaming back is exact
            rename = compile_action({"tag_rename": {"old_tag": new, "new_tag": old}})
            effect = rename.on_library(self.state, _NO_URLS, self.now)
            if effect is not None:
                self.planned.append(PlannedAction(self.rule, effect.send, None, (why,)))
                for item in effect.changed:
                    self.state[item.item_id] = item
            return
        for before in befores:  # otherwise each renamed item gets its old tags back
            current = self.state.get(before.item_id)
            if current is None or new.casefold() not in current.tag_set():
                self.stale.append(f"{self._what(entry)}: item {before.item_id} changed since")
                continue
            self._restore_tags(current, before.tags or (), why)


_NO_URLS: Container[str] = frozenset()


# -- items ----------------------------------------------------------------------------


def matching_items(
    items: Sequence[Item], where: Where | None, now: int, limit: int | None = None
) -> list[Item]:
    """Live items ``where`` definitely matches, oldest first (as a rule sees
    the library before any rule changed it)."""
    from rulebot.planner import Simulation

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
    rows = [item_row(item) for item in items]
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False)
    if fmt == "csv":
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(ITEM_COLUMNS)
        for row in rows:
            tags = row["tags"]
            writer.writerow(
                [
                    *(row[c] for c in ITEM_COLUMNS[:4]),
                    "" if tags is None else ",".join(tags),
                    row["title"],
                    row["url"],
                ]
            )
        return buffer.getvalue()
    lines = []
    for row in rows:
        tags = "?" if row["tags"] is None else ",".join(row["tags"]) or "-"
        lines.append(
            printable(f"{row['item_id']}  {row['status']:8}  {tags}  {row['title']}  {row['url']}")
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
    from rulebot.config import errors_in, load_config_text, validate_text

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
