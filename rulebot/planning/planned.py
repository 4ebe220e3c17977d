"""A planned action and its line in a plan file: the model the plan, its
spool on disk and every renderer share.

``PlannedAction`` is one ``/v3/send`` action with the rule and reasons
behind it; ``PlanLines`` encodes actions as the plan file's compact JSON
lines (``decode_line`` reads one back, ``line_keys`` only its keys), and
``Tally`` is what a plan's summary counts.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple

from rulebot.jsonenc import encoder
from rulebot.safe import printable

DESTRUCTIVE = frozenset({"delete", "tag_delete"})  # the actions limits.max_deletes counts

# plan lines: compact, and readable beyond ASCII
compact = encoder(ensure_ascii=False)


class PlanLines:
    """Plan actions as compact JSON lines, as ``PlannedAction.to_json`` encodes.

    A first run plans 100k+ actions that share their rule, their reasons
    (interned per rule) and, for one rule's actions on one item, the item's
    reference: each is encoded once. Only the last reference is kept (held,
    so no later dict can take its ``id``: a spooled plan's refs die as it
    goes) and at most 4096 reasons, so memory stays flat."""

    def __init__(self) -> None:
        self.rules: dict[str, str] = {}
        self.reasons: dict[tuple[str, ...], str] = {}
        self.ref: tuple[object, str] = (None, "")

    def line(self, action: PlannedAction) -> str:
        rule = self.rules.get(action.rule)
        if rule is None:
            rule = self.rules[action.rule] = f'{{"rule": {compact(action.rule)}, "send": '
        reasons = self.reasons.get(action.reasons)
        if reasons is None:
            if len(self.reasons) >= 4096:  # reasons that name a number can be all different
                self.reasons.clear()
            encoded = compact(list(action.reasons))
            reasons = self.reasons[action.reasons] = f'"reasons": {encoded}}}'
        if action.restore is not None:  # an undo on the local library: rare, written out
            reasons = f'{reasons[:-1]}, "restore": {compact(action.restore)}}}'
        if action.item is None:
            return f"{rule}{compact(action.send)}, {reasons}"
        seen, item = self.ref
        if seen is not action.item:
            item = f'"item": {compact(action.item)}, '
            self.ref = (action.item, item)
        return f"{rule}{compact(action.send)}, {item}{reasons}"


class Tally(NamedTuple):
    """What a plan's summary counts: actions by name and by rule, the items
    they touch, and the destructive ones."""

    names: Counter[str]
    rules: Counter[str]
    items: int
    deletes: int

    @classmethod
    def of(cls, actions: Iterable[PlannedAction]) -> Tally:
        # one pass with the sends read directly: a first run's plan has 100k+ actions
        names: Counter[str] = Counter()
        rules: Counter[str] = Counter()
        items = set()
        for action in actions:
            send = action.send
            names[send["action"]] += 1
            rules[action.rule] += 1
            item_id = send.get("item_id")
            if item_id:
                items.add(item_id)
        return cls(names, rules, len(items), sum(names[name] for name in DESTRUCTIVE))


# C: a JSON string's text and its end, from just after its opening quote
_scan: Callable[[str, int], tuple[str, int]] = json.decoder.scanstring  # type: ignore[attr-defined]


def line_keys(line: str) -> tuple[str, str, str | None] | None:
    """(rule, action, item id) read off a plan line as ``PlanLines.line``
    writes it, without decoding the rest (a listing of a plan on disk reads
    every line for these); None where the line does not read so plainly,
    and ``decode_line`` must say. Inside JSON strings a quote is escaped, so
    ``"item_id": `` can only be a key."""
    if not line.startswith('{"rule": "'):
        return None
    rule, end = _scan(line, 10)
    if not line.startswith(', "send": {"action": "', end):
        return None
    name, end = _scan(line, end + 22)
    if line.startswith(', "item_id": "', end):
        return rule, name, _scan(line, end + 14)[0]
    if '"item_id": ' in line:  # further on in the send, or only in the item
        return None
    return rule, name, None


def decode_line(line: str) -> PlannedAction:
    """A plan line (``PlanLines.line``) as an action again."""
    raw = json.loads(line)
    return PlannedAction(
        raw["rule"], raw["send"], raw.get("item"), tuple(raw["reasons"]), raw.get("restore")
    )


@dataclass(frozen=True, slots=True)
class PlannedAction:
    rule: str
    send: dict[str, Any]
    item: dict[str, Any] | None = None  # item_id, title, url, time_updated as planned
    reasons: tuple[str, ...] = ()
    # an undo on the local library: the item's fields as they were before the
    # undone run, set once the action is done (what no /v3/send action can set:
    # an unknown favourite, a read time, a tag's spelling, a deleted row's data)
    restore: dict[str, Any] | None = None

    @property
    def name(self) -> str:
        return str(self.send["action"])

    @property
    def item_id(self) -> str | None:
        return self.send.get("item_id")

    @property
    def destructive(self) -> bool:
        return self.name in DESTRUCTIVE

    def label(self) -> str:
        """How the action reads in a listing: archive "Some title".

        Titles, URLs and tags came from a library: control characters are
        escaped here, so no renderer can put them on a terminal."""
        return printable(self._label())

    def _label(self) -> str:
        send = self.send
        extra = ""
        if "tags" in send and self.name != "add":
            extra = f" {send['tags']}"
        if self.name == "tag_rename":
            return f"tag_rename {send['old_tag']} → {send['new_tag']}"
        if self.name == "tag_delete":
            return f"tag_delete {send['tag']}"
        if self.name == "add":
            return f"add {send['url']}" + (f" [{send['tags']}]" if send.get("tags") else "")
        title = (self.item or {}).get("title") or send.get("item_id")
        return f'{self.name}{extra}  "{title}"'

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"rule": self.rule, "send": self.send}
        if self.item is not None:
            data["item"] = self.item
        data["reasons"] = list(self.reasons)
        if self.restore is not None:
            data["restore"] = self.restore
        return data
