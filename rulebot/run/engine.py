"""The pipeline in one place: pick rules, plan on the store, apply a plan.

``plan_rules`` is pure (store items in, Plan out). ``apply_local`` is the one
place that changes the local library: one SQLite transaction, journaled.
(The Pocket server path lives in ``sender``.)
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
from collections.abc import Container, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from rulebot.bulk import gc_paused
from rulebot.errors import RulebotError
from rulebot.library.item import Item
from rulebot.library.journal import JournalRow
from rulebot.library.tagcase import Fold
from rulebot.planning.plan import Outcome, Outcomes, Plan, PlannedAction, Result
from rulebot.planning.planner import Urls, Usage, make_plan, url_keys
from rulebot.rules.actions import from_send
from rulebot.rules.capabilities import plan_fold
from rulebot.rules.vocab import VocabError
from rulebot.run.lifecycle import item_state, restored

DESTRUCTIVE = ("delete", "tag_delete")  # what max_deletes counts

if TYPE_CHECKING:
    from rulebot.library.store import Store
    from rulebot.rules.config import Config, Rule


def store_path(config: Config, override: str | None = None) -> Path:
    """--store beats $RULEBOT_STORE beats the config's ``store:``."""
    chosen = override or os.environ.get("RULEBOT_STORE")
    return Path(chosen) if chosen else config.store


def source_of(config: Config) -> dict[str, Any]:
    """``plan.source``: which library a plan is for."""
    from rulebot.sources import source_for

    return source_for(config).describe()


def select_rules(config: Config, names: Sequence[str] = ()) -> list[Rule]:
    """Enabled rules in file order; ``names`` narrows them (unknown is an error)."""
    known = {rule.name: rule for rule in config.rules}
    unknown = [name for name in names if name not in known]
    if unknown:
        raise RulebotError(
            f"no rule named {', '.join(map(repr, unknown))} in {config.path}; "
            f"rules are: {', '.join(known) or '(none)'}"
        )
    disabled = [name for name in names if not known[name].enabled]
    if disabled:
        raise RulebotError(
            f"rule {', '.join(map(repr, disabled))} is disabled (enabled: false) in {config.path}"
        )
    return [r for r in config.rules if r.enabled and (not names or r.name in names)]


def plan_rules(
    config: Config,
    rules: Sequence[Rule],
    items: Sequence[Item],
    now: int,
    usage: Usage | None = None,
    *,
    ordered: bool = False,
) -> Plan:
    """``ordered``: ``items`` come from ``Store.items()``, oldest first."""
    return make_plan(rules, items, now, ordered=ordered, **plan_options(config, usage))


def plan_options(config: Config, usage: Usage | None = None) -> dict[str, Any]:
    """What a plan takes from the config and the period's usage, whichever
    planner makes it (``make_plan`` or ``plan_in_passes``)."""
    return {
        "config_sha256": config.sha256,
        "source": source_of(config),
        "used": usage.items if usage else None,
        "timezone": config.timezone,
        "marks": usage.marks if usage else None,
    }


def period_usage(config: Config, store: Store, rule_names: Iterable[str], now: int) -> Usage:
    """What each scheduled rule already did since its most recent cron time
    (and the grace marks the rules set: ``known_marks``).

    A rule's ``limit`` and the ``max_deletes`` belt hold per schedule period,
    whatever failed, crashed or was re-run in between: a rule whose run
    failed is due again (its last run is not recorded), and without this
    every retry would get a fresh budget. Counted from the journal by the
    plans' own clock (each action's ``time``); actions a crashed run sent
    without hearing back count as done (fail closed)."""
    from rulebot.rules.schedule import previous_fire

    by_name = {rule.name: rule for rule in config.rules}
    items: dict[str, int] = {}
    deletes = 0
    for name in rule_names:
        rule = by_name.get(name)
        if rule is None or not rule.schedule:
            continue
        since = previous_fire(rule.schedule, now, config.timezone)
        done = store.journal_done_since(name, since)
        items[name] = len({item_id for item_id, _ in done if item_id is not None})
        deletes += sum(1 for _, action in done if action in DESTRUCTIVE)
    limits = {r.name: r.limit for r in config.rules if r.limit is not None and r.name in items}
    return Usage(items=items, deletes=deletes, limits=limits, marks=known_marks(config, store))


def known_marks(config: Config, store: Store) -> Mapping[str, Mapping[str, frozenset[str]]]:
    """The grace marks the config's grace rules set (``Store.grace_marks``)."""
    return store.grace_marks(rule.name for rule in config.rules if rule.grace)


def new_item_id(url: str, taken: Container[str]) -> str:
    """The id an imported URL would get (so export/import agree), made unique."""
    from rulebot.library.export_reader import item_id_for_url

    attempt = 0
    while (item_id := item_id_for_url(url, attempt)) in taken:
        attempt += 1
    return item_id


