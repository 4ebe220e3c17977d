"""Linkding 1.44's search expressions (``q``), as ``specs/linkding.md`` §5.5
and ``LD:bookmarks/services/search_query_parser.py`` have them: words match
title, description, notes or URL as case-insensitive substrings; ``"a
phrase"`` (or ``'…'``, with backslash escapes) is one word; ``#tag`` is a
whole tag name, any case; ``!unread`` and ``!untagged`` are what they say
and any other ``!word`` matches everything; ``and``/``or``/``not`` in any
case and parentheses, ``not`` > ``and`` (also by juxtaposition) > ``or``.
A query that does not parse matches nothing (no error).
"""

from __future__ import annotations

from collections.abc import Callable

from rulebot.fake.linkding.model import Bookmark

Match = Callable[[Bookmark, frozenset[str]], bool]  # a bookmark and its tag names, lower-cased
_OPERATORS = {"and": "AND", "or": "OR", "not": "NOT"}


class ParseError(Exception):
    """The query does not parse: it matches nothing."""


def tokens(query: str) -> list[tuple[str, str]]:
    """(kind, value): TERM, TAG, KEYWORD, AND, OR, NOT, LPAREN, RPAREN."""
    text, found, at = query.strip(), [], 0
    while at < len(text):
        char = text[at]
        if char.isspace():
            at += 1
        elif char in "()":
            found.append(("LPAREN" if char == "(" else "RPAREN", char))
            at += 1
        elif char in "\"'":
            value, at = _quoted(text, at)
            found.append(("TERM", value))
        elif char in "#!":
            end = at + 1
            while end < len(text) and not text[end].isspace() and text[end] not in "()\"'":
                end += 1
            if end > at + 1:
                found.append(("TAG" if char == "#" else "KEYWORD", text[at + 1 : end]))
            at = end
        else:
            end = at
            while end < len(text) and not text[end].isspace() and text[end] not in "()\"'#!":
                end += 1
            word = text[at:end]
            found.append((_OPERATORS.get(word.lower(), "TERM"), word))
            at = end
    return found


def _quoted(text: str, at: int) -> tuple[str, int]:
    quote, at, value = text[at], at + 1, []
    escapes = {"n": "\n", "t": "\t", "r": "\r"}
    while at < len(text) and text[at] != quote:
        if text[at] == "\\" and at + 1 < len(text):
            value.append(escapes.get(text[at + 1], text[at + 1]))
            at += 2
        else:
            value.append(text[at])
            at += 1
    return "".join(value), at + 1  # an unclosed quote ends with the query


def compile_query(query: str) -> Match:
    """The predicate of a ``q``; raises ``ParseError`` for one that does not parse."""
    parser = _Parser(tokens(query))
    if not parser.tokens:
        return lambda bookmark, tags: True
    match = parser.parse_or()
    if parser.peek() != "EOF":
        raise ParseError(parser.peek())
    return match


class _Parser:
    def __init__(self, found: list[tuple[str, str]]) -> None:
        self.tokens, self.at = found, 0

    def peek(self) -> str:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else "EOF"

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def parse_or(self) -> Match:
        left = self.parse_and()
        while self.peek() == "OR":
            self.take()
            left = _either(left, self.parse_and())
        return left

    def parse_and(self) -> Match:
        left = self.parse_not()
        while self.peek() in ("AND", "TERM", "TAG", "KEYWORD", "LPAREN", "NOT"):
            if self.peek() == "AND":
                self.take()
            left = _both(left, self.parse_not())
        return left

    def parse_not(self) -> Match:
        if self.peek() == "NOT":
            self.take()
            inner = self.parse_not()
            return lambda bookmark, tags: not inner(bookmark, tags)
        return self.primary()

    def primary(self) -> Match:
        kind = self.peek()
        if kind == "EOF":
            raise ParseError("the query ends too early")
        _, value = self.take()
        if kind == "TERM":
            return _word(value.lower())
        if kind == "TAG":
            name = value.lower()
            return lambda bookmark, tags: name in tags
        if kind == "KEYWORD":
            return _keyword(value.lower())
        if kind == "LPAREN":
            inner = self.parse_or()
            if self.peek() != "RPAREN":
                raise ParseError("a parenthesis is not closed")
            self.take()
            return inner
        raise ParseError(f"unexpected {kind}")


def _either(left: Match, right: Match) -> Match:
    return lambda bookmark, tags: left(bookmark, tags) or right(bookmark, tags)


def _both(left: Match, right: Match) -> Match:
    return lambda bookmark, tags: left(bookmark, tags) and right(bookmark, tags)


def _word(word: str) -> Match:
    def match(bookmark: Bookmark, tags: frozenset[str]) -> bool:
        fields = (bookmark.title, bookmark.description, bookmark.notes, bookmark.url)
        return any(word in text.lower() for text in fields)

    return match


def _keyword(keyword: str) -> Match:
    if keyword == "unread":
        return lambda bookmark, tags: bookmark.unread
    if keyword == "untagged":
        return lambda bookmark, tags: not tags
    return lambda bookmark, tags: True
