"""Send a plan to a Pocket server in batches; the only code that writes to it.

Each batch is journaled as ``sent`` before the request and as
``confirmed``/``failed`` after, together with the mirror update, in one
transaction. Results map back to actions by index. A whole-batch 400 (one
malformed action refuses the lot before any runs) is narrowed down by
splitting the batch until the culprit stands alone; the rest is applied.

Crash safety: a killed run leaves ``sent`` rows without an outcome. Nothing
is resent from the journal; the next run syncs first and plans again, so
actions that did land are now no-ops and only the rest is sent. For that to
finish the work, one rule's actions on one item always travel in the same
request (see ``_batches``), and bisecting a refused batch stops at those
groups. Ctrl-C closes the journal's run as ``interrupted`` and says how many
actions landed (``SendInterrupted``). A batch that gets no answer at all
(the server died: ``ServerUnreachable``, after the retries that can help)
stops the run: that batch may or may not have landed, so the sync cursor is
moved back before it as after a crash; later batches are journaled as not
sent, and one message says what is left for the next run.

Tags: Pocket's later server trimmed, lowercased and cut tags to 25
characters, the old one kept them as sent. An item a confirmed action gave
a tag longer than that gets *unknown* tags in the mirror (not a guess), so
no rule acts on them until the next sync (which every run starts with)
brings what the server really kept.
"""

from __future__ import annotations

import itertools
import logging
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from rulebot.errors import ItemDataError, ServerUnreachable, stopped_run
from rulebot.http import clip, describe
from rulebot.library.item import Item
from rulebot.planning.plan import STATES, Outcomes, Plan, PlannedAction, Result
from rulebot.planning.states import item_state
from rulebot.rules.actions import from_send
from rulebot.rules.capabilities import POCKET
from rulebot.sources.applier import CACHE
from rulebot.sources.base import UNANSWERED
from rulebot.sources.pocket.api import BadRequestError, PocketClient
from rulebot.sources.pocket.sync import CURSOR_KEY, bounded_int, entry_problem
from rulebot.sources.screen_stream import screened_rows
from rulebot.sources.screening import touchable
from rulebot.sources.units import plan_units

if TYPE_CHECKING:
    from rulebot.library.journal import JournalAction
    from rulebot.library.store import Store
    from rulebot.rules.config import Config

logger = logging.getLogger("rulebot.sender")

Batch = list[tuple[int, PlannedAction]]
STOPPED = "not sent: rulebot was asked to stop; the next run plans it again"
TAG_KEPT = 25  # characters of a tag the later Pocket server kept


class SendInterrupted(KeyboardInterrupt):
    """Ctrl-C during a send: the journal's run is closed as ``interrupted``."""

    def __init__(self, landed: int, total: int) -> None:
        super().__init__(f"{landed} of {total} actions landed")
        self.landed, self.total = landed, total

    def message(self) -> str:
        return (
            f"interrupted: {self.landed} of {self.total} action{'' if self.total == 1 else 's'} "
            "landed; the next run finishes the rest"
        )


def rewind_after_crash(store: Store, pending: Sequence[JournalAction]) -> None:
    """After a crash, move the sync cursor back before the earliest of the
    actions a run sent without hearing back (``pending``).

    The server stamps a changed item's ``time_updated`` with the action's
    ``time`` (the plan's clock), which can be older than the sync cursor
    taken just before sending: an incremental sync would then never show
    that those actions landed, and the next run would send them again."""
    rewind_cursor(store, [bounded_int(p.send.get("time")) or p.run_started_at for p in pending])


def rewind_cursor(store: Store, stamps: list[int]) -> None:
    """Move the sync cursor back before the earliest of ``stamps``, the times
    of actions whose outcome is unknown, so the next sync shows whether they
    landed (see ``rewind_after_crash``)."""
    cursor = bounded_int(store.get_meta(CURSOR_KEY))
    earliest = min((stamp for stamp in stamps if stamp), default=None)
    if cursor is not None and earliest is not None and earliest <= cursor:
        store.set_meta(CURSOR_KEY, str(max(earliest - 1, 0)))


