"""What each source can tell rulebot about an item, and what it can do.

A condition on a field the source never provides matches nothing (unknown is
never a match), which is easy to miss: ``validate`` warns about it, naming the
rule, the condition and the source. An action the source cannot do is an
error. Each condition class names the item field(s) it reads (``fields``);
each source here names the fields it provides and the actions it performs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from typing import Any

from rulebot.library.tagcase import Fold, ascii_lower, dashed_lower, unicode_lower
from rulebot.rules import actions as actions_vocab
from rulebot.rules import conditions as conditions_vocab

JsonPath = tuple[str | int, ...]

# Every field a condition can read (Item attribute names).
ALL_FIELDS = frozenset(
    {
        "url",
        "title",
        "tags",
        "status",
        "favorite",
        "time_added",
        "time_updated",
        "time_read",
        "time_favorited",
        "word_count",
        "time_to_read",
        "lang",
        "is_article",
        "has_video",
        "has_image",
    }
)
# Fields only some services have: never in ALL_FIELDS (so a source built as
# ``ALL_FIELDS - lacks`` does not claim them); a source that has one lists it.
# Shaarli's private flag; Readwise Reader's location (new, later, shortlist, archive,
# feed); Linkding's own unread ("read later") and shared flags
SERVICE_FIELDS = frozenset({"private", "location", "unread", "shared"})
# Actions only some services can do (Linkding's own flags): never in
# ALL_ACTIONS, so every other source refuses them at validate, naming itself.
SERVICE_ACTIONS = frozenset(actions_vocab.FLAG_ACTIONS)
ALL_ACTIONS = frozenset(actions_vocab.REGISTRY) - SERVICE_ACTIONS


@dataclass(frozen=True)
class Setting:
    """What a source can do only when its config block sets ``key`` (Raindrop's
    archive: only with an archive collection named): the ``fields`` and
    ``actions`` it brings, and ``because``, why they are absent without it."""

    key: str
    fields: frozenset[str]
    actions: frozenset[str]
    because: str


@dataclass(frozen=True)
class Capabilities:
    """One kind of source: the item fields it provides, the actions it can do."""

    kind: str
    fields: frozenset[str]
    actions: frozenset[str]
    batches: bool  # several actions travel in one request (Pocket's /v3/send)
    label: str = ""  # how a message names it: "the local library"
    # why a field is missing, for the warning: field -> "a Pocket export has no ... column"
    missing_because: Mapping[str, str] | None = None
    # fields the service has no notion of at all (Shaarli: no read status, no
    # favourite): a condition on them is an error naming the source, not a warning
    refuses: frozenset[str] = frozenset()
    refused_because: str = ""
    # an incremental sync sees items deleted on the service; where it cannot
    # (no change feed reports deletions), this says what finds them instead
    deletions_found_by: str | None = None
    # the service stores every tag lower-cased (a tag written `Video` reads `video`)
    tags_lowercased: bool = False
    # how two tags compare (rulebot.library.tagcase): case-insensitively, never more
    # loosely than the service (each docs/<source>.md says what it does)
    fold: Fold = unicode_lower
    # how the service stores a tag it is given (``stored_tag``): lower-cased,
    # trimmed, a leading ``#`` dropped …; the plan shows that spelling
    stores: tuple[str, ...] = ()
    # the service may keep only this many characters of a tag (the plan says so)
    tag_chars: int | None = None
    # what only a setting of the source's block brings (``configured``); the
    # capabilities in ``SOURCES`` are those with every setting made
    settings: tuple[Setting, ...] = ()
    # an action absent for want of a setting -> what to set (``configured`` fills it)
    unset: Mapping[str, str] | None = None
    # what the source's config block makes of it beyond ``settings`` (Readwise:
    # the favourite it maps), applied first by ``configured``
    configure: Callable[[Any], Capabilities] | None = None

    def configured(self, block: Mapping[str, Any] | None) -> Capabilities:
        """What this source can do with its config block ``block``: a field a
        missing setting would bring is refused (an error naming the setting),
        its actions are absent."""
        caps = self if self.configure is None else self.configure(block)
        missing = [
            s for s in caps.settings if not isinstance(block, Mapping) or block.get(s.key) is None
        ]
        if not missing:
            return caps
        fields = frozenset().union(*(s.fields for s in missing))
        actions = frozenset().union(*(s.actions for s in missing))
        return replace(
            caps,
            fields=caps.fields - fields,
            actions=caps.actions - actions,
            refuses=caps.refuses | fields,
            refused_because="; ".join(s.because for s in missing),
            unset={action: s.because for s in missing for action in s.actions},
        )

    @property
    def name(self) -> str:
        return self.label or f"the {self.kind} source"

    def stored_tag(self, tag: str) -> str:
        """The spelling the service will store for ``tag`` ("" : it drops it)."""
        for step in self.stores:
            tag = _STORES[step](tag)
        return tag


# what a service does to a tag it is given, named so docs and plans can say it
_STORES: Mapping[str, Callable[[str], str]] = {
    "trim": str.strip,
    "lower": str.lower,
    "no-leading-hashes": lambda tag: tag.lstrip("#"),
    "no-leading-dash": lambda tag: tag[1:] if tag.startswith("-") else tag,
    "dashes": lambda tag: tag.replace(" ", "-"),
}


# What a Pocket export (CSV/zip or ril_export.html) carries: url, title, tags,
# status and time added; nothing else, so the local library never knows the rest.
_EXPORT_LACKS = {
    "favorite": "a Pocket export has no favourite column",
    "time_read": "a Pocket export has no read time",
    "time_favorited": "a Pocket export has no favourited time",
    "word_count": "a Pocket export has no word count",
    "time_to_read": "a Pocket export has no reading time",
    "lang": "a Pocket export has no language",
    "is_article": "a Pocket export does not say what an item is",
    "has_video": "a Pocket export does not say what an item is",
    "has_image": "a Pocket export does not say what an item is",
}

LOCAL = Capabilities(
    kind="local",
    fields=ALL_FIELDS - _EXPORT_LACKS.keys(),
    actions=ALL_ACTIONS,
    batches=False,
    label="the local library",
    missing_because=_EXPORT_LACKS,
)
POCKET = Capabilities(
    kind="pocket",
    fields=ALL_FIELDS,
    actions=ALL_ACTIONS,
    batches=True,
    label="Pocket",
    tags_lowercased=True,  # pocket-api.md: the later server lowercased, trimmed and cut tags
    stores=("trim", "lower"),
    tag_chars=25,  # the later server's cut (an older one kept more): said, not done
)

# Karakeep: archived, favourited, tags, created/modified dates; nothing else
_KARAKEEP_LACKS = {
    "time_read": "Karakeep keeps no read time",
    "time_favorited": "Karakeep keeps no favourited time",
    "word_count": "Karakeep's API has no word count",
    "time_to_read": "Karakeep's API has no reading time",
    "lang": "Karakeep's API has no language",
    "is_article": "Karakeep's API does not say what a link is",
    "has_video": "Karakeep's API does not say what a link is",
    "has_image": "Karakeep's API does not say what a link is",
}
KARAKEEP = Capabilities(
    kind="karakeep",
    fields=ALL_FIELDS - _KARAKEEP_LACKS.keys(),
    actions=ALL_ACTIONS,
    batches=False,
    label="Karakeep",
    missing_because=_KARAKEEP_LACKS,
    stores=("trim", "no-leading-hashes"),  # karakeep.md: normalizeTagName on attach
)

# Wallabag: archived/starred with their times, tags, dates, reading time, language
_WALLABAG_LACKS = {
    "word_count": "Wallabag keeps a reading time, not a word count",
    "is_article": "Wallabag's API does not say what an entry is",
    "has_video": "Wallabag's API does not say what an entry is",
    "has_image": "Wallabag's API does not say what an entry is",
}
WALLABAG = Capabilities(
    kind="wallabag",
    fields=ALL_FIELDS - _WALLABAG_LACKS.keys(),
    actions=ALL_ACTIONS,
    batches=False,
    label="Wallabag",
    missing_because=_WALLABAG_LACKS,
    deletions_found_by="a full scan every `full_scan_every` (default 7d), or `sync --full`",
    tags_lowercased=True,
    stores=("trim", "lower"),  # wallabag.md: adding tags lower-cases and trims them
)

# Shaarli: tags-only bookmarks. No read status and no favourite at all: rules
# on them are errors; the private flag is Shaarli's own field.
_SHAARLI_REFUSES = frozenset({"status", "favorite", "time_read", "time_favorited"})
_SHAARLI_LACKS = {
    "word_count": "Shaarli keeps no word count",
    "time_to_read": "Shaarli keeps no reading time",
    "lang": "Shaarli keeps no language",
    "is_article": "Shaarli does not say what a link is",
    "has_video": "Shaarli does not say what a link is",
    "has_image": "Shaarli does not say what a link is",
}
SHAARLI = Capabilities(
    kind="shaarli",
    fields=(ALL_FIELDS - _SHAARLI_LACKS.keys() - _SHAARLI_REFUSES) | {"private"},
    actions=ALL_ACTIONS - {"archive", "readd", "favorite", "unfavorite"},
    batches=False,
    label="Shaarli",
    missing_because=_SHAARLI_LACKS,
    refuses=_SHAARLI_REFUSES,
    refused_because="Shaarli keeps tagged bookmarks only: no read/archived status, no favourite",
    fold=ascii_lower,  # its tag list merges spellings with strtolower: ASCII only
    stores=("trim", "no-leading-dash"),  # shaarli.md: trimmed, one leading - stripped
)

SOURCES: dict[str, Capabilities] = {
    "local": LOCAL,
    "pocket": POCKET,
    "karakeep": KARAKEEP,
    "shaarli": SHAARLI,
}
SOURCES["wallabag"] = WALLABAG

# Readeck: archived, marked, labels, created/updated, word count, reading
# time, language and type (article/photo/video); no read or favourited time
_READECK_LACKS = {
    "time_read": "Readeck keeps a read progress, not a read time",
    "time_favorited": "Readeck keeps no favourited time",
}
READECK = Capabilities(
    kind="readeck",
    fields=ALL_FIELDS - _READECK_LACKS.keys(),
    actions=ALL_ACTIONS,
    batches=False,
    label="Readeck",
    missing_because=_READECK_LACKS,
)
SOURCES["readeck"] = READECK

# Readwise Reader: location (archive = archived, new/later/shortlist = unread,
# kept for the `location` condition), tags, saved/updated times, the archive
# move as a read time, word count, reading time, category. No favourite at all,
# unless the config maps one (`readwise_caps`).
_READWISE_LACKS = {
    "lang": "Readwise Reader keeps no language",
    "has_image": "Readwise Reader does not say whether a document has images",
}
_READWISE_REFUSES = frozenset({"favorite", "time_favorited"})
READWISE = Capabilities(
    kind="readwise",
    fields=(ALL_FIELDS - _READWISE_LACKS.keys() - _READWISE_REFUSES) | {"location"},
    actions=ALL_ACTIONS - {"favorite", "unfavorite"},
    batches=False,
    label="Readwise Reader",
    missing_because=_READWISE_LACKS,
    refuses=_READWISE_REFUSES,
    refused_because="it has no favourite; map one in the readwise block with "
    "`favorite: shortlist` (read only) or `favorite: tag:NAME`",
    deletions_found_by="a full scan every `full_scan_every` (default 7d), or `sync --full`",
)


def readwise_caps(favorite: object) -> Capabilities:
    """Readwise Reader's capabilities with the config's ``favorite`` mapping:
    none (no favourite at all), ``shortlist`` (the shortlist is the favourites:
    a condition can read it, but the API cannot move a document there, so
    ``favorite``/``unfavorite`` stay refused) or ``tag:NAME`` (that tag is the
    favourite mark: read and written)."""
    if not isinstance(favorite, str) or not (
        favorite == "shortlist" or favorite.startswith("tag:")
    ):
        return READWISE
    fields = READWISE.fields | {"favorite"}
    actions = READWISE.actions | ({"favorite", "unfavorite"} if favorite != "shortlist" else set())
    return replace(
        READWISE,
        fields=fields,
        actions=frozenset(actions),
        refuses=frozenset({"time_favorited"}),
        refused_because="it keeps no favourited time",
    )


# what the readwise block maps the favourite onto decides the rest
READWISE = replace(
    READWISE,
    configure=lambda block: readwise_caps(
        block.get("favorite") if isinstance(block, Mapping) else None
    ),
)
SOURCES["readwise"] = READWISE
# Raindrop.io: bookmarks in collections, `important` for the favourite, a type
# (article/video/image …); no read state at all: archived means "in the archive
# collection the config names", and without one there is no status (raindrop.md §12)
_RAINDROP_LACKS = {
    "time_read": "Raindrop.io keeps no read time",
    "time_favorited": "Raindrop.io keeps no favourited time",
    "word_count": "Raindrop.io keeps no word count",
    "time_to_read": "Raindrop.io keeps no reading time",
    "lang": "Raindrop.io keeps no language on a bookmark",
}
RAINDROP = Capabilities(
    kind="raindrop",
    fields=ALL_FIELDS - _RAINDROP_LACKS.keys(),
    actions=ALL_ACTIONS,
    batches=False,
    label="Raindrop.io",
    missing_because=_RAINDROP_LACKS,
    deletions_found_by="a full scan every `full_scan_every` (default 7d), or `sync --full`",
    # its tag list groups case variants (`Chinese` and `chinese` are one entry);
    # each bookmark keeps the spelling it was given, stored as sent
    fold=unicode_lower,
    settings=(
        Setting(
            "archive_collection",
            frozenset({"status"}),
            frozenset({"archive", "readd"}),
            "Raindrop.io has no read state: set raindrop.archive_collection to the "
            "collection that means archived",
        ),
    ),
)
SOURCES["raindrop"] = RAINDROP

# Linkding: archived (its own list), its unread and shared flags, tags,
# added/modified dates. No favourite at all (no field, no endpoint): rules on
# it are errors. Its change feed (`modified_since`) misses deletions and tag
# renames made in its web UI: every sync checks the totals and the tag list
# for them and scans in full when they disagree (docs/linkding.md).
_LINKDING_REFUSES = frozenset({"favorite", "time_favorited"})
_LINKDING_LACKS = {
    "time_read": "Linkding keeps no read or archived time",
    "word_count": "Linkding keeps no word count",
    "time_to_read": "Linkding keeps no reading time",
    "lang": "Linkding keeps no language",
    "is_article": "Linkding does not say what a bookmark is",
    "has_video": "Linkding does not say what a bookmark is",
    "has_image": "Linkding does not say what a bookmark is",
}
LINKDING = Capabilities(
    kind="linkding",
    fields=(ALL_FIELDS - _LINKDING_LACKS.keys() - _LINKDING_REFUSES) | {"unread", "shared"},
    actions=(ALL_ACTIONS - {"favorite", "unfavorite"}) | SERVICE_ACTIONS,
    batches=False,
    label="Linkding",
    missing_because=_LINKDING_LACKS,
    refuses=_LINKDING_REFUSES,
    refused_because="Linkding has no favourite: no field, no endpoint; a tag can stand for one",
    # case-insensitive like its Python de-duplication and the image's ICU SQLite,
    # and `read later` is `read-later` there (it turns inner spaces into `-`)
    fold=dashed_lower,
    stores=("trim", "dashes"),  # linkding.md: sanitize_tag_name on tag_names
)
SOURCES["linkding"] = LINKDING


def fold_of(kind: str | None) -> Fold:
    """How the source of this kind compares tags (``plan.source["kind"]``)."""
    caps = SOURCES.get(kind or "local")
    return caps.fold if caps is not None else unicode_lower


def plan_fold(source: Mapping[str, Any] | None) -> Fold:
    """How the library a plan is for (its ``source``) compares tags."""
    kind = source.get("kind") if isinstance(source, Mapping) else None
    return fold_of(kind if isinstance(kind, str) else None)


def source_kind(document: Mapping[str, Any]) -> str:
    """The source a config uses: its source block's name, else the local library."""
    return next((kind for kind in SOURCES if kind != "local" and kind in document), "local")


