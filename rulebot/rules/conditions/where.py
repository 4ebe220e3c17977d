"""Composition: ``Where`` (the body of ``where``: every key holds), the
``all``/``any``/``not`` blocks, compiling a ``where`` mapping through the
registry, the reasons a check tree reads as, and the ``where`` JSON Schema."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from rulebot.library.item import Item
from rulebot.rules.conditions.base import REGISTRY, Check, Condition, Env, Selector, Truth
from rulebot.rules.vocab import CompileContext, VocabError


def _all(results: list[Truth]) -> Truth:
    if any(r is False for r in results):
        return False
    return None if any(r is None for r in results) else True


def _any(results: list[Truth]) -> Truth:
    if any(r is True for r in results):
        return True
    return None if any(r is None for r in results) else False


def _conjunction(pairs: list[tuple[str, str]]) -> tuple[str, str]:
    """(T, F) of "all of these": T1 and T2 …, F1 or F2 …; empty: true."""
    if not pairs:
        return "True", "False"
    return (
        "(" + " and ".join(t for t, _ in pairs) + ")",
        "(" + " or ".join(f for _, f in pairs) + ")",
    )


class Where:
    """A mapping of conditions that must all hold (the body of ``where``)."""

    cost: int

    def __init__(self, value: Mapping[str, Any], ctx: CompileContext) -> None:
        self.parts: list[Condition | Where | AnyOf | AllOf | Not] = []
        for key, raw in value.items():
            try:
                self.parts.append(compile_part(key, raw, ctx))
            except VocabError as err:
                raise VocabError(err.message, (key, *err.path)) from None
        # the verdict does not depend on order (Kleene AND commutes); reasons do,
        # so ``test`` keeps the written order and ``matches`` the cheap one
        self.fast = sorted(self.parts, key=lambda part: part.cost)
        self.cost = sum(part.cost for part in self.parts)
        self._select: Selector | None = None
        # conditions that look at the whole library (duplicate), anywhere inside
        self.library: list[Any] = [
            found
            for part in self.parts
            for found in (
                [part] if getattr(part, "library_wide", False) else getattr(part, "library", [])
            )
        ]

    def truth(self, env: Env) -> tuple[str, str]:
        return _conjunction([part.truth(env) for part in self.fast])

    def select(self, items: Iterable[Item | None], now: int) -> list[Item]:
        """The items that definitely match (not false, not unknown), in order:
        what the planner asks. ``None`` entries (deleted items) are skipped.
        ``items`` is the whole library as the rule sees it: conditions such as
        ``duplicate`` form their groups over it first."""
        if self.library:
            items = list(items)
            for part in self.library:
                part.prepare(items)
        if self._select is None:
            try:
                self._select = Env().selector(self)
            except (SyntaxError, RecursionError, MemoryError):
                # nested past Python's parser limits (validate refuses such configs, but
                # a Where can be built elsewhere): the reference evaluation gives the same answer
                self._select = self._reference_select
        return self._select(items, now)

    def _reference_select(self, items: Iterable[Item | None], now: int) -> list[Item]:
        return [i for i in items if i is not None and self.matches(i, now) is True]

    def test(self, item: Item, now: int) -> Check:
        checks = [part.test(item, now) for part in self.parts]
        return Check("where", _all([c.matched for c in checks]), "", tuple(checks))

    def because(self, item: Item, now: int) -> Sequence[str]:
        """``reasons(self.test(item, now))`` for an item that definitely
        matches, without building the check tree (see ``Condition.because``)."""
        if not self.parts:
            return ("every item (where: {})",)
        out: list[str] = []
        for part in self.parts:
            out.extend(part.because(item, now))
        return out

    @functools.cached_property
    def fixed(self) -> tuple[str, ...] | None:
        """``because`` when no part's reason depends on the item (most rules:
        tags, status, title, URL), made once."""
        if not self.parts:
            return ("every item (where: {})",)
        fixed: list[str] = []
        for part in self.parts:
            reasons_ = part.fixed
            if reasons_ is None:
                return None
            fixed.extend(reasons_)
        return tuple(fixed)

    def matches(self, item: Item, now: int) -> Truth:
        verdict: Truth = True
        for part in self.fast:
            result = part.matches(item, now)
            if result is False:
                return False  # short-circuit: False wins over unknown
            if result is None:
                verdict = None
        return verdict


class _Group:
    key: ClassVar[str]
    combine: Callable[[list[Truth]], Truth]
    cost = 6

    def __init__(self, value: list[Mapping[str, Any]], ctx: CompileContext) -> None:
        self.members = []
        for index, member in enumerate(value):
            try:
                self.members.append(Where(member, ctx))
            except VocabError as err:
                raise VocabError(err.message, (index, *err.path)) from None
        self.library = [found for member in self.members for found in member.library]

    def test(self, item: Item, now: int) -> Check:
        checks = [m.test(item, now) for m in self.members]
        verdict = self.combine([c.matched for c in checks])
        return Check(self.key, verdict, "", tuple(checks))

    def matches(self, item: Item, now: int) -> Truth:
        return self.combine([m.matches(item, now) for m in self.members])


class AllOf(_Group):
    key = "all"
    combine = staticmethod(_all)

    def because(self, item: Item, now: int) -> list[str]:
        return [reason for member in self.members for reason in member.because(item, now)]

    @property
    def fixed(self) -> tuple[str, ...] | None:
        parts = [member.fixed for member in self.members]
        return None if None in parts else tuple(r for part in parts for r in part or ())

    def truth(self, env: Env) -> tuple[str, str]:
        return _conjunction([m.truth(env) for m in self.members])


class AnyOf(_Group):
    key = "any"
    combine = staticmethod(_any)

    def because(self, item: Item, now: int) -> Sequence[str]:
        # the first member that holds, as ``reasons`` reads an ``any``
        for member in self.members:
            if member.matches(item, now) is True:
                return member.because(item, now)
        return ()

    @property
    def fixed(self) -> tuple[str, ...] | None:
        return self.members[0].fixed if len(self.members) == 1 else None

    def truth(self, env: Env) -> tuple[str, str]:
        false, true = _conjunction([(f, t) for t, f in (m.truth(env) for m in self.members)])
        return true, false  # any = not all-of-nots: De Morgan on the (T, F) pairs


class Not:
    key = "not"
    cost = 5

    def __init__(self, value: Mapping[str, Any], ctx: CompileContext) -> None:
        self.inner = Where(value, ctx)
        self.library = self.inner.library

    def test(self, item: Item, now: int) -> Check:
        inner = self.inner.test(item, now)
        verdict = None if inner.matched is None else not inner.matched
        return Check(self.key, verdict, "", (inner,))

    def matches(self, item: Item, now: int) -> Truth:
        inner = self.inner.matches(item, now)
        return None if inner is None else not inner

    def because(self, item: Item, now: int) -> list[str]:
        return reasons(self.test(item, now))

    @property
    def fixed(self) -> tuple[str, ...] | None:
        return None

    def truth(self, env: Env) -> tuple[str, str]:
        true, false = self.inner.truth(env)
        return false, true


COMBINATORS: dict[str, Any] = {"all": AllOf, "any": AnyOf, "not": Not}


def compile_part(key: str, value: Any, ctx: CompileContext) -> Any:
    if key in COMBINATORS:
        return COMBINATORS[key](value, ctx)
    if key not in REGISTRY:
        raise VocabError(f"unknown condition {key!r}")
    return REGISTRY[key](value, ctx)


def compile_where(value: Mapping[str, Any], ctx: CompileContext | None = None) -> Where:
    return Where(value, ctx or CompileContext())


def reasons(check: Check) -> list[str]:
    """Flatten a matched check tree into reason strings, in order written."""
    out: list[str] = []
    if check.key == "where" and not check.children:  # `where: {}`, the explicit "every item"
        return ["every item (where: {})"]
    if check.key in ("where", "all"):
        for child in check.children:
            out.extend(reasons(child))
    elif check.key == "any":
        for child in check.children:
            if child.matched:
                out.extend(reasons(child))
                break
    elif check.key == "not":
        inner = [r for r in reasons_all(check.children[0])]
        out.append("not (" + "; ".join(inner) + ")")
    else:
        out.append(check.reason)
    return out


def reasons_all(check: Check) -> list[str]:
    if not check.children:
        return [check.reason]
    return [r for child in check.children for r in reasons_all(child)]


def where_schema() -> dict[str, Any]:
    """The JSON-Schema `$defs/where`: one property per condition word."""
    properties: dict[str, Any] = {key: cls.schema for key, cls in REGISTRY.items()}
    # Only a rule's own `where` may be `{}` (every item); a nested block needs a condition.
    block = {"$ref": "#/$defs/where", "minProperties": 1}
    properties["all"] = {
        "description": "Every one of these condition blocks holds.",
        "type": "array",
        "minItems": 1,
        "items": block,
    }
    properties["any"] = {
        "description": "At least one of these condition blocks holds.",
        "type": "array",
        "minItems": 1,
        "items": block,
    }
    properties["not"] = {"description": "This condition block does not hold.", **block}
    return {
        "description": "Conditions; every key must hold (an implicit `all`). `{}`: every item.",
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
    }
