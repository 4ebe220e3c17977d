"""What the rules already did this schedule period: the ``Usage`` a plan's
limits and the ``max_deletes`` belt are counted against, read from the
journal, and the grace marks the rules set."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from rulebot.planning.grace import known_marks
from rulebot.planning.limits import Usage
from rulebot.planning.planned import DESTRUCTIVE  # what max_deletes counts

if TYPE_CHECKING:
    from rulebot.library.store import Store
    from rulebot.rules.config import Config


def period_usage(config: Config, store: Store, rule_names: Iterable[str], now: int) -> Usage:
    """What each scheduled rule already did since its most recent cron time
    (and the grace marks the rules set: ``known_marks``).

    A rule's ``limit`` and the ``max_deletes`` belt hold per schedule period,
    whatever failed, crashed or was re-run in between: a rule whose run
    failed is due again (its last run is not recorded), and without this
    every retry would get a fresh budget. Counted from the journal by the
    plans' own clock (each action's ``time``); actions a crashed run sent
    without hearing back count as done (fail closed)."""
    from rulebot.rules.schedule import previous_fire

    by_name = {rule.name: rule for rule in config.rules}
    items: dict[str, int] = {}
    deletes = 0
    for name in rule_names:
        rule = by_name.get(name)
        if rule is None or not rule.schedule:
            continue
        since = previous_fire(rule.schedule, now, config.timezone)
        done = store.journal_done_since(name, since)
        items[name] = len({item_id for item_id, _ in done if item_id is not None})
        deletes += sum(1 for _, action in done if action in DESTRUCTIVE)
    limits = {r.name: r.limit for r in config.rules if r.limit is not None and r.name in items}
    return Usage(items=items, deletes=deletes, limits=limits, marks=known_marks(config, store))
