"""Taking a run back (``rulebot undo``): the reversal of a run as a plan.

Every applier journals, next to each planned action, the state of the item(s)
it touches just before it (``before_states``). ``plan_undo`` turns the
actions a run *confirmed* into their reversal (design.md, "Lifecycle"): a
normal ``Plan`` under the rule name ``undo-RUN``, shown and applied like any
other. An action whose effect the library no longer shows (the item changed
since) is left out and reported as stale.
"""

from __future__ import annotations

from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from rulebot.errors import RulebotError
from rulebot.library.item import ARCHIVED, UNREAD, Item
from rulebot.library.tagcase import folded_tags
from rulebot.planning.plan import Plan, PlannedAction, iso
from rulebot.planning.planner import item_ref, url_keys
from rulebot.planning.states import RESTORABLE, _restore_json, restored, state_item
from rulebot.rules.actions import FLAG_ACTIONS, Action, compile_action, from_send
from rulebot.rules.vocab import CompileContext, VocabError
from rulebot.run.reports import source_text
from rulebot.safe import printable

if TYPE_CHECKING:
    from rulebot.library.journal import JournalEntry, JournalRun
    from rulebot.library.store import Store

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
            f"run {run.run_id} changed {source_text(run.source)}, but this config uses "
            f"{source_text(source)}; undo it with the config of that library"
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
        # on a server, an item this undo saves again (a new id): its old id ->
        # the add's place in ``planned``, which the run's earlier actions on it
        # reverse into (their own reversal would find no item)
        self.readded: dict[str, tuple[int, int, str]] = {}  # + its note's place, its words

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
            if before.get("item") is not None and name not in ("add", "delete"):
                earlier = state_item(before["item"])
                if earlier.item_id in self.readded:
                    self._into_readd(earlier)
                    return
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
        elif name in FLAG_ACTIONS:  # a service's own flag (Linkding's unread, shared)
            flag, value = FLAG_ACTIONS[name]
            if current.extra.get(flag) is not value:
                self.stale.append(f"{self._what(entry)}: the item's {flag} flag changed since")
                return
            # it was planned because the flag was not `value`: the other word puts it back
            word = next(w for w, f in FLAG_ACTIONS.items() if f == (flag, not value))
            self._plan(compile_action(word, self.ctx), current, why)
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
        what = f"{self._what(entry)}: saved again as a new item"
        self.planned.append(PlannedAction(self.rule, send, None, ()))
        self.inexact.append(what)
        self.readded[before.item_id] = (len(self.planned) - 1, len(self.inexact) - 1, what)
        self._say_readd(before)

    def _say_readd(self, was: Item) -> None:
        """What the item saved again does not get back, said on the add and in
        the undo's report: from ``was``, the item before the run's first action
        on it (so far, walking last first)."""
        index, note, what = self.readded[was.item_id]
        lost = [
            "it gets a new id",
            f"its added time becomes the undo's (was {iso(was.time_added or 0)})",
        ]
        if was.status == ARCHIVED:
            lost.append("it comes back unread (was archived)")
        if was.favorite:
            lost.append("it comes back not a favourite (was one)")
        for flag, value in sorted(set(FLAG_ACTIONS.values())):
            if value and was.extra.get(flag) is True:
                lost.append(f"it comes back without its {flag} flag (was set)")
        detail = "; ".join(lost)
        why = f"undo run {self.run_id}: delete (saved again as a new item: {detail})"
        self.planned[index] = replace(self.planned[index], reasons=(why,))
        self.inexact[note] = f"{what}: {detail}"

    def _into_readd(self, earlier: Item) -> None:
        """An earlier action of the run on an item this undo saves again: the
        add brings the item back as it was before that action (its tags and
        title; the rest is said by the add's own note), walked last first so
        the add ends with the state from before the run's first action."""
        index = self.readded[earlier.item_id][0]
        planned = self.planned[index]
        send = {key: value for key, value in planned.send.items() if key not in ("tags", "title")}
        if earlier.given_title:
            send["title"] = earlier.given_title
        if earlier.tags:
            send["tags"] = ",".join(earlier.tags)
        self.planned[index] = replace(planned, send=send)
        self._say_readd(earlier)

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
