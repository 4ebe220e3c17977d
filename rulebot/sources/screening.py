"""What a plan's actions would do and whether they still should: shared by
every applier.

``screen`` decides, before anything is sent, which of a plan's actions a
server applier sends and which it skips (stale, or done already);
``touchable`` names the only items a plan's actions can read or change;
``apply_one`` carries one action out on an in-memory library (the local
library's apply, and the simulation ``screen`` asks its questions of).
"""

from __future__ import annotations

import contextlib
from collections.abc import Container, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from rulebot.library.item import Item
from rulebot.library.tagcase import Fold
from rulebot.planning.plan import Outcome, Plan, PlannedAction
from rulebot.planning.planner import Urls, url_keys
from rulebot.planning.states import item_state, restored
from rulebot.rules.actions import from_send
from rulebot.rules.capabilities import plan_fold
from rulebot.rules.vocab import VocabError

if TYPE_CHECKING:
    from rulebot.library.store import Store


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


class Lookups(Protocol):
    """Where ``touchable_ids`` finds the items with a tag or a URL: the store,
    or a library a screening simulates over it (``screen_stream``)."""

    def ids_tagged(self, tag: str) -> list[str]: ...

    def ids_with_url(self, url: str) -> list[str]: ...


def touchable_ids(
    store: Lookups, actions: Iterable[PlannedAction], also: Iterable[str] = ()
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
            apply_one(planned, library, urls, fold)
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


def new_item_id(url: str, taken: Container[str]) -> str:
    """The id an imported URL would get (so export/import agree), made unique."""
    from rulebot.library.export_reader import item_id_for_url

    attempt = 0
    while (item_id := item_id_for_url(url, attempt)) in taken:
        attempt += 1
    return item_id


def apply_one(
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