def apply_local(
    store: Store, plan: Plan, *, check_stale: bool = True, cache: int = 100_000
) -> Result:
    """Apply a plan to the local library in one transaction.

    With ``check_stale``, an action whose item changed since the plan was
    made (its ``time_updated`` differs, or it is gone) is skipped and
    reported; everything else is applied. All or nothing: the journal and
    the items are written in the same transaction.

    One pass over the plan (which may be read back from disk) applies each
    action and hands its journal row (the state of what it touched just
    before, for ``undo``, and its final state) to SQLite as it is made.
    Items are read from the store a block of actions at a time and written
    back, inside the transaction, whenever ``cache`` items are held: a
    run's memory is neither its plan nor the library (#17).
    """
    with gc_paused():  # an item copy and a journal row per action: all acyclic
        return _apply_local(store, plan, check_stale=check_stale, cache=cache)


def _apply_local(store: Store, plan: Plan, *, check_stale: bool, cache: int) -> Result:
    # a plan on disk gives its item actions item by item between account-wide
    # ones (``SpooledActions.by_item``): the same library, each item met once
    by_item = getattr(plan.actions, "by_item", None)
    outcomes = Outcomes(plan.actions, by_index=True)
    with store.transaction() as conn:
        work = _Working(store, conn, cache, check_stale, plan_fold(plan.source))

        def rows() -> Iterator[JournalRow]:
            numbered = by_item() if by_item is not None else enumerate(plan.actions)
            size = max(1, min(cache, 1000))  # actions whose items are read together
            while block := list(itertools.islice(numbered, size)):
                work.load(planned for _, planned in block)
                for index, planned in block:
                    yield _apply_planned(index, planned, work, outcomes, check_stale)
                work.trim()

        run_id = store.journal_record("apply-local", rows(), conn, source=plan.source)
        if not outcomes.complete():  # every action once: nothing else may be committed
            raise RuntimeError("a local apply missed actions of its plan")
        work.flush()
        status = "partial" if outcomes.count("failed") else "ok"
        store.journal_finish(run_id, status, conn)
    return Result(outcomes=outcomes, started_at=plan.created_at, source=plan.source)


def _apply_planned(
    index: int, planned: PlannedAction, work: _Working, outcomes: Outcomes, check_stale: bool
) -> JournalRow:
    """One action applied to the working library: its journal row."""
    # an account-wide action (and an add) asks about the library as this apply
    # left it so far, as the planner asked of its simulated library: a plan
    # that deletes an item and then adds its URL adds it
    library = work.items if planned.item is not None else work.around(planned)
    problem = None
    if check_stale:
        if planned.item is None:
            problem = _account_wide_done(planned, library, work.fold)
        else:
            problem = _changed_since(planned, work.original.get(str(planned.item.get("item_id"))))
    if problem:
        outcomes.put(index, "skipped", problem)
        return JournalRow(planned.to_json(), None, "skipped", problem, index)
    try:
        was = _apply_one(planned, library, Urls(library), work.fold, work.dirty, work)
    except (KeyError, ValueError, TypeError, VocabError, NotImplementedError) as err:
        error = f"cannot apply: {err}"
        outcomes.put(index, "failed", error)
        return JournalRow(planned.to_json(), None, "failed", error, index)
    if library is not work.items:
        work.items.update(library)
    outcomes.put(index, "succeeded")
    return JournalRow(planned.to_json(), was, "confirmed", None, index)