def apply_remote(
    config: Config,
    store: Store,
    plan: Plan,
    client: PocketClient,
    *,
    check_stale: bool,
    requests_before: int = 0,
    stop: Callable[[], bool] | None = None,
    progress: bool = False,
    cache: int = CACHE,
) -> Result:
    """Send ``plan``; ``stop`` is asked between batches (the daemon's SIGTERM):
    when it says so, no further batch is sent, and the unsent actions are
    reported as skipped, to be planned again by the next run. ``progress``
    (or ``client.show_progress``) shows "sent batch k/n" on a terminal.
    Ctrl-C raises ``SendInterrupted`` after closing the journal's run.

    Nothing is held whole (#28), as in every other server source's apply
    (``sources.applier``): the screening and its journal rows go a block of
    actions at a time (``screen_stream``, holding at most ``cache`` items),
    the batches are made as the plan is read, and the outcomes are a byte
    each."""
    assert config.pocket is not None
    batch_size = config.pocket.batch_size
    outcomes = Outcomes(plan.actions, by_index=True)
    queued = bytearray(len(plan.actions))  # 1: the screening sends it
    rows = screened_rows(store, plan, outcomes, queued, check_stale=check_stale, cache=cache)
    with store.transaction() as conn:
        run_id = store.journal_record("apply-pocket", rows, conn, source=plan.source)
    show = (progress or client.show_progress) and sys.stderr.isatty()
    batches = _batches(plan_units(plan, queued), batch_size)
    # "k/n" on a terminal: the batches counted first (the plan is read twice)
    total = sum(1 for _ in _batches(plan_units(plan, queued), batch_size)) if show else 0
    try:
        _send_batches(store, client, run_id, batches, outcomes, stop, show, total)
    except KeyboardInterrupt:
        store.journal_finish(run_id, "interrupted")
        raise SendInterrupted(outcomes.count("succeeded"), len(plan.actions)) from None
    except ServerUnreachable as lost:
        store.journal_finish(run_id, "failed")
        states = [STATES[code] if code != Outcomes.UNSET else "" for code in outcomes.states]
        unsent = sum(1 for o in outcomes.of("skipped") if o.error == UNANSWERED)
        raise stopped_run(lost, 1, states, unsent) from None
    finally:
        if show and total:
            print(file=sys.stderr, flush=True)
    _forgive_superseded(store, run_id, outcomes)
    status = "partial" if outcomes.count("failed") else "ok"
    store.journal_finish(run_id, status)
    return Result(
        outcomes=outcomes,
        started_at=plan.created_at,
        requests=client.requests_made - requests_before,
        source=plan.source,
    )


def _send_batches(
    store: Store,
    client: PocketClient,
    run_id: int,
    batches: Iterator[Batch],
    outcomes: Outcomes,
    stop: Callable[[], bool] | None,
    show: bool,
    total: int,
) -> None:
    """Send the batches in turn (``total`` of them: shown on a terminal)."""
    planned_total = outcomes.states.count(Outcomes.UNSET)
    done = 0
    for number, batch in enumerate(batches, 1):
        if stop is not None and stop():
            unsent = _skip(store, run_id, itertools.chain([batch], batches), outcomes, STOPPED)
            logger.warning(
                "stopping: %d action%s not sent; the next run plans them",
                unsent,
                "" if unsent == 1 else "s",
            )
            return
        store.journal_mark(run_id, [i for i, _ in batch], "sent")
        try:
            answered = _send(client, batch)
        except ServerUnreachable as lost:
            # no answer, even after retries: the server is gone, and this batch
            # may have landed before it went (an answer lost after the work)
            with store.transaction() as conn:
                for index, _ in batch:
                    outcomes.put(index, "failed", str(lost))
                store.journal_mark(run_id, [i for i, _ in batch], "failed", str(lost), conn)
                _skip(store, run_id, batches, outcomes, UNANSWERED, conn)
            rewind_cursor(store, [bounded_int(p.send.get("time")) or 0 for _, p in batch])
            raise
        with store.transaction() as conn:
            for (index, planned), (ok, detail) in zip(batch, answered, strict=True):
                if isinstance(detail, Moot):  # the item is gone: done, and out of the mirror
                    outcomes.put(index, "succeeded")
                    store.journal_mark(run_id, [index], "confirmed", f"moot: {detail}", conn)
                    store.delete([str(planned.item_id)], conn)
                elif ok:
                    outcomes.put(index, "succeeded")
                    added = _mirror(store, planned, detail, conn)
                    store.journal_mark(run_id, [index], "confirmed", None, conn)
                    if added is not None:  # what undoing this add deletes: that item only
                        store.journal_note(run_id, index, "created", item_state(added), conn)
                else:
                    outcomes.put(index, "failed", str(detail))
                    store.journal_mark(run_id, [index], "failed", str(detail), conn)
        done += len(batch)
        if show:  # TTY only, like sync's progress
            print(
                f"\rrulebot: sent batch {number}/{total} ({done}/{planned_total} actions)",
                end="",
                file=sys.stderr,
                flush=True,
            )


