"""The state of an item journaled with each action, and putting it back.

Every applier journals, next to each planned action, the state of the
item(s) it touches just before it (``before_states``); ``undo`` reads them
back (``state_item``) and restores what no action can set (``restored``).
"""

from __future__ import annotations

from collections.abc import Container, Mapping
from typing import Any

from rulebot.library.item import NO_EXTRA, Item
from rulebot.planning.plan import Plan
from rulebot.planning.planner import url_keys
from rulebot.rules.actions import from_send
from rulebot.rules.capabilities import plan_fold
from rulebot.rules.vocab import VocabError

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
