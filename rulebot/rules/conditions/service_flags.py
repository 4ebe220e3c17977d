"""Flags only some services keep, read from ``Item.extra``: Linkding's own
``unread`` ("read later", apart from the archive) as ``marked_unread``, and
its ``shared``. No other source has them: there they are unknown, so such a
condition never matches (``validate`` warns, naming the source)."""

from __future__ import annotations

from typing import ClassVar

from rulebot.library.item import Item
from rulebot.rules.conditions.base import Check, Condition, Env, Truth, condition


class _ExtraFlag(Condition):
    """``true``/``false`` against a boolean the source keeps in ``Item.extra``."""

    cost = 1
    flag: ClassVar[str]  # the Item.extra key (and the capability field)
    shown: ClassVar[tuple[str, str]]  # how an item reads: (flag set, flag not set)

    def matches(self, item: Item, now: int) -> Truth:
        value = item.extra.get(self.flag)
        return value == bool(self.value) if isinstance(value, bool) else None

    def truth(self, env: Env) -> tuple[str, str]:
        # True, False, or absent (unknown): unknown is neither T nor F
        flag, wanted = env.const(self.flag), bool(self.value)
        return f"(i.extra.get({flag}) is {wanted})", f"(i.extra.get({flag}) is {not wanted})"

    def test(self, item: Item, now: int) -> Check:
        value = item.extra.get(self.flag)
        if not isinstance(value, bool):
            return Check(self.key, None, f"{self.key} unknown")
        return Check(self.key, value == bool(self.value), self.shown[0 if value else 1])

    @property
    def fixed(self) -> tuple[str, ...] | None:
        return (self.shown[0 if self.value else 1],)  # it matched: the flag is as asked


@condition
class MarkedUnread(_ExtraFlag):
    key = "marked_unread"
    flag = "unread"
    fields = frozenset({"unread"})
    shown = ("marked unread", "not marked unread")
    description = (
        "true: Linkding's own unread (read later) flag is set; false: it is not. Apart from "
        "`status` (archived or not). Unknown on every other source."
    )
    schema = {"description": description, "type": "boolean"}


@condition
class Shared(_ExtraFlag):
    key = "shared"
    flag = "shared"
    fields = frozenset({"shared"})
    shown = ("shared", "not shared")
    description = "true: a shared Linkding bookmark; false: one not shared. Unknown elsewhere."
    schema = {"description": description, "type": "boolean"}