def _skip(
    store: Store,
    run_id: int,
    batches: Iterable[Batch],
    outcomes: Outcomes,
    why: str,
    conn: Any = None,
) -> int:
    """Journal every action of ``batches`` as skipped (``why``); how many."""
    count = 0
    for batch in batches:
        for index, _ in batch:
            outcomes.put(index, "skipped", why)
        store.journal_mark(run_id, [i for i, _ in batch], "skipped", why, conn)
        count += len(batch)
    return count


def _forgive_superseded(store: Store, run_id: int, outcomes: Outcomes) -> None:
    """An action that failed on an item this run then deleted did not matter.

    The case is real: when an answer is lost (a dropped connection after the
    server ran the batch, a timeout), the client sends the batch again, and
    Pocket answers 422 for ``archive X`` because the first attempt's
    ``delete X`` already ran. Reporting that as a failure would fail an
    unattended run that did exactly what it planned.
    """
    if not outcomes.count("failed"):
        return
    deleted_at = {
        outcome.action.item_id: outcome.index
        for outcome in outcomes.of("succeeded")
        if outcome.action.name == "delete"
    }
    for outcome in list(outcomes.of("failed")):
        if deleted_at.get(outcome.action.item_id, -1) > outcome.index:
            outcomes.put(outcome.index, "succeeded")
            store.journal_mark(run_id, [outcome.index], "confirmed", f"moot: {outcome.error}")


def _batches(units: Iterable[Batch], size: int) -> Iterator[Batch]:
    """Batches of at most ``size``, never splitting one rule's actions on one
    item (a unit: ``sources.units``), made as the units come.

    A request is what a crash leaves all-or-nothing. After a crash the next
    run plans again, and a rule's first action can end its own match
    (``archive`` then ``tags_add`` under ``status: unread``): were the two
    split across requests, the second would never be sent. So a group
    larger than a whole batch goes alone, as one request of its own.
    """
    current: Batch = []
    for group in units:
        if current and len(current) + len(group) > size:
            yield current
            current = []
        current.extend(group)
        if len(current) >= size:
            yield current
            current = []
    if current:
        yield current


def _send(client: PocketClient, batch: Batch) -> list[tuple[bool, Any]]:
    """(ok, item-object-or-error) per action; splits a batch the server refused."""
    try:
        answer = client.send([planned.send for _, planned in batch])
    except BadRequestError as refused:
        middle = _split_point(batch)
        if middle is None:  # one rule's actions on one item: refused together, none ran
            reason = refused.error_text or f"refused as malformed (400, {refused.error_code})"
            what = "this action" if len(batch) == 1 else f"these {len(batch)} actions on one item"
            return [(False, f"the server refused {what}: {reason}")] * len(batch)
        logger.info("whole batch of %d refused (400); splitting to find the cause", len(batch))
        return _send(client, batch[:middle]) + _send(client, batch[middle:])
    results: list[tuple[bool, Any]] = []
    for (_, planned), result, error in zip(
        batch, answer.action_results, answer.action_errors, strict=True
    ):
        if result is False and planned.item_id is not None and _item_gone(error):
            results.append((True, Moot(_error_text(error))))
        elif result is False:
            results.append((False, _error_text(error)))
        elif result is True or result in (1, "1") or isinstance(result, dict):
            results.append((True, result))
        else:
            # Not a result Pocket sends (null, a string…): counting it as done
            # would put a change the server may not have made into the mirror,
            # where no later sync corrects it.
            # Never shown as is: a hostile server may echo a secret in it.
            results.append((False, f"the server answered {describe(result)}, not a result"))
    return results


