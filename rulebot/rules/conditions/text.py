"""Where it is from and what it says: ``domain`` (the host), and ``url``
and ``title`` (``{contains, glob, regex}`` on the text)."""

from __future__ import annotations

import fnmatch
import operator
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from rulebot.library.item import Item, host_of, hosts
from rulebot.rules.conditions.base import (
    Check,
    Condition,
    Env,
    Truth,
    as_list,
    condition,
    one_or_list,
)
from rulebot.rules.vocab import CompileContext, VocabError, regex_problem, show_text


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
    schema = one_or_list({"type": "string", "minLength": 1}, description)

    def __init__(self, value: Any, ctx: CompileContext) -> None:
        for index, written in enumerate(as_list(value)):
            _check_domain(str(written), (index,) if isinstance(value, list) else ())
        self.domains = [host_of("http://" + str(d).strip().strip("/")) for d in as_list(value)]

    def matches(self, item: Item, now: int) -> Truth:
        host = item.domain
        if not host:
            return None
        return any(host == d or host.endswith("." + d) for d in self.domains)

    def truth(self, env: Env) -> tuple[str, str]:
        # inlined: the host once per item (``hosts``: remembered by URL, read
        # with a lookup), a set lookup and one C-level endswith over every
        # ".domain" suffix
        host, domains = env.var(), env.const(frozenset(self.domains))
        suffixes = env.const(tuple("." + d for d in self.domains))
        seen = f"({host} := {env.const(hosts)}[i.resolved_url or i.given_url]) != ''"
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


def _only_stars_around(pattern: str) -> bool:
    """``*text*`` with nothing special in ``text``: a glob that is a ``contains``."""
    inner = pattern[1:-1]
    return (
        len(pattern) >= 2
        and pattern[0] == pattern[-1] == "*"
        and not any(c in inner for c in "*?[")
    )


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
    inline_read: ClassVar[str]  # the same as a Python expression over `i`
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
        # the same tests as Python expressions over ``seen`` for ``truth``: a
        # format with one constant (a needle, a regex's method) each
        self.inline: list[tuple[str, Any]] = []
        for op, raw in value.items():
            text = str(raw)
            if op == "contains" or (op == "glob" and _only_stars_around(text)):
                needle = text.casefold() if op == "contains" else text.casefold()[1:-1]
                self.tests.append((op, text, _contains(needle)))
                self.inline.append(("({const} in {seen}.casefold())", needle))
            elif op == "glob":
                pattern = re.compile(fnmatch.translate(text.casefold()))
                self.tests.append((op, text, _casefolded(pattern.match)))
                self.inline.append(("({const}({seen}.casefold()) is not None)", pattern.match))
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
                self.inline.append(("({const}({seen}) is not None)", compiled.search))
        described = ", ".join(f"{op} {raw!r}" for op, raw, _ in self.tests)
        self.label = (f"{self.key} {described}",)

    def matches(self, item: Item, now: int) -> Truth:
        seen = type(self).read(item)
        return all(match(seen) for _, _, match in self.tests)

    def truth(self, env: Env) -> tuple[str, str]:
        # the Item property of the same name (url or title), inlined, read
        # once: the first test binds it and the rest, joined by `and`, reuse it
        seen = env.var()
        holds = " and ".join(
            form.format(
                const=env.const(const), seen=seen if n else f"({seen} := {self.inline_read})"
            )
            for n, (form, const) in enumerate(self.inline)
        )
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
    inline_read = "i.resolved_url or i.given_url"  # Item.url


@condition
class Title(TextCondition):
    key = "title"
    fields = frozenset({"title", "url"})  # an item without a title shows its URL
    description = "Tests on the item's title (resolved, else as saved, else the URL)."
    schema = {"description": description, **TextCondition.schema}
    read = operator.attrgetter("title")
    inline_read = "i.resolved_title or i.given_title or i.resolved_url or i.given_url"  # Item.title
