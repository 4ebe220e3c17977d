"""The condition vocabulary: one small class per word of ``where``.

Each condition carries its JSON-Schema fragment (``schema``), compiles its
YAML value once, and ``test``s an item, returning a ``Check``: whether it
matched and how that reads as a reason ("tag read-later", "added 41d ago
(older than 30d)").

Matching is three-valued: ``True``, ``False`` or ``None`` for "unknown"
(tags never fetched, a time that is "never", no word count). Unknown never
counts as a match, and ``not`` of unknown is still unknown, so missing data
cannot slip through a negation either.
"""

from __future__ import annotations

import fnmatch
import functools
import math
import operator
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar, NamedTuple

from rulebot.library.item import ARCHIVED, UNREAD, Item, host_of
from rulebot.library.tagcase import folded_tags
from rulebot.rules.vocab import (
    DURATION_PATTERN,
    CompileContext,
    VocabError,
    format_age,
    parse_duration,
    parse_instant,
    regex_problem,
    show_text,
    tag_values,
)

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

    def selector(self, where: Where) -> Selector:
        """``select(items, now)``: the items that definitely match, in order.
        The loop is generated too, so no Python call is made per item."""
        true, _ = where.truth(self)
        source = (
            f"def select(items, now):\n    return [i for i in items if i is not None and {true}]\n"
        )
        namespace: dict[str, Any] = {}
        exec(compile(source, "<rulebot where>", "exec"), dict(self.names), namespace)
        return namespace["select"]  # type: ignore[no-any-return]


Selector = Callable[[Iterable[Item | None], int], list[Item]]


REGISTRY: dict[str, type[Condition]] = {}


def condition(cls: type[Condition]) -> type[Condition]:
    REGISTRY[cls.key] = cls
    return cls


def _one_or_list(item_schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "description": description,
        "anyOf": [item_schema, {"type": "array", "items": item_schema, "minItems": 1}],
    }


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, list) else [value]


# -- tags ---------------------------------------------------------------------


def _tags_seen(item: Item) -> str:
    if item.tags is None:
        return "tags unknown"
    return "tags " + (", ".join(item.tags) if item.tags else "(none)")


@condition
class Tag(Condition):
    key = "tag"
    fields = frozenset({"tags"})
    description = "Has this tag (case-insensitive). A list means: has all of them."
    schema = {
        "description": description,
        "type": ["string", "array"],
        "items": {"type": "string", "minLength": 1},
        "minItems": 1,
        "minLength": 1,
    }

    def __init__(self, value: Any, ctx: CompileContext) -> None:
        if isinstance(value, str) and "," in value:
            raise VocabError(
                f"tag {value!r} contains a comma, and no tag can; for items with all of "
                "several tags write a list: tag: [a, b]"
            )
        self.tags = tag_values(value) if isinstance(value, list) else [str(value).strip()]
        self.fold = ctx.fold  # as the source compares tags (rulebot.library.tagcase)
        self.folded = frozenset(map(self.fold, self.tags))
        self.label = ("tag " + ", ".join(self.tags),)

    def matches(self, item: Item, now: int) -> Truth:
        tags = item.tags
        if tags is None:
            return None
        return bool(tags) and self.folded <= item.tag_set(self.fold)

    def truth(self, env: Env) -> tuple[str, str]:
        have = f"{env.const(folded_tags)}(i.tags, {env.const(self.fold)})"
        has = f"({env.const(self.folded)} <= {have})"
        return f"(bool(i.tags) and {has})", f"(i.tags is not None and not (i.tags and {has}))"

    def test(self, item: Item, now: int) -> Check:
        if item.tags is None:
            return Check(self.key, None, f"tag {', '.join(self.tags)}: {_tags_seen(item)}")
        have = item.tag_set(self.fold)
        ok = all(self.fold(t) in have for t in self.tags)
        label = self.label[0]
        return Check(self.key, ok, label if ok else f"{label}: {_tags_seen(item)}")

    def because(self, item: Item, now: int) -> Sequence[str]:
        return self.label

    @property
    def fixed(self) -> tuple[str, ...] | None:
        return self.label


