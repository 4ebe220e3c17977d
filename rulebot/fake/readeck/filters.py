"""The bookmark list's filters and orders (``GET /api/bookmarks``, readeck.md §4).

Each parameter with the semantics the fact sheet gives it:

- ``is_archived``, ``is_marked``, ``is_loaded`` (``state != 2``), ``has_errors``
  (``state == 1``), ``has_labels``: Go booleans; empty is no filter, anything
  unreadable a 422 form error;
- ``labels``: a search string (terms ANDed, ``"quoted words"`` one term, a
  trailing ``*`` a case-insensitive prefix, a leading ``-`` excludes); a plain
  term equals one label exactly, case included;
- ``search``, ``title``, ``author``, ``site``: full-text, not exact: every word
  of each term must be a word of the field (case and accents ignored; a
  trailing ``*`` makes the last word a prefix, a leading ``-`` excludes);
  ``site`` covers the site name and the host;
- ``type`` and ``read_status``: repeatable, ORed (``unread`` progress 0,
  ``reading`` 1-99, ``read`` 100); another value is a 422;
- ``range_start``/``range_end``: ``created`` between the two bounds (each
  optional, both inclusive), as time tokens: ``now``, ``-7d``/``+2w``/``-1m``/
  ``-1y``, or an absolute date; anything else is a 422;
- ``id``: repeatable, those bookmarks only, in the order given unless ``sort``;
- ``collection``: this fake has no collections, so any id is unknown: 404;
- ``sort``: repeatable keys (``created``, ``domain``, ``duration``,
  ``published``, ``site``, ``title``, each with an optional ``-``) replacing
  ``created`` descending, with no tie-breaker; unknown keys are ignored.

Where the sheet leaves a detail open (what ``domain`` is, which fields
``search`` covers, how dates and months count), ``docs/readeck.md`` says what
the fake does.
"""

from __future__ import annotations

import calendar
import functools
import re
import unicodedata
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from rulebot.fake.base import parse_iso
from rulebot.fake.readeck.model import Bookmark, FormError, ReadeckStatus, host
from rulebot.fake.readeck.protocol import form_bool

TYPES = ("article", "photo", "video")
READ_STATUSES = ("unread", "reading", "read")
SORT_KEYS = ("created", "domain", "duration", "published", "site", "title")
_FLAGS: dict[str, Callable[[Bookmark], bool]] = {
    "is_archived": lambda b: b.is_archived,
    "is_marked": lambda b: b.is_marked,
    "is_loaded": lambda b: b.state != 2,
    "has_errors": lambda b: b.state == 1,
    "has_labels": lambda b: bool(b.labels),
}
_PROGRESS: dict[str, Callable[[int], bool]] = {
    "unread": lambda p: p == 0,
    "reading": lambda p: 0 < p < 100,
    "read": lambda p: p == 100,
}
_TOKEN = re.compile(r'(-?)"([^"]*)"|(\S+)')
_RELATIVE = re.compile(r"([+-])(\d{1,6})([dwmy])")


@dataclass(frozen=True)
class Term:
    """One term of a search string."""

    text: str
    exclude: bool = False
    prefix: bool = False


def search_terms(text: str) -> list[Term]:
    """``RD:internal/searchstring``: whitespace-separated terms, quotes group
    words into one, a leading ``-`` excludes, a trailing ``*`` is a prefix."""
    terms = []
    for match in _TOKEN.finditer(text):
        quoted_minus, quoted, bare = match.groups()
        if bare is None:
            exclude, word = bool(quoted_minus), quoted
        else:
            exclude = bare.startswith("-") and len(bare) > 1
            word = bare[1:] if exclude else bare
        prefix = word.endswith("*")
        word = word.rstrip("*") if prefix else word
        if word:
            terms.append(Term(word, exclude, prefix))
    return terms


