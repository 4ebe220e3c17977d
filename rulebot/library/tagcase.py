"""How two tags compare: the one fold every comparison of tags goes through.

rulebot's rule language compares tags case-insensitively (`tag: News` finds
`news`), but never more loosely than the service that holds them: where the
planner takes two spellings for one tag, the applier does too, and so does
the service, or the dry run would not be what happens (`str.casefold` took
`Maße` for `masse`, which no service does). Each source names its fold in
its capabilities (``Capabilities.fold``); the rules are compiled with it
(``CompileContext.fold``), and every applier, refine and undo takes it from
the plan's source (``capabilities.plan_fold``), so the plan and the applier
agree. What each service does is in its docs page (``docs/<source>.md``).
"""

from __future__ import annotations

import string
from collections.abc import Callable

from rulebot.memo import Memo

Fold = Callable[[str], str]  # a tag -> the key it compares by


def unicode_lower(tag: str) -> str:
    """Unicode lower-casing (``str.lower``), no case folding: `Maße` stays
    apart from `MASSE`. What Wallabag (PHP ``mb_convert_case`` to lower case)
    and Pocket (lower-cased tags) store, and the narrowest fold that is still
    case-insensitive, for services that keep every spelling apart."""
    return tag.lower()


_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)


def ascii_lower(tag: str) -> str:
    """Only `A`-`Z` become `a`-`z`: Shaarli merges tags with PHP's
    ``strtolower``, which since PHP 8.2 changes ASCII letters only, so `É`
    and `é` (or the Kelvin sign and `k`) are two tags there."""
    return tag.lower() if tag.isascii() else tag.translate(_ASCII_LOWER)


def _folder(fold: Fold) -> Callable[[tuple[str, ...]], frozenset[str]]:
    return lambda tags: frozenset(map(fold, tags))


TagSets = Memo[tuple[str, ...], frozenset[str]]
"""Tag lists -> their folded sets, for one fold: ``sets[tags]``. Libraries
reuse a few hundred tag combinations across thousands of items, and every
tag condition and action asks, so the planner's generated conditions read
``sets[i.tags]`` inline (``conditions.tags``). Bounded at 8,192 lists: in a
library whose items each have a tag of their own, a cache of 65,536 held 23
MiB of a plan's peak, and a miss costs a microsecond."""


_TAG_SETS: dict[Fold, TagSets] = {}


def tag_sets(fold: Fold) -> TagSets:
    """The one ``TagSets`` of ``fold`` (the folds are a handful of functions)."""
    found = _TAG_SETS.get(fold)
    if found is None:
        if len(_TAG_SETS) >= 64:  # folds made on the fly (tests): do not keep them all
            _TAG_SETS.clear()
        found = _TAG_SETS[fold] = Memo(_folder(fold))
    return found


def folded_tags(tags: tuple[str, ...], fold: Fold) -> frozenset[str]:
    """``tags`` folded, as a set (``tag_sets(fold)[tags]``)."""
    return tag_sets(fold)[tags]


def dashed_lower(tag: str) -> str:
    """Unicode lower-casing, the ends trimmed, and an inner space read as `-`:
    Linkding stores the tag `read later` as `read-later` (its
    ``sanitize_tag_name``) and tells tags apart case-insensitively (its
    Python ``str.lower`` de-duplication, and the database's ``iexact``)."""
    return tag.strip().replace(" ", "-").lower()


def loose_tag(tag: str) -> str:
    """The loosest key: full case folding, trimmed, an inner space read as
    `-`. Every fold above refines it (two tags any source takes for one have
    the same key), so the store finds with it every item a tag action on any
    source can touch; it decides no match itself."""
    return tag.strip().replace(" ", "-").casefold()