def _split_point(batch: Batch) -> int | None:
    """Where to halve a refused batch: the group boundary nearest the middle,
    so one rule's actions on one item stay together (see ``_batches``);
    None when the batch is one group (or one action): it is never split."""
    middle = len(batch) // 2
    keys = [(planned.rule, planned.item_id) for _, planned in batch]
    bounds = [i for i in range(1, len(batch)) if keys[i] != keys[i - 1] or keys[i][1] is None]
    return min(bounds, key=lambda i: abs(i - middle)) if bounds else None


class Moot(str):
    """The answer to an action on an item the server no longer has: done (the
    item is gone, as a 404 is on every other source), not a failure."""


def _item_gone(error: Any) -> bool:
    """Pocket's per-action answer for an item it does not have (deleted by
    another client since the sync): 422 "Invalid/non-existent item"."""
    message = error.get("message") if isinstance(error, dict) else error
    return isinstance(message, str) and "non-existent item" in message.lower()


def _error_text(error: Any) -> str:
    """An ``action_errors`` entry (already scrubbed of secrets by the client)
    as one short line, whatever its shape."""
    if isinstance(error, dict):
        code = error.get("code")
        message = error.get("message") or error.get("type") or "failed"
        text = message if isinstance(message, str) else _flatten(message)
        if code not in (None, ""):
            shown = code if isinstance(code, (str, int)) else _flatten(code)
            text = f"{text} ({clip(str(shown), 20)})"
        return clip(text)
    if isinstance(error, str) and error.strip():
        return clip(error)
    if isinstance(error, list) and error:
        return clip(_flatten(error))
    return "the server reported a failure without details"


def _flatten(value: Any) -> str:
    """Strings and numbers inside lists and objects, joined: a readable
    reason from an oddly shaped error, never a Python repr."""
    if isinstance(value, dict):
        return "; ".join(filter(None, (_flatten(v) for v in value.values())))
    if isinstance(value, (list, tuple)):
        return "; ".join(filter(None, (_flatten(v) for v in value)))
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    return ""


def _mirror(store: Store, planned: PlannedAction, detail: Any, conn: Any) -> Item | None:
    """Bring the store in line with a confirmed action (the next sync confirms);
    the item an ``add`` created, when the server's answer shows it."""
    send = planned.send
    when = int(send.get("time") or 0)
    action = from_send(send, POCKET.fold)  # how the Pocket server compares tags
    if planned.name == "add":
        if isinstance(detail, dict) and entry_problem(None, detail) is None:
            try:
                added = Item.from_pocket(detail, tags_known="tags" in detail)
            except ItemDataError:  # the next sync brings it anyway
                logger.debug("add: the server's item object was not usable")
                return None
            if added.tags is None:  # the add shape has no tags: the server added ours
                added = added.replace(
                    tags=tuple(t for t in str(send.get("tags", "")).split(",") if t)
                )
            added = _tags_as_kept(added)
            store.upsert([added], conn)
            return added
        return None
    if action.account_wide:
        library = touchable(store, [planned])
        effect = action.on_library(library, set(), when)
        if effect is not None:
            store.upsert([_tags_as_kept(item) for item in effect.changed], conn)
        return None
    item_id = str(send["item_id"])
    current = store.get(item_id)
    if current is None:
        return None
    effect = action.on_item(current, when)
    if effect is None:
        return None
    changed = effect.changed[0]
    if changed.is_deleted:
        store.delete([item_id], conn)
    else:
        store.upsert([_tags_as_kept(changed)], conn)
    return None


def _tags_as_kept(item: Item) -> Item:
    """Tags longer than a Pocket server may keep: unknown until the next sync."""
    if item.tags and any(len(tag) > TAG_KEPT for tag in item.tags):
        return item.replace(tags=None)
    return item