@condition
class Tags(Condition):
    key = "tags"
    fields = frozenset({"tags"})
    description = "Tag set tests: `any` (at least one), `all` (every one), `none` (not one)."
    _list = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}
    schema = {
        "description": description,
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "any": {**_list, "description": "Has at least one of these tags."},
            "all": {**_list, "description": "Has every one of these tags."},
            "none": {**_list, "description": "Has none of these tags."},
        },
    }

    def __init__(self, value: Mapping[str, Any], ctx: CompileContext) -> None:
        self.tests = {}
        for test_name in ("any", "all", "none"):
            if test_name in value:
                try:
                    self.tests[test_name] = tag_values(value[test_name])
                except VocabError as err:
                    raise VocabError(err.message, (test_name, *err.path)) from None
        self.fold = ctx.fold  # as the source compares tags (rulebot.library.tagcase)
        self.folded = [(name, frozenset(map(self.fold, tags))) for name, tags in self.tests.items()]
        self.label = (
            "; ".join(f"tags {name} of {', '.join(tags)}" for name, tags in self.tests.items()),
        )

    def matches(self, item: Item, now: int) -> Truth:
        if item.tags is None:
            return None
        have = item.tag_set(self.fold)
        for name, folded in self.folded:
            if name == "any":
                if folded.isdisjoint(have):
                    return False
            elif name == "all":
                if not folded <= have:
                    return False
            elif not folded.isdisjoint(have):
                return False
        return True

    def truth(self, env: Env) -> tuple[str, str]:
        have = f"{env.const(folded_tags)}(i.tags, {env.const(self.fold)})"
        tests = []
        for name, folded in self.folded:
            wanted = env.const(folded)
            tests.append(
                {
                    "any": f"not {wanted}.isdisjoint({have})",
                    "all": f"{wanted} <= {have}",
                    "none": f"{wanted}.isdisjoint({have})",
                }[name]
            )
        holds = " and ".join(tests)
        return f"(i.tags is not None and {holds})", f"(i.tags is not None and not ({holds}))"

    def test(self, item: Item, now: int) -> Check:
        if item.tags is None:
            return Check(self.key, None, f"tags: {_tags_seen(item)}")
        have = item.tag_set(self.fold)
        ok = True
        for name, tags in self.tests.items():
            hits = [t for t in tags if self.fold(t) in have]
            passed = {"any": bool(hits), "all": len(hits) == len(tags), "none": not hits}[name]
            ok = ok and passed
        reason = self.label[0]
        return Check(self.key, ok, reason if ok else f"{reason}: {_tags_seen(item)}")

    def because(self, item: Item, now: int) -> Sequence[str]:
        return self.label

    @property
    def fixed(self) -> tuple[str, ...] | None:
        return self.label


@condition
class Untagged(Condition):
    cost = 1
    key = "untagged"
    fields = frozenset({"tags"})
    description = "true: has no tags at all; false: has at least one. Unknown tags never match."
    schema = {"description": description, "type": "boolean"}

    def matches(self, item: Item, now: int) -> Truth:
        return None if item.tags is None else only_marks(item.tags) == bool(self.value)

    def truth(self, env: Env) -> tuple[str, str]:
        wanted = bool(self.value)
        only = env.const(only_marks)
        return (
            f"(i.tags is not None and (not i.tags or {only}(i.tags)) is {wanted})",
            f"(i.tags is not None and (not i.tags or {only}(i.tags)) is not {wanted})",
        )

    def test(self, item: Item, now: int) -> Check:
        if item.tags is None:
            return Check(self.key, None, "untagged: tags unknown")
        bare = only_marks(item.tags)
        return Check(self.key, bare == bool(self.value), "untagged" if bare else _tags_seen(item))


# A grace mark (`rulebot:RULE:YYYY-MM-DD`, see planner.py) is rulebot's own
# bookkeeping kept in the library: an item carrying only marks still counts as
# untagged, so marking an item never changes what an `untagged` rule does.
# `tag`/`tags` see marks like any tag (they are only matched when named).
MARK = re.compile(  # fullmatch
    r"rulebot:[a-z0-9_-]+:[0-9]{4}-[0-9]{2}-[0-9]{2}", re.IGNORECASE | re.ASCII
)