def for_document(document: Mapping[str, Any]) -> Capabilities:
    """The capabilities of the config's source, as its block's settings make them."""
    kind = source_kind(document)
    return SOURCES[kind].configured(document.get(kind))


@dataclass(frozen=True)
class Gap:
    """A condition that reads only fields the source never provides."""

    path: JsonPath  # inside the rule's `where`, to the condition's key
    key: str
    missing: tuple[str, ...]
    refused: bool = False  # the source has no such notion: an error, not a warning


def condition_gaps(where: Any, caps: Capabilities, path: JsonPath = ()) -> Iterator[Gap]:
    """Walk a (schema-valid) ``where`` value: every condition its source cannot answer."""
    if not isinstance(where, Mapping):
        return
    for key, value in where.items():
        if key in ("all", "any") and isinstance(value, list):
            for index, member in enumerate(value):
                yield from condition_gaps(member, caps, (*path, key, index))
        elif key == "not":
            yield from condition_gaps(value, caps, (*path, key))
        elif key in conditions_vocab.REGISTRY:
            reads = conditions_vocab.REGISTRY[key].fields
            if reads and not reads & caps.fields:
                refused = bool(reads & caps.refuses)
                yield Gap((*path, key), key, tuple(sorted(reads)), refused)


def gap_message(rule: str, gap: Gap, caps: Capabilities) -> str:
    if gap.refused:
        return (
            f"rule {rule}: {caps.name} has no `{gap.key}`"
            + (f" ({caps.refused_because})" if caps.refused_because else "")
            + "; remove this condition or use another source"
        )
    because = caps.missing_because or {}
    why = next((because[f] for f in gap.missing if f in because), "")
    return (
        f"rule {rule}: `{gap.key}` is never known in {caps.name}"
        + (f" ({why})" if why else "")
        + ", so this condition never matches"
    )


def action_message(rule: str, action: str, caps: Capabilities) -> str:
    can = ", ".join(sorted(caps.actions)) or "none"
    why = (caps.unset or {}).get(action)
    if why:
        return f"rule {rule}: {caps.name} cannot do `{action}` here ({why})"
    return f"rule {rule}: {caps.name} cannot do `{action}`; it can do: {can}"