class _Working:
    """The library as a local apply has left it so far, held in part: items
    are read from the store when a block of actions names them, and written
    back (inside the apply's transaction) when more than ``limit`` are held.

    ``original``: each item as the apply found it (``Seen``; None: not in
    the library), for the stale check; ``gone``: ids this apply
    deleted, which a new item must not take (as the whole library would
    keep them). As ``Container``: whether an id is in use."""

    def __init__(
        self, store: Store, conn: sqlite3.Connection, limit: int, stale: bool, fold: Fold
    ) -> None:
        self.store, self.conn, self.limit, self.stale = store, conn, limit, stale
        self.fold = fold  # how the library compares tags, as the plan did
        self.items: dict[str, Item] = {}
        self.dirty: set[str] = set()
        self.original: dict[str, Seen | None] = {}
        self.gone: set[str] = set()

    def load(self, actions: Iterable[PlannedAction]) -> None:
        """Read the items these item actions name that are not held yet."""
        wanted = {
            str(item_id)
            for action in actions
            if action.item is not None and (item_id := action.send.get("item_id")) is not None
        }
        self._read(wanted)

    def _read(self, ids: Iterable[str]) -> None:
        ids = [item_id for item_id in ids if item_id not in self.items]
        if not ids:
            return
        found = self.store.get_many(ids)
        self.items.update(found)
        if self.stale:
            for item_id in ids:
                if item_id not in self.original:
                    item = found.get(item_id)
                    self.original[item_id] = None if item is None else Seen.of(item)

    def around(self, planned: PlannedAction) -> dict[str, Item]:
        """The items an account-wide action can read or change (``touchable``),
        as this apply left them: written back first, so the store's tag and
        URL lookups see this apply's changes."""
        self.flush()
        ids = set(touchable_ids(self.store, [planned]))
        self._read(ids)
        return {item_id: self.items[item_id] for item_id in ids if item_id in self.items}

    def __contains__(self, item_id: object) -> bool:
        if item_id in self.items or item_id in self.gone:
            return True
        stored = self.store.get(str(item_id))
        return stored is not None and not stored.is_deleted

    def flush(self) -> None:
        """Write the changed items back (deleted ones out of the store)."""
        if not self.dirty:
            return
        changed = [self.items[item_id] for item_id in self.dirty if item_id in self.items]
        self.store.upsert([item for item in changed if not item.is_deleted], self.conn)
        deleted = [item.item_id for item in changed if item.is_deleted]
        self.store.delete(deleted, self.conn)
        self.gone.update(deleted)
        self.dirty.clear()

    def trim(self) -> None:
        if len(self.items) > self.limit:
            self.flush()
            self.items.clear()


def touchable(
    store: Store, actions: Iterable[PlannedAction], also: Iterable[str] = ()
) -> dict[str, Item]:
    """The live items ``actions`` can read or change, and those ``also`` names:
    the items its actions name, and for each account-wide action every item
    with a tag it names (renamed, renamed onto, deleted) or its URL (add).
    Nothing else can be touched: an item action changes only its own item,
    an account-wide one only items with its tag (an item action that adds
    the tag has loaded its item already), and a source's ``refine`` asks only
    about those tags. Applying and refining need no more of the library."""
    return store.get_many(touchable_ids(store, actions, also))


def touchable_ids(
    store: Store, actions: Iterable[PlannedAction], also: Iterable[str] = ()
) -> list[str]:
    """The ids of the items ``touchable`` reads (live or not)."""
    ids: list[str] = list(also)
    for planned in actions:
        if planned.item_id is not None:  # an undo's add names its old id too
            ids.append(str(planned.item_id))
        send = planned.send  # item actions have none of these keys
        for key in ("old_tag", "new_tag", "tag"):
            if isinstance(send.get(key), str):
                ids.extend(store.ids_tagged(send[key]))
        if isinstance(send.get("url"), str):
            ids.extend(store.ids_with_url(send["url"]))
    return ids


def screen(
    plan: Plan, before: Mapping[str, Item], *, check_stale: bool
) -> tuple[dict[int, Outcome], list[tuple[int, PlannedAction]]]:
    """Which of a plan's actions a server applier sends (in plan order) and
    which it skips, with why, decided before anything is sent.

    Each question is asked of the library as the plan's earlier actions
    leave it, simulated on ``before`` as the planner simulated it: an add
    is skipped when its URL is saved there (re-posting a saved URL is never
    harmless: Karakeep un-archives it), so a plan that deletes an item and
    adds its URL back sends both; with ``check_stale``, a saved plan's item
    action is skipped when its item changed since the plan was made."""
    library = dict(before)
    urls = Urls(library)
    fold = plan_fold(plan.source)
    skipped: dict[int, Outcome] = {}
    queue: list[tuple[int, PlannedAction]] = []
    for index, planned in enumerate(plan.actions):
        problem = stale_reason(planned, before, fold, library) if check_stale else None
        if problem is None and planned.name == "add" and planned.send.get("url") in urls:
            problem = "already done: an item with this URL is saved"
        if problem:
            skipped[index] = Outcome(index, planned, "skipped", problem)
            continue
        queue.append((index, planned))
        # what it will do, for the questions of the actions after it; an action
        # rulebot cannot simulate is sent as planned, and the server decides
        with contextlib.suppress(KeyError, ValueError, TypeError, VocabError, NotImplementedError):
            _apply_one(planned, library, urls, fold)
    return skipped, queue


def stale_reason(
    planned: PlannedAction,
    before: Mapping[str, Item],
    fold: Fold,
    applied: Mapping[str, Item] | None = None,
) -> str | None:
    """Why a saved plan's action must not be applied now, or None.

    An item action is stale when its item changed since the plan was made
    (``before``: the library as the apply found it). An account-wide action
    is done already when it would change nothing in ``applied``, the library
    as the plan's earlier actions left it (default ``before``): a rename of
    a tag that an earlier action of the same plan adds is not done yet."""
    if planned.item is None:
        return _account_wide_done(planned, before if applied is None else applied, fold)
    current = before.get(str(planned.item.get("item_id")))
    return _changed_since(
        planned, None if current is None or current.is_deleted else Seen.of(current)
    )