@functools.lru_cache(maxsize=65536)  # a library repeats a few tag lists
def only_marks(tags: tuple[str, ...]) -> bool:
    """True when every tag (possibly none) is a grace mark."""
    return all(MARK.fullmatch(tag) for tag in tags)


# -- state --------------------------------------------------------------------

_STATUS = {"unread": UNREAD, "archived": ARCHIVED}


@condition
class Status(Condition):
    cost = 1
    key = "status"
    fields = frozenset({"status"})
    description = "Pocket status: `unread` (0) or `archived` (1); a list means any of them."
    schema = _one_or_list({"type": "string", "enum": list(_STATUS)}, description)

    def __init__(self, value: Any, ctx: CompileContext) -> None:
        self.wanted = [str(v) for v in _as_list(value)]
        self.codes = frozenset(_STATUS[w] for w in self.wanted)

    def matches(self, item: Item, now: int) -> Truth:
        return item.status in self.codes

    def truth(self, env: Env) -> tuple[str, str]:
        codes = env.const(self.codes)
        return f"(i.status in {codes})", f"(i.status not in {codes})"

    def test(self, item: Item, now: int) -> Check:
        name = {UNREAD: "unread", ARCHIVED: "archived"}.get(item.status, f"status {item.status}")
        ok = any(_STATUS[w] == item.status for w in self.wanted)
        return Check(self.key, ok, f"status {name}")

    def because(self, item: Item, now: int) -> Sequence[str]:
        return _STATUS_REASONS[item.status]  # it matched: unread or archived

    @property
    def fixed(self) -> tuple[str, ...] | None:
        return _STATUS_REASONS[next(iter(self.codes))] if len(self.codes) == 1 else None


_STATUS_REASONS = {code: (f"status {name}",) for name, code in _STATUS.items()}


@condition
class Favorite(Condition):
    cost = 1
    key = "favorite"
    fields = frozenset({"favorite"})
    description = "true: is a favorite; false: is not."
    schema = {"description": description, "type": "boolean"}

    def matches(self, item: Item, now: int) -> Truth:
        return None if item.favorite is None else item.favorite == bool(self.value)

    def truth(self, env: Env) -> tuple[str, str]:
        # favorite is True, False or None (unknown): None is neither T nor F
        wanted = bool(self.value)
        return f"(i.favorite is {wanted})", f"(i.favorite is {not wanted})"

    def test(self, item: Item, now: int) -> Check:
        if item.favorite is None:
            return Check(self.key, None, "favorite unknown")
        ok = item.favorite == bool(self.value)
        return Check(self.key, ok, "favorite" if item.favorite else "not favorite")


@condition
class Private(Condition):
    cost = 1
    key = "private"
    fields = frozenset({"private"})
    description = "true: a private bookmark; false: a public one (Shaarli; unknown elsewhere)."
    schema = {"description": description, "type": "boolean"}

    def matches(self, item: Item, now: int) -> Truth:
        private = item.extra.get("private")
        return private == bool(self.value) if isinstance(private, bool) else None

    def test(self, item: Item, now: int) -> Check:
        private = item.extra.get("private")
        if not isinstance(private, bool):
            return Check(self.key, None, "private flag unknown")
        return Check(self.key, private == bool(self.value), "private" if private else "public")


# -- times --------------------------------------------------------------------

_TIME_FIELDS = {
    "added": "time_added",
    "updated": "time_updated",
    "read": "time_read",
    "favorited": "time_favorited",
}
_DATE_SCHEMA = {
    "type": "string",
    "description": "YYYY-MM-DD (start of that day in the config's timezone) or ISO 8601.",
}


