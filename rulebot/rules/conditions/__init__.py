"""The condition vocabulary: one small class per word of ``where``.

Each condition carries its JSON-Schema fragment (``schema``), compiles its
YAML value once, and ``test``s an item, returning a ``Check``: whether it
matched and how that reads as a reason ("tag read-later", "added 41d ago
(older than 30d)").

Matching is three-valued: ``True``, ``False`` or ``None`` for "unknown"
(tags never fetched, a time that is "never", no word count). Unknown never
counts as a match, and ``not`` of unknown is still unknown, so missing data
cannot slip through a negation either.

The package: ``base`` (``Check``, ``Condition``, ``Env``, the registry),
one module per family of words, and ``where`` (``all``/``any``/``not`` and
compiling a ``where`` block). Adding a family is one new module whose
classes are decorated ``@condition``, plus its import below: the import is
the registration, and the order of the imports is the order of the words in
the JSON Schema (``python -m rulebot.rules.schema --write``).
"""

from __future__ import annotations

# The families, in schema order: importing one registers its words.
# isort: off
from rulebot.rules.conditions import tags
from rulebot.rules.conditions import flags
from rulebot.rules.conditions import service_flags
from rulebot.rules.conditions import times
from rulebot.rules.conditions import text
from rulebot.rules.conditions import content
from rulebot.rules.conditions import duplicates

# isort: on
from rulebot.rules.conditions.base import (
    REGISTRY,
    Check,
    Condition,
    Env,
    Predicate,
    Selector,
    Truth,
    condition,
)
from rulebot.rules.conditions.content import (
    WORDS_PER_MINUTE,
    Lang,
    NumberCondition,
    ReadingTime,
    Type,
    WordCount,
)
from rulebot.rules.conditions.duplicates import Duplicate
from rulebot.rules.conditions.flags import Favorite, Location, Private, Status
from rulebot.rules.conditions.service_flags import MarkedUnread, Shared
from rulebot.rules.conditions.tags import MARK, Tag, Tags, Untagged, only_marks
from rulebot.rules.conditions.text import Domain, TextCondition, Title, Url
from rulebot.rules.conditions.times import TimeCondition
from rulebot.rules.conditions.where import (
    COMBINATORS,
    AllOf,
    AnyOf,
    Not,
    Where,
    compile_part,
    compile_where,
    reasons,
    reasons_all,
    where_schema,
)

__all__ = [
    "COMBINATORS",
    "MARK",
    "REGISTRY",
    "WORDS_PER_MINUTE",
    "AllOf",
    "AnyOf",
    "Check",
    "Condition",
    "Domain",
    "Duplicate",
    "Env",
    "Favorite",
    "Lang",
    "Location",
    "MarkedUnread",
    "Not",
    "NumberCondition",
    "Predicate",
    "Private",
    "ReadingTime",
    "Selector",
    "Shared",
    "Status",
    "Tag",
    "Tags",
    "TextCondition",
    "TimeCondition",
    "Title",
    "Truth",
    "Type",
    "Untagged",
    "Url",
    "Where",
    "WordCount",
    "compile_part",
    "compile_where",
    "condition",
    "content",
    "duplicates",
    "flags",
    "only_marks",
    "reasons",
    "reasons_all",
    "service_flags",
    "tags",
    "text",
    "times",
    "where_schema",
]