class Seen(NamedTuple):
    """What an item action depends on, as an apply finds the item: compared
    with the plan's ``item`` (``planner.item_ref``). ``time_updated`` alone
    is not enough: a service may change an item without it (Karakeep's tag
    rename and delete keep ``modifiedAt``), and a rule's ``where`` reads the
    tags, status and favourite."""

    time_updated: int
    status: int
    favorite: bool | None
    tags: tuple[str, ...] | None

    @classmethod
    def of(cls, item: Item) -> Seen:
        return cls(item.time_updated or 0, item.status, item.favorite, item.tags)


def _changed_since(planned: PlannedAction, seen: Seen | None) -> str | None:
    """Why an item action is stale, given its item as the apply found it
    (None: it was not in the library). A plan file from before the plan
    carried the tags, status and favourite is checked by ``time_updated``."""
    if seen is None:
        return "the item no longer exists"
    ref = planned.item or {}
    if seen.time_updated != ref.get("time_updated", 0):
        return "the item changed since the plan was made"
    changed = [
        what
        for what, differs in (
            ("tags", "tags" in ref and not _same_tags(ref["tags"], seen.tags)),
            ("status", "status" in ref and ref["status"] != seen.status),
            ("favourite", "favorite" in ref and ref["favorite"] != seen.favorite),
        )
        if differs
    ]
    if changed:
        return f"the item's {' and '.join(changed)} changed since the plan was made"
    return None


def _same_tags(planned: Any, now: tuple[str, ...] | None) -> bool:
    """The tags as planned and as found: the same tags, spelled the same, in
    any order (a sync may list them in another)."""
    if planned is None or now is None:
        return planned is None and now is None
    return isinstance(planned, list) and sorted(map(str, planned)) == sorted(now)


def _account_wide_done(
    planned: PlannedAction, before: Mapping[str, Item], fold: Fold
) -> str | None:
    """A saved plan's account-wide action that the library already reflects
    (a re-applied plan, or someone did it by hand) is skipped, not repeated."""
    try:
        action = from_send(planned.send, fold)
        if not action.account_wide:
            return None  # an item action without its item: the applier reports it
        live = (item for item in before.values() if not item.is_deleted)
        urls = {url for item in live for url in url_keys(item)}
        if action.on_library(before, urls, int(planned.send.get("time") or 0)) is not None:
            return None
    except (VocabError, KeyError, TypeError, ValueError, NotImplementedError):
        return None  # not an action rulebot knows: sent as planned, the server decides
    if planned.name == "add":
        return "already done: an item with this URL is saved"
    return "already done: no item needs it any more"


def _apply_one(
    planned: PlannedAction,
    library: dict[str, Item],
    urls: Urls | set[str],
    fold: Fold,
    touched: set[str] | None = None,
    taken: Container[str] | None = None,
) -> dict[str, Any]:
    """Apply one action to ``library``; the state of what it touched just
    before (``{"item": …}``, or account-wide ``{"items": [...]}``): what undo
    restores."""
    touched = set() if touched is None else touched
    send = planned.send
    action = from_send(send, fold)
    when = int(send.get("time") or 0)
    if action.account_wide:
        effect = action.on_library(library, urls, when)
        if effect is None:
            return {"items": []}
        was: dict[str, Any] = {
            "items": [item_state(library[item.item_id]) for item in effect.changed]
        }
        for item in effect.changed:
            library[item.item_id] = item
            touched.add(item.item_id)
        if effect.added_url:
            url = effect.added_url
            tags = tuple(t for t in str(send.get("tags", "")).split(",") if t)
            # undo of a delete brings the same row back: it names the old id
            wanted = str(send.get("item_id") or "")
            in_use = wanted in library and not library[wanted].is_deleted
            item = Item(
                item_id=wanted
                if wanted and not in_use
                else new_item_id(url, library if taken is None else taken),
                given_url=url,
                given_title=str(send.get("title", "")),
                tags=tags,
                time_added=when,
                time_updated=when,
            )
            if planned.restore is not None:  # an undo: the deleted row as it was
                item = restored(item, planned.restore)
            library[item.item_id] = item
            touched.add(item.item_id)
            urls.add(url)
            was["created"] = item_state(item)  # what undoing this add deletes
        return was
    item_id = str(send["item_id"])
    current = library.get(item_id)
    if current is None or current.is_deleted:
        raise ValueError(f"item {item_id} does not exist")
    effect = action.on_item(current, when)
    after = current if effect is None else effect.changed[0]  # None: already so
    if planned.restore is not None:  # an undo: what no action can set, as it was
        after = restored(after, planned.restore)
    if after is not current:
        library[item_id] = after
        touched.add(item_id)
    return {"item": item_state(current, action.name)}