class TimeCondition(Condition):
    """``{older_than, newer_than, before, after}``; all given must hold.

    older_than: age >= duration (exactly 30 days is "older than 30d");
    newer_than: age < duration. before D: earlier than the start of D;
    after D: at or after the start of D. So each pair splits time cleanly.
    A time that is "never" (Pocket's "0") matches nothing.
    """

    field: ClassVar[str]
    schema = {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "older_than": {
                "description": "At least this long ago: 90m, 12h, 30d, 2w.",
                "type": "string",
                "pattern": DURATION_PATTERN,
            },
            "newer_than": {
                "description": "Less than this long ago: 90m, 12h, 30d, 2w.",
                "type": "string",
                "pattern": DURATION_PATTERN,
            },
            "before": {**_DATE_SCHEMA, "description": "Earlier than this date (YYYY-MM-DD)."},
            "after": {**_DATE_SCHEMA, "description": "At or after this date (YYYY-MM-DD)."},
        },
    }

    def __init__(self, value: Mapping[str, Any], ctx: CompileContext) -> None:
        self.bounds: list[tuple[str, Any, int]] = []
        for op, raw in value.items():
            try:
                if op in ("older_than", "newer_than"):
                    self.bounds.append((op, raw, parse_duration(raw)))
                else:
                    self.bounds.append((op, raw, parse_instant(raw, ctx.timezone)))
            except VocabError as err:
                raise VocabError(err.message, (op,)) from None

    def matches(self, item: Item, now: int) -> Truth:
        moment = getattr(item, self.field)
        if moment is None:
            return None
        for op, _, number in self.bounds:
            if op == "older_than":
                ok = now - moment >= number
            elif op == "newer_than":
                ok = now - moment < number
            elif op == "before":
                ok = moment < number
            else:
                ok = moment >= number
            if not ok:
                return False
        return True

    def truth(self, env: Env) -> tuple[str, str]:
        moment = f"i.{self.field}"
        tests = []
        for op, _, number in self.bounds:
            bound = env.const(number)
            tests.append(
                {
                    "older_than": f"now - {moment} >= {bound}",
                    "newer_than": f"now - {moment} < {bound}",
                    "before": f"{moment} < {bound}",
                    "after": f"{moment} >= {bound}",
                }[op]
            )
        holds = " and ".join(tests)
        known = f"{moment} is not None"
        return f"({known} and {holds})", f"({known} and not ({holds}))"

    def test(self, item: Item, now: int) -> Check:
        moment = getattr(item, self.field)
        if moment is None:
            return Check(self.key, None, f"{self.key} never")
        age = now - moment
        ok, parts = True, []
        for op, raw, number in self.bounds:
            if op == "older_than":
                ok = ok and age >= number
                parts.append(f"older than {raw}")
            elif op == "newer_than":
                ok = ok and age < number
                parts.append(f"newer than {raw}")
            elif op == "before":
                ok = ok and moment < number
                parts.append(f"before {raw}")
            else:
                ok = ok and moment >= number
                parts.append(f"after {raw}")
        when = f"{format_age(age)} ago" if age >= 0 else f"in {format_age(-age)}"
        return Check(self.key, ok, f"{self.key} {when} ({', '.join(parts)})")


def _time_condition(key: str, field_name: str) -> type[Condition]:
    description = f"When the item was {key} ({field_name}); never-{key} items never match."
    cls = type(
        key.capitalize(),
        (TimeCondition,),
        {
            "key": key,
            "field": field_name,
            "fields": frozenset({field_name}),
            "description": description,
            "schema": {"description": description, **TimeCondition.schema},
        },
    )
    return condition(cls)


for _key, _field in _TIME_FIELDS.items():
    _time_condition(_key, _field)


# -- where it is from ---------------------------------------------------------


def _check_domain(written: str, path: tuple[int, ...]) -> None:
    """A URL where a host belongs never matches: say so, and name the host."""
    if re.match(r"^\s*[A-Za-z][A-Za-z0-9+.-]*://", written) or "/" in written.strip().strip("/"):
        host = host_of(written.strip() if "://" in written else "http://" + written.strip())
        hint = f"; write `domain: {host}`" if host else ""
        raise VocabError(
            f"domain takes a host such as example.com, not a URL or a path: {show_text(written)}"
            + hint,
            path,
        )


