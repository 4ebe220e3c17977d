"""What the rules mean, computed apart from the source: the planner's own
simulated library (before a source refines the plan into what it can send),
and the comparisons every conformance test makes."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from rulebot.library.item import ARCHIVED, Item
from rulebot.library.store import Store
from rulebot.planning.plan import PlannedAction
from rulebot.planning.usage import period_usage
from rulebot.rules.actions import from_send
from rulebot.rules.capabilities import Capabilities
from rulebot.rules.config import load_config
from rulebot.run.pipeline import plan_rules, select_rules

from .backends import STORE, Backend, Held


@dataclass(frozen=True)
class RuleText:
    """One rule of a generated rules file and what it asks of a source."""

    yaml: str
    fields: frozenset[str] = frozenset()
    actions: frozenset[str] = frozenset()

    def fits(self, caps: Capabilities) -> bool:
        return self.actions <= caps.actions and not (self.fields & caps.refuses)


def rules_file(rules: Sequence[RuleText], caps: Capabilities) -> str:
    body = "".join(rule.yaml for rule in rules if rule.fits(caps))
    return f"limits: {{max_actions: 1000, max_deletes: 1000}}\nrules:\n{body}"


def mirror(path: Path = STORE) -> dict[str, Item]:
    with Store.open(path) as store:
        return {item.item_id: item for item in store.items()}


def held_of(item: Item, caps: Capabilities) -> Held:
    """An item of rulebot's in ``Held``'s terms; a field the service has no
    notion of at all (Shaarli's status) is ``None``, as ``Backend.held`` says."""
    return Held(
        item.url,
        tuple(sorted(item.tags or ())),
        item.status == ARCHIVED if "status" not in caps.refuses else None,
        item.favorite if "favorite" not in caps.refuses else None,
    )


def simulated(config: Path, now: int) -> tuple[dict[str, Item], list[PlannedAction]]:
    """The library as the rules leave it (by item id) and the plan that gets
    there: the planner's plan, before the source refines it, played on the
    mirror by the vocabulary's own semantics. Run right after a sync, so the
    mirror is the service. An added URL becomes an item ``added:URL``."""
    loaded = load_config(config)
    rules = select_rules(loaded)
    with Store.open(STORE) as store:
        items = store.items()
        usage = period_usage(loaded, store, [r.name for r in rules], now)
    plan = plan_rules(loaded, rules, items, now, usage, ordered=True)
    library = {item.item_id: item for item in items}
    for planned in plan.actions:
        action = from_send(planned.send)
        if planned.name == "add":
            url = str(planned.send["url"])
            tags = tuple(t for t in str(planned.send.get("tags", "")).split(",") if t)
            new = Item(f"added:{url}", given_url=url, tags=tags, favorite=None, time_added=now)
            library[new.item_id] = new
            continue
        if action.account_wide:
            effect = action.on_library(library, set(), now)
        else:
            effect = action.on_item(library[str(planned.item_id)], now)
        for changed in effect.changed if effect else ():
            if changed.is_deleted:
                library.pop(changed.item_id, None)
            else:
                library[changed.item_id] = changed
    return library, list(plan.actions)


def intended(config: Path, now: int, caps: Capabilities) -> dict[str, Held]:
    """``simulated``'s library in ``Held``'s terms, by URL."""
    library, _ = simulated(config, now)
    return {item.url: held_of(item, caps) for item in library.values()}


def replanned(config: Path, library: Mapping[str, Item], now: int) -> list[tuple[str, ...]]:
    """What the planner would plan next on ``library``, in id-free terms."""
    loaded = load_config(config)
    items = sorted(library.values(), key=lambda item: item.sort_key)
    plan = plan_rules(loaded, select_rules(loaded), items, now, ordered=True)
    return sorted(id_free(a, library) for a in plan.actions)


def id_free(planned: PlannedAction, library: Mapping[str, Item]) -> tuple[str, ...]:
    """An action as (rule, action, the item's URL, its other fields): comparable
    across a library whose ids a server assigned and one the model did."""
    send = planned.send
    item = library.get(str(send.get("item_id"))) if "item_id" in send else None
    url = item.url if item is not None else str((planned.item or {}).get("url", ""))
    rest = tuple(f"{k}={send[k]}" for k in sorted(send) if k not in ("time", "item_id", "action"))
    return (planned.rule, str(send["action"]), url, *rest)


def folded(library: Mapping[str, Held]) -> dict[str, Held]:
    return {url: held.folded() for url, held in library.items()}


def assert_holds(backend: Backend, expected: Mapping[str, Held], *, what: str) -> None:
    """The service holds ``expected`` (tags compared case-insensitively; a
    favourite of ``None`` in ``expected`` is not compared: a new item's)."""
    actual = folded(backend.by_url())
    wanted = folded(expected)
    assert sorted(actual) == sorted(wanted), (
        f"{what} on {backend.name}: the service holds {sorted(actual)}, "
        f"the rules meant {sorted(wanted)}"
    )
    for url, held in wanted.items():
        got = actual[url]
        if held.favorite is None:
            got = Held(got.url, got.tags, got.archived, None)
        assert got == held, f"{what} on {backend.name}: {url} holds {got}, the rules meant {held}"


def plan_sends(out: str) -> list[dict[str, object]]:
    """A JSON plan's or result's actions, without their clock."""
    document = json.loads(out)
    if "actions" in document:
        actions = document["actions"]
    else:  # a result: its outcomes in plan order
        states = ("succeeded", "failed", "skipped")
        actions = sorted((o for s in states for o in document[s]), key=lambda o: o["index"])
    return [{k: v for k, v in a["send"].items() if k != "time"} for a in actions]
