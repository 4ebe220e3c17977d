"""Times: ``added``, ``updated``, ``read``, ``favorited``, each
``{older_than, newer_than, before, after}`` on one of the item's times."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from rulebot.library.item import Item
from rulebot.rules.conditions.base import Check, Condition, Env, Truth, condition
from rulebot.rules.vocab import (
    DURATION_PATTERN,
    CompileContext,
    VocabError,
    format_age,
    parse_duration,
    parse_instant,
)

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