@condition
class Domain(Condition):
    cost = 3
    key = "domain"
    fields = frozenset({"url"})
    description = "Host is this domain or any subdomain of it; `www.` is ignored. A list: any."
    schema = _one_or_list({"type": "string", "minLength": 1}, description)

    def __init__(self, value: Any, ctx: CompileContext) -> None:
        for index, written in enumerate(_as_list(value)):
            _check_domain(str(written), (index,) if isinstance(value, list) else ())
        self.domains = [host_of("http://" + str(d).strip().strip("/")) for d in _as_list(value)]

    def matches(self, item: Item, now: int) -> Truth:
        host = item.domain
        if not host:
            return None
        return any(host == d or host.endswith("." + d) for d in self.domains)

    def truth(self, env: Env) -> tuple[str, str]:
        # inlined: the host once per item (host_of is cached by URL), a set
        # lookup and one C-level endswith over every ".domain" suffix
        host, domains = env.var(), env.const(frozenset(self.domains))
        suffixes = env.const(tuple("." + d for d in self.domains))
        seen = f"({host} := {env.const(host_of)}(i.resolved_url or i.given_url)) != ''"
        hit = f"({host} in {domains} or {host}.endswith({suffixes}))"
        return f"({seen} and {hit})", f"({seen} and not {hit})"

    def test(self, item: Item, now: int) -> Check:
        host = item.domain
        if not host:
            return Check(self.key, None, "domain unknown")
        ok = any(host == d or host.endswith("." + d) for d in self.domains)
        return Check(self.key, ok, f"domain {host}")

    def because(self, item: Item, now: int) -> Sequence[str]:
        return (f"domain {item.domain}",)


def _contains(needle: str) -> Callable[[str], bool]:
    return lambda seen: needle in seen.casefold()


def _casefolded(match: Callable[[str], Any]) -> Callable[[str], bool]:
    return lambda seen: match(seen.casefold()) is not None


def _found(search: Callable[[str], Any]) -> Callable[[str], bool]:
    return lambda seen: search(seen) is not None


class TextCondition(Condition):
    cost = 4
    """``{contains, glob, regex}``: all given must hold.

    contains and glob are case-insensitive; regex is ``re.search`` as
    written (add ``(?i)`` for case-insensitive).
    """

    read: ClassVar[Any]  # Item -> str
    schema = {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            "contains": {"description": "Contains this text (case-insensitive).", "type": "string"},
            "glob": {
                "description": "Matches this shell pattern, whole (case-insensitive): *, ?, [abc].",
                "type": "string",
            },
            "regex": {
                "description": "Python regular expression, found anywhere (re.search).",
                "type": "string",
            },
        },
    }

    def __init__(self, value: Mapping[str, Any], ctx: CompileContext) -> None:
        self.tests: list[tuple[str, str, Callable[[str], bool]]] = []
        for op, raw in value.items():
            text = str(raw)
            if op == "contains":
                self.tests.append((op, text, _contains(text.casefold())))
            elif op == "glob":
                pattern = re.compile(fnmatch.translate(text.casefold()))
                self.tests.append((op, text, _casefolded(pattern.match)))
            else:
                try:
                    compiled = re.compile(text)
                except re.error as err:
                    raise VocabError(
                        f"regex {text!r} does not compile: {err.msg} at position {err.pos}",
                        (op,),
                    ) from None
                slow = regex_problem(text)
                if slow:  # one title could stall a run for minutes (catastrophic backtracking)
                    raise VocabError(
                        f"regex {show_text(text)} has {slow}, which can take exponential time; "
                        "repeat a simpler part, e.g. a+ instead of (a+)+",
                        (op,),
                    )
                self.tests.append((op, text, _found(compiled.search)))
        described = ", ".join(f"{op} {raw!r}" for op, raw, _ in self.tests)
        self.label = (f"{self.key} {described}",)

    def matches(self, item: Item, now: int) -> Truth:
        seen = type(self).read(item)
        return all(match(seen) for _, _, match in self.tests)

    def truth(self, env: Env) -> tuple[str, str]:
        seen = f"i.{self.key}"  # the Item property of the same name: url or title
        holds = " and ".join(f"{env.const(match)}({seen})" for _, _, match in self.tests)
        return f"({holds})", f"(not ({holds}))"

    def test(self, item: Item, now: int) -> Check:
        seen = type(self).read(item)
        ok = all(match(seen) for _, _, match in self.tests)
        described = ", ".join(f"{op} {raw!r}" for op, raw, _ in self.tests)
        shown = seen if len(seen) <= 60 else seen[:57] + "..."
        return Check(self.key, ok, f"{self.key} {described}" + ("" if ok else f": {shown!r}"))

    def because(self, item: Item, now: int) -> Sequence[str]:
        return self.label

    @property
    def fixed(self) -> tuple[str, ...]:
        return self.label


