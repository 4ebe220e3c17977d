"""What every condition word shares: the ``Check`` a test returns, the
``Condition`` base class, ``Env`` (a ``where`` tree compiled into one Python
predicate) and ``REGISTRY`` with its ``@condition`` decorator.

A family module (``tags``, ``times``…) defines its words on ``Condition``
and registers each with ``@condition``; ``rulebot.rules.conditions`` imports
every family, so the registry is complete once the package is imported.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, NamedTuple, Protocol

from rulebot.library.item import Item
from rulebot.rules.vocab import CompileContext

Truth = bool | None  # None: unknown


class Check(NamedTuple):  # a first run builds one per condition per action: kept light
    key: str
    matched: Truth
    reason: str  # reads as "why it matched" (or, for explain, what was seen)
    children: tuple[Check, ...] = ()


class Condition:
    """Base of every condition word."""

    key: ClassVar[str]
    description: ClassVar[str]
    schema: ClassVar[dict[str, Any]]
    # rough price of ``matches``: within a block cheap tests run first, so most
    # items are ruled out by a set lookup before a regex or a URL parse runs
    cost: ClassVar[int] = 2
    # the Item fields it reads: a source that provides none of them makes it never match
    fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, value: Any, ctx: CompileContext) -> None:
        self.value = value

    def test(self, item: Item, now: int) -> Check:
        """The verdict with how it reads (for reasons and ``explain``)."""
        raise NotImplementedError

    def matches(self, item: Item, now: int) -> Truth:
        """The verdict alone: the planner's hot path, no strings built."""
        return self.test(item, now).matched

    def because(self, item: Item, now: int) -> Sequence[str]:
        """The reasons of an item that definitely matches: ``reasons`` of
        ``test``, which words whose reason is fixed give without a ``Check``
        (the planner asks once per item it acts on). A property test holds
        each to ``reasons(test(...))``."""
        return (self.test(item, now).reason,)

    @property
    def fixed(self) -> tuple[str, ...] | None:
        """``because`` when it is the same for every matching item, else None."""
        return None

    def truth(self, env: Env) -> tuple[str, str]:
        """Python expressions over ``i`` (the item) and ``now`` that say
        "definitely true" and "definitely false" (see ``Env``). By default they
        call ``matches``; cheap words override this to be inlined."""
        call = env.const(self.matches)
        return f"({call}(i, now) is True)", f"({call}(i, now) is False)"


class Env:
    """Builds one plain Python predicate from a ``where`` tree.

    Evaluating a tree of objects costs a method call per node per item, and
    the planner evaluates every rule on every item; a generated expression
    does the same work inline, about twice as fast. Three-valued logic is kept
    exactly: each node yields "definitely true" (T) and "definitely false"
    (F); ``all`` is T1 and T2 / F1 or F2, ``any`` the dual, ``not`` swaps
    them, and unknown is neither. Constants are passed by name, never
    pasted into the source. ``test`` stays the reference; a property test
    checks the two agree.
    """

    def __init__(self) -> None:
        self.names: dict[str, Any] = {}
        self.bound = 0  # local names handed out by ``var``

    def const(self, value: Any) -> str:
        name = f"_c{len(self.names)}"
        self.names[name] = value
        return name

    def var(self) -> str:
        """A fresh local name for an expression to bind once (``:=``) and reuse."""
        self.bound += 1
        return f"_v{self.bound}"

    def selector(self, where: Predicate) -> Selector:
        """``select(items, now)``: the items that definitely match, in order.
        The loop is generated too, so no Python call is made per item."""
        true, _ = where.truth(self)
        return self.select_function(
            f"    return [i for i in items if i is not None and {true}]\n", "<rulebot where>"
        )

    def select_function(self, body: str, filename: str) -> Any:
        """``def select(items, now):`` with ``body``, compiled, its names
        this Env's constants. Raises ``SyntaxError`` (or ``RecursionError``,
        ``MemoryError``) for an expression nested past Python's parser."""
        namespace: dict[str, Any] = {}
        source = f"def select(items, now):\n{body}"
        exec(compile(source, filename, "exec"), dict(self.names), namespace)
        return namespace["select"]


Selector = Callable[[Iterable[Item | None], int], list[Item]]


class Predicate(Protocol):
    """What ``Env.selector`` compiles: a ``Where`` (or any node of one)."""

    def truth(self, env: Env) -> tuple[str, str]: ...


REGISTRY: dict[str, type[Condition]] = {}


def condition(cls: type[Condition]) -> type[Condition]:
    """Registers a condition word under its ``key`` (``where`` compiles from here)."""
    REGISTRY[cls.key] = cls
    return cls


def one_or_list(item_schema: dict[str, Any], description: str) -> dict[str, Any]:
    """The schema of a word that takes one value or a list of them."""
    return {
        "description": description,
        "anyOf": [item_schema, {"type": "array", "items": item_schema, "minItems": 1}],
    }


def as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]
