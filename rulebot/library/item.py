"""The library item: one typed shape for everything rulebot reads.

Pocket's ``/v3/get`` sends nearly every field as a string ("0"/"1" flags,
unix-second strings, "0" meaning "never"). ``Item.from_pocket`` is the one
place that turns that into typed values; everything else sees ``Item``.

``tags is None`` means the tags are *unknown* (never fetched, e.g. a
``detailType=simple`` response or a deleted stub), which is different from
``()`` (known to have none): an item with unknown tags is never "untagged".
Likewise ``favorite is None`` means unknown (an item imported from an export,
which has no favourite column), never "not a favourite".
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from rulebot.errors import ItemDataError
from rulebot.library.tagcase import Fold, tag_sets
from rulebot.memo import Memo

UNREAD, ARCHIVED, DELETED, HIDDEN = 0, 1, 2, 3
MAX_INT = 2**63 - 1  # SQLite's INTEGER: a larger number cannot be stored
# The times an item can have, in unix seconds (1900 up to 3000). A server's
# year 9999 or 10000 is garbage, and one that is stored cannot be shown (a
# date past 9999 overflows `datetime`): it is refused where it comes in.
EARLIEST, LATEST = -2_208_988_800, 32_503_680_000
# one shared, read-only "no extra fields": a fresh {} per item cost 6 MB per 100k
NO_EXTRA: Mapping[str, Any] = MappingProxyType({})
STATUS_NAMES = {UNREAD: "unread", ARCHIVED: "archived", DELETED: "deleted", HIDDEN: "hidden"}


@dataclass(frozen=True, slots=True)
class Item:
    item_id: str
    given_url: str = ""
    resolved_url: str = ""
    given_title: str = ""
    resolved_title: str = ""
    status: int = UNREAD
    favorite: bool | None = False  # None: unknown (an export never says)
    tags: tuple[str, ...] | None = ()
    time_added: int | None = None
    time_updated: int | None = None
    time_read: int | None = None
    time_favorited: int | None = None
    word_count: int | None = None
    time_to_read: int | None = None
    lang: str | None = None
    is_article: bool | None = None
    has_image: int | None = None
    has_video: int | None = None
    excerpt: str = ""
    extra: Mapping[str, Any] = field(default_factory=lambda: NO_EXTRA, compare=False, repr=False)

    # -- derived views -------------------------------------------------
    @property
    def url(self) -> str:
        return self.resolved_url or self.given_url

    @property
    def title(self) -> str:
        return self.resolved_title or self.given_title or self.url

    @property
    def domain(self) -> str:
        """Lower-case host without a leading ``www.``; "" when unparseable."""
        return host_of(self.url)

    @property
    def is_deleted(self) -> bool:
        return self.status in (DELETED, HIDDEN)

    @property
    def sort_key(self) -> tuple[int, int, str]:
        """Oldest ``time_added`` first, then numeric item_id (design.md)."""
        return (self.time_added or 0, _numeric(self.item_id), self.item_id)

    def tag_set(self, fold: Fold) -> frozenset[str]:
        """The tags as ``fold`` compares them (the source's: ``rulebot.library.tagcase``)."""
        return tag_sets(fold)[self.tags or ()]

    def has_tag(self, tag: str, fold: Fold) -> bool:
        return fold(tag) in self.tag_set(fold)

    if TYPE_CHECKING:  # generated once the class exists: _fast_replace below

        def replace(self, **changes: Any) -> Item: ...

    # -- Pocket JSON -----------------------------------------------------
    @classmethod
    def from_pocket(cls, raw: Any, *, tags_known: bool = True) -> Item:
        """Normalise one ``/v3/get`` list entry (or a deleted stub).

        ``tags_known`` is False for ``detailType=simple`` responses, where an
        absent ``tags`` key does not mean "untagged".
        """
        if not isinstance(raw, Mapping):
            raise ItemDataError(f"item entry is a {type(raw).__name__}, expected an object")
        item_id = _id(raw.get("item_id"))
        where = f"item {item_id}"
        status = _int(raw.get("status", 0), where, "status")
        if status not in STATUS_NAMES:
            raise ItemDataError(f"{where}: field 'status' is {raw.get('status')!r}, expected 0-3")
        if status in (DELETED, HIDDEN):
            return cls(item_id=item_id, status=status, tags=None)
        tags: tuple[str, ...] | None
        raw_tags = raw.get("tags")
        if raw_tags is None:
            tags = () if tags_known else None
        elif isinstance(raw_tags, Mapping):
            tags = tuple(sorted((str(k) for k in raw_tags), key=str.casefold))
        elif isinstance(raw_tags, list):  # some servers send [] for "none"
            tags = tuple(_list_tag(t, where) for t in raw_tags)
        else:
            raise ItemDataError(f"{where}: field 'tags' is {type(raw_tags).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(
            item_id=item_id,
            given_url=_str(raw.get("given_url"), where, "given_url"),
            resolved_url=_str(raw.get("resolved_url"), where, "resolved_url"),
            given_title=_str(raw.get("given_title"), where, "given_title"),
            resolved_title=_str(raw.get("resolved_title"), where, "resolved_title"),
            status=status,
            favorite=bool(_int(raw.get("favorite", 0), where, "favorite")),
            tags=tags,
            time_added=_time(raw.get("time_added"), where, "time_added"),
            time_updated=_time(raw.get("time_updated"), where, "time_updated"),
            time_read=_time(raw.get("time_read"), where, "time_read"),
            time_favorited=_time(raw.get("time_favorited"), where, "time_favorited"),
            word_count=_opt_int(raw.get("word_count"), where, "word_count"),
            time_to_read=_opt_int(raw.get("time_to_read"), where, "time_to_read"),
            lang=(_str(raw.get("lang"), where, "lang") or None),
            is_article=_opt_flag(raw.get("is_article"), where, "is_article"),
            has_image=_opt_int(raw.get("has_image"), where, "has_image"),
            has_video=_opt_int(raw.get("has_video"), where, "has_video"),
            excerpt=_str(raw.get("excerpt"), where, "excerpt"),
            extra={k: v for k, v in raw.items() if k not in known and k != "tags"},
        )


_FIELD_NAMES = tuple(f.name for f in dataclasses.fields(Item))


# Item's slots on a class without the frozen ``__setattr__``: an object
# being made is filled as one of these, then handed back to ``Item``
# (CPython allows ``__class__`` assignment between classes of the same slot
# layout). What comes out is an ``Item`` like any other, as frozen as before.
_Filling = type("_Filling", (), {"__slots__": Item.__slots__})


def _fast_replace() -> Any:
    """``Item.replace``, generated like dataclasses' own methods.

    ``dataclasses.replace`` re-runs the frozen ``__init__`` (a checked
    ``object.__setattr__`` per field) and takes a ``**changes`` dict; this
    fills a ``_Filling`` with plain attribute stores, with keyword-only
    arguments (``benchmarks/bench_items.py``). An unknown name is a
    ``TypeError``, as before."""
    keep = object()
    names = {"_keep": keep, "_new": object.__new__, "_Item": Item, "_Filling": _Filling}
    parameters = ", ".join(f"{name}=_keep" for name in _FIELD_NAMES)
    body = "".join(
        f"    new.{name} = self.{name} if {name} is _keep else {name}\n" for name in _FIELD_NAMES
    )
    source = (
        f"def replace(self, *, {parameters}):\n    new = _new(_Filling)\n{body}"
        "    new.__class__ = _Item\n    return new\n"
    )
    exec(compile(source, "<Item.replace>", "exec"), names)
    replace = names["replace"]
    replace.__doc__ = """A copy with ``changes`` (``dataclasses.replace``, faster):
    the planner makes one per planned action."""
    return replace


Item.replace = _fast_replace()  # type: ignore[method-assign]


def _fast_init() -> Any:
    """``Item.__init__``, generated with the same parameters and defaults.

    The frozen dataclass's own ``__init__`` sets each of the 20 fields with
    a checked ``object.__setattr__``, and a plan builds an item for every
    row it reads. This one makes the new object a ``_Filling`` while it
    stores the fields as plain attributes, then an ``Item`` again: about
    half the cost (``benchmarks/bench_items.py``)."""
    names: dict[str, Any] = {"_Item": Item, "_set": object.__setattr__, "_Filling": _Filling}
    parameters = []
    for number, spec in enumerate(dataclasses.fields(Item)):
        if spec.default is not dataclasses.MISSING:
            names[f"_default{number}"] = spec.default
        elif spec.default_factory is not dataclasses.MISSING:
            names[f"_default{number}"] = spec.default_factory()  # NO_EXTRA: one shared object
        else:
            parameters.append(spec.name)
            continue
        parameters.append(f"{spec.name}=_default{number}")
    body = "".join(f"    self.{name} = {name}\n" for name in _FIELD_NAMES)
    source = (
        f"def __init__(self, {', '.join(parameters)}):\n"
        f"    _set(self, '__class__', _Filling)\n{body}    self.__class__ = _Item\n"
    )
    exec(compile(source, "<Item.__init__>", "exec"), names)
    init = names["__init__"]
    init.__qualname__ = "Item.__init__"
    return init


Item.__init__ = _fast_init()  # type: ignore[method-assign]


_HOST = re.compile(
    r"^\s*[A-Za-z][A-Za-z0-9+.-]*://(?:[^/?#@]*@)?([^/?#:\[\]]*)(?::\d*)?(?:[/?#]|\s*$)"
)


def _host(url: str) -> str:
    match = _HOST.match(url)
    if match:
        host = match.group(1).lower().rstrip(".")
    else:
        try:
            host = (urlsplit(url.strip()).hostname or "").lower().rstrip(".")
        except ValueError:
            return ""
    return host[4:] if host.startswith("www.") else host


# Bounded to a few of the planner's chunks of a thousand items: the rules of
# one chunk ask for an item's host within moments of each other. A cache of
# the whole library (it was 262,144 URLs) held every URL a plan read, 24 MiB
# per 100k items, a third of a nightly plan's peak, and saved time only for
# rule sets the one pass refuses (two keep_newest rules), which sweep the
# whole library once per domain rule (docs/performance.md). Generated
# conditions read ``hosts[url]`` inline (``conditions.text``).
hosts = Memo(_host)


def host_of(url: str) -> str:
    """Lower-case host without ``www.`` and a trailing dot; "" when none.

    A regex for the common case (``urlsplit`` costs ~8 µs, and rules ask for
    the domain of every item); anything unusual (IPv6, odd ports) falls back
    to ``urlsplit``. Remembered (``hosts``).
    """
    return hosts[url]


def tag_list(tags: Iterable[str]) -> str:
    return ",".join(tags)


def _numeric(item_id: str) -> int:
    return int(item_id) if item_id.isdigit() else 0


def sort_key_of(item_id: str, time_added: int | None) -> tuple[int, int, str]:
    """``Item.sort_key`` of an item that is not made yet (an export's row)."""
    return (time_added or 0, _numeric(item_id), item_id)


def _id(value: Any) -> str:
    text = str(value).strip() if isinstance(value, (str, int)) else ""
    if not (text.isdigit() and text.isascii()):  # isdigit alone takes "١٢" or "²"
        raise ItemDataError(f"item has item_id {value!r}, expected a string of digits 0-9")
    return text


def _list_tag(entry: Any, where: str) -> str:
    """One entry of a ``tags`` list: a name, or ``{"tag": name, ...}``."""
    name = entry.get("tag") if isinstance(entry, Mapping) else entry
    if isinstance(name, (str, int)) and not isinstance(name, bool):
        return str(name)
    raise ItemDataError(f"{where}: field 'tags' holds {entry!r}, expected tag names")


def _str(value: Any, where: str, name: str) -> str:
    if value is None:
        return ""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return str(value)
    raise ItemDataError(f"{where}: field {name!r} is a {type(value).__name__}, expected text")


def _int(value: Any, where: str, name: str) -> int:
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.lstrip("-").isdigit():
            return int(text)
    raise ItemDataError(f"{where}: field {name!r} is {value!r}, expected a number")


def _opt_int(value: Any, where: str, name: str) -> int | None:
    if value is None or value == "":
        return None
    return _int(value, where, name)


def _opt_flag(value: Any, where: str, name: str) -> bool | None:
    number = _opt_int(value, where, name)
    return None if number is None else bool(number)


def _time(value: Any, where: str, name: str) -> int | None:
    """Unix seconds; Pocket's "0" (and absence) means "never"."""
    number = _opt_int(value, where, name)
    return checked_time(number, where, name) if number else None


def checked_time(seconds: int, where: str, name: str) -> int:
    """``seconds``, when it is a time an item can have (``EARLIEST``..``LATEST``);
    otherwise an ``ItemDataError`` naming the item and the field: every source
    checks its times with this before they become an ``Item``."""
    if not EARLIEST <= seconds < LATEST:
        raise ItemDataError(
            f"{where}: field {name!r} is {seconds} (unix seconds), not a time between "
            "the years 1900 and 3000"
        )
    return seconds


def checked_count(value: int, where: str, name: str) -> int:
    """A non-negative whole number that fits SQLite's INTEGER; otherwise an
    ``ItemDataError`` naming the item and the field."""
    if not 0 <= value <= MAX_INT:
        shown = str(value) if abs(value) < 10**30 else "a number of more than 30 digits"
        raise ItemDataError(
            f"{where}: field {name!r} is {shown}, expected a whole number from 0 to 2^63-1"
        )
    return value