@condition
class Url(TextCondition):
    key = "url"
    fields = frozenset({"url"})
    description = "Tests on the item's URL (resolved, else as saved)."
    schema = {"description": description, **TextCondition.schema}
    read = operator.attrgetter("url")


@condition
class Title(TextCondition):
    key = "title"
    fields = frozenset({"title", "url"})  # an item without a title shows its URL
    description = "Tests on the item's title (resolved, else as saved, else the URL)."
    schema = {"description": description, **TextCondition.schema}
    read = operator.attrgetter("title")


# -- size, type, language -----------------------------------------------------

WORDS_PER_MINUTE = 220


class NumberCondition(Condition):
    """``{gt, gte, lt, lte}``; all given must hold; unknown never matches."""

    unit: ClassVar[str]
    _ops: ClassVar[dict[str, Callable[[float, float], bool]]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }
    schema = {
        "type": "object",
        "additionalProperties": False,
        "minProperties": 1,
        "properties": {
            op: {"description": f"{word}.", "type": "number", "minimum": 0}
            for op, word in (
                ("gt", "Greater than"),
                ("gte", "At least"),
                ("lt", "Less than"),
                ("lte", "At most"),
            )
        },
    }

    def measure(self, item: Item) -> tuple[float | None, str]:
        raise NotImplementedError

    def matches(self, item: Item, now: int) -> Truth:
        number, _ = self.measure(item)
        if number is None:
            return None
        return all(self._ops[op](number, limit) for op, limit in self.value.items())

    def test(self, item: Item, now: int) -> Check:
        number, note = self.measure(item)
        if number is None:
            return Check(self.key, None, f"{self.key} unknown")
        ok = all(self._ops[op](number, limit) for op, limit in self.value.items())
        bounds = ", ".join(f"{op} {limit}" for op, limit in self.value.items())
        return Check(self.key, ok, f"{self.key} {number:g}{self.unit}{note} ({bounds})")


@condition
class WordCount(NumberCondition):
    key = "word_count"
    fields = frozenset({"word_count"})
    unit = ""
    description = "Compare the article's word count: {gt, gte, lt, lte}."
    schema = {"description": description, **NumberCondition.schema}

    def measure(self, item: Item) -> tuple[float | None, str]:
        return item.word_count, ""


@condition
class ReadingTime(NumberCondition):
    key = "reading_time"
    fields = frozenset({"time_to_read", "word_count"})  # else estimated from words
    unit = " min"
    description = (
        "Compare the reading time in minutes: {gt, gte, lt, lte}. Uses Pocket's "
        f"time_to_read, else estimates from the word count at {WORDS_PER_MINUTE} words a minute."
    )
    schema = {"description": description, **NumberCondition.schema}

    def measure(self, item: Item) -> tuple[float | None, str]:
        if item.time_to_read is not None:
            return item.time_to_read, ""
        if item.word_count:
            return math.ceil(item.word_count / WORDS_PER_MINUTE), " (estimated)"
        return None, ""


_TYPES = ("article", "video", "image")


@condition
class Type(Condition):
    key = "type"
    fields = frozenset({"is_article", "has_video", "has_image"})
    description = "What the item is: `article` (is_article), `video` or `image` (is one)."
    schema = _one_or_list({"type": "string", "enum": list(_TYPES)}, description)

    def __init__(self, value: Any, ctx: CompileContext) -> None:
        self.wanted = [str(v) for v in _as_list(value)]

    def test(self, item: Item, now: int) -> Check:
        facts = {
            "article": item.is_article,
            "video": None if item.has_video is None else item.has_video == 2,
            "image": None if item.has_image is None else item.has_image == 2,
        }
        seen = [facts[w] for w in self.wanted]
        if any(seen):
            return Check(self.key, True, "type " + "/".join(self.wanted))
        if any(s is None for s in seen):
            return Check(self.key, None, "type unknown")
        return Check(self.key, False, "type " + ", ".join(t for t in _TYPES if facts[t]) or "other")