def _words(text: str) -> list[str]:
    """Words as a full-text index sees them: case and accents folded."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in folded if not unicodedata.combining(c))
    return re.findall(r"\w+", plain)


def _text_match(term: Term, fields: Iterable[str]) -> bool:
    wanted = _words(term.text)
    if not wanted:
        return True
    for field in fields:
        words = _words(field)
        for start in range(len(words) - len(wanted) + 1):
            run = words[start : start + len(wanted)]
            head, last = run[:-1], run[-1]
            if head == wanted[:-1] and (
                last.startswith(wanted[-1]) if term.prefix else last == wanted[-1]
            ):
                return True
    return False


def _label_match(term: Term, labels: Sequence[str]) -> bool:
    if term.prefix:
        return any(label.lower().startswith(term.text.lower()) for label in labels)
    return term.text in labels


def _full_text(bookmark: Bookmark, field: str) -> list[str]:
    if field == "title":
        return [bookmark.title]
    if field == "author":
        return list(bookmark.authors or [])
    if field == "site":
        return [bookmark.site_name, host(bookmark.url)]
    # search: every field the fake holds text in
    return [
        bookmark.title,
        bookmark.description,
        bookmark.site_name,
        host(bookmark.url),
        *(bookmark.authors or []),
        *bookmark.labels,
    ]


def time_token(text: str, now: int) -> int | None:
    """``RD:pkg/timetoken``: ``now``, ``±N`` days/weeks/months/years from now,
    or an absolute date (midnight UTC); microseconds, or None if unreadable."""
    text = text.strip()
    if text == "now":
        return now
    match = _RELATIVE.fullmatch(text)
    if match:
        sign = 1 if match.group(1) == "+" else -1
        amount, unit = sign * int(match.group(2)), match.group(3)
        base = datetime.fromtimestamp(now / 1e6, UTC)
        if unit in "dw":
            moved = base + timedelta(days=amount * (7 if unit == "w" else 1))
        else:
            moved = _add_months(base, amount * (12 if unit == "y" else 1))
        return int(moved.timestamp() * 1_000_000)
    parsed = parse_iso(text)
    return None if parsed is None else int(parsed.timestamp() * 1_000_000)


def _add_months(moment: datetime, months: int) -> datetime:
    index = moment.year * 12 + moment.month - 1 + months
    year, month = divmod(index, 12)
    day = min(moment.day, calendar.monthrange(year, month + 1)[1])
    return moment.replace(year=year, month=month + 1, day=day)


def _choices(name: str, values: list[str], allowed: tuple[str, ...]) -> tuple[str, ...]:
    chosen = tuple(v.strip() for v in values if v.strip())
    wrong = [v for v in chosen if v not in allowed]
    if wrong:
        raise FormError(422, {name: [f"{wrong[0]!r} is not one of {', '.join(allowed)}"]})
    return chosen


@dataclass(frozen=True)
class ListFilter:
    """A list request's filters, read and checked; call it on a bookmark."""

    flags: tuple[tuple[str, bool], ...]
    labels: tuple[Term, ...]
    texts: tuple[tuple[str, Term], ...]  # (field, term)
    kinds: tuple[str, ...]
    statuses: tuple[str, ...]
    start: int | None
    end: int | None

    @classmethod
    def parse(
        cls, query: Mapping[str, str], multi: Mapping[str, list[str]], now: int
    ) -> ListFilter:
        """Read a list request's parameters (``now`` in microseconds); raises the
        form error (422) or status (404) the real handler answers with."""
        flags = tuple((n, form_bool(n, query[n])) for n in _FLAGS if query.get(n))
        texts = tuple(
            (field, term)
            for field in ("search", "title", "author", "site")
            for term in search_terms(query.get(field, ""))
        )
        bounds: dict[str, int | None] = {"range_start": None, "range_end": None}
        for name in bounds:
            if query.get(name, "").strip():
                bounds[name] = time_token(query[name], now)
                if bounds[name] is None:
                    raise FormError(422, {name: ["invalid time token"]})
        if query.get("collection", "").strip():
            raise ReadeckStatus(404)  # no saved collections here: every id is unknown
        return cls(
            flags,
            tuple(search_terms(query.get("labels", ""))),
            texts,
            _choices("type", multi.get("type", []), TYPES),
            _choices("read_status", multi.get("read_status", []), READ_STATUSES),
            bounds["range_start"],
            bounds["range_end"],
        )

    def __call__(self, b: Bookmark) -> bool:
        return (
            all(_FLAGS[name](b) == wanted for name, wanted in self.flags)
            and all(_label_match(t, b.labels) != t.exclude for t in self.labels)
            and all(_text_match(t, _full_text(b, f)) != t.exclude for f, t in self.texts)
            and (not self.kinds or b.type in self.kinds)
            and (not self.statuses or any(_PROGRESS[s](b.read_progress) for s in self.statuses))
            and (self.start is None or b.created >= self.start)
            and (self.end is None or b.created <= self.end)
        )


def _sort_value(bookmark: Bookmark, key: str) -> Any:
    if key == "created":
        return bookmark.created
    if key == "published":  # falls back to created
        return bookmark.published if bookmark.published is not None else bookmark.created
    if key == "duration":  # the video duration (none here) or word_count × 0.3
        return bookmark.word_count * 0.3
    if key == "site":
        return bookmark.site_name
    if key == "domain":
        return host(bookmark.url)
    return bookmark.title


def ordered(rows: list[Bookmark], sort: list[str], ids: list[str]) -> list[Bookmark]:
    """``rows`` (already ``created`` descending) in the order asked: the valid
    ``sort`` keys, else the ``id`` order given, else as they are."""
    keys = [(k.removeprefix("-"), k.startswith("-")) for k in (s.strip() for s in sort)]
    keys = [(k, desc) for k, desc in keys if k in SORT_KEYS]
    if keys:
        result = list(rows)
        for key, desc in reversed(keys):  # stable sorts: the first key has the last word
            result.sort(key=functools.partial(_sort_value, key=key), reverse=desc)
        return result
    if ids:
        order = {bid: n for n, bid in enumerate(ids)}
        return sorted(rows, key=lambda b: order[b.id])
    return rows