@condition
class Lang(Condition):
    key = "lang"
    fields = frozenset({"lang"})
    description = (
        "Language code as the service detected it (`en`, `de`…); a list means any. "
        "`en` also matches regional codes (`en_US`, `en-GB`); `en_US` only that region."
    )
    schema = _one_or_list({"type": "string", "minLength": 1}, description)

    def __init__(self, value: Any, ctx: CompileContext) -> None:
        self.langs = [_lang_code(str(v)) for v in _as_list(value)]
        self.ranges = tuple(code + "-" for code in self.langs)

    def matches(self, item: Item, now: int) -> Truth:
        if not item.lang:
            return None
        code = _lang_code(item.lang)
        return code in self.langs or code.startswith(self.ranges)

    def test(self, item: Item, now: int) -> Check:
        if not item.lang:
            return Check(self.key, None, "lang unknown")
        return Check(self.key, self.matches(item, now), f"lang {item.lang}")


def _lang_code(code: str) -> str:
    """Services write a region with ``_`` (Wallabag's ``en_US``) or ``-``
    (BCP 47 ``en-GB``): compare them as one, case-insensitively (RFC 4647
    basic filtering: a language range matches its own subtags)."""
    return code.strip().lower().replace("_", "-")


# -- the library as a whole ---------------------------------------------------


@condition
class Duplicate(Condition):
    """Needs the whole library, not one item: ``Where.select`` calls ``prepare``
    with every live item (as the rule sees the library) before any test."""

    cost = 1
    key = "duplicate"
    fields = frozenset({"url", "time_added"})
    library_wide = True
    description = (
        "Another live item has the same URL (normalised: scheme, www., tracking parameters, "
        "trailing slash and fragment ignored; given and resolved URL both count). Matches "
        "every copy except the one kept: the oldest (keep: oldest) or newest by time_added."
    )
    schema = {
        "description": description,
        "type": "object",
        "additionalProperties": False,
        "required": ["by"],
        "properties": {
            "by": {"description": "What makes a duplicate: the URL.", "enum": ["url"]},
            "keep": {
                "description": "The copy that does not match: oldest (default) or newest.",
                "enum": ["oldest", "newest"],
                "default": "oldest",
            },
        },
    }

    def __init__(self, value: Mapping[str, Any], ctx: CompileContext) -> None:
        self.newest = value.get("keep", "oldest") == "newest"
        # item_id -> the id of the copy kept; filled in place (the generated
        # predicate holds this very dict)
        self.copies: dict[str, str] = {}
        self._keys: dict[str, str] = {}  # URL -> normalised, across prepares

    def _key(self, url: str) -> str:
        key = self._keys.get(url)
        if key is None:
            from rulebot.library.urls import normalise_url

            key = self._keys[url] = normalise_url(url)
        return key

    def prepare(self, items: Iterable[Item | None]) -> None:
        parent: dict[str, str] = {}

        def root(key: str) -> str:
            while parent[key] != key:
                parent[key] = parent[parent[key]]
                key = parent[key]
            return key

        keyed: list[tuple[Item, str]] = []
        for item in items:
            if item is None or item.is_deleted:
                continue
            keys = [
                k for k in {self._key(u) for u in (item.given_url, item.resolved_url) if u} if k
            ]
            if not keys:
                continue
            for key in keys:
                parent.setdefault(key, key)
            for key in keys[1:]:  # given and resolved URL join their groups
                parent[root(key)] = root(keys[0])
            keyed.append((item, keys[0]))
        groups: dict[str, list[Item]] = {}
        for item, key in keyed:
            groups.setdefault(root(key), []).append(item)
        self.copies.clear()
        pick = max if self.newest else min
        for members in groups.values():
            if len(members) < 2:
                continue
            kept = pick(members, key=lambda i: i.sort_key)
            for member in members:
                if member is not kept:
                    self.copies[member.item_id] = kept.item_id

    def matches(self, item: Item, now: int) -> Truth:
        return item.item_id in self.copies

    def truth(self, env: Env) -> tuple[str, str]:
        copies = env.const(self.copies)
        return f"(i.item_id in {copies})", f"(i.item_id not in {copies})"

    def test(self, item: Item, now: int) -> Check:
        kept = self.copies.get(item.item_id)
        which = "newest" if self.newest else "oldest"
        if kept is None:
            return Check(self.key, False, f"not a duplicate (or the {which} copy, kept)")
        return Check(self.key, True, f"duplicate of item {kept} (same URL; the {which} is kept)")


# -- composition --------------------------------------------------------------


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
