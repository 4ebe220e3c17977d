"""``rulebot explain ITEM_ID``: how every rule and condition sees one item."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rulebot.errors import RulebotError
from rulebot.library.item import STATUS_NAMES, Item
from rulebot.planning.grace import known_marks
from rulebot.planning.plan import iso
from rulebot.planning.planner import make_plan
from rulebot.rules.conditions import Check
from rulebot.safe import clipped, printable

# what one line shows of a library's text: the JSON form carries it whole
TITLE_WIDTH, URL_WIDTH, TEXT_WIDTH = 200, 300, 200

if TYPE_CHECKING:
    from rulebot.library.store import Store
    from rulebot.rules.config import Config


def _check_json(check: Check) -> dict[str, Any]:
    data: dict[str, Any] = {"condition": check.key, "matched": check.matched}
    if check.reason:
        data["seen"] = check.reason
    if check.children:
        data["children"] = [_check_json(c) for c in check.children]
    return data


def item_json(item: Item) -> dict[str, Any]:
    return {
        "item_id": item.item_id,
        "title": item.title,
        "url": item.url,
        "status": STATUS_NAMES.get(item.status, str(item.status)),
        "favorite": item.favorite,
        "tags": None if item.tags is None else list(item.tags),
        "time_added": item.time_added,
        "time_updated": item.time_updated,
        "time_read": item.time_read,
        "time_favorited": item.time_favorited,
        "word_count": item.word_count,
        "time_to_read": item.time_to_read,
        "lang": item.lang,
    }


# the details line of the text report: fields a source may not have
DETAILS = (
    ("word_count", "words"),
    ("time_to_read", "reading time"),
    ("lang", "lang"),
)
# the times line: unix seconds in the JSON report, dates in the text one
TIMES = (
    ("time_added", "added"),
    ("time_updated", "updated"),
    ("time_read", "read"),
    ("time_favorited", "favourited"),
)


def find_item(store: Store, wanted: str) -> Item:
    """An item by its id, or by its URL (given or resolved; failing an exact
    match, the same URL up to scheme, `www.`, tracking parameters …)."""
    item = store.get(wanted)
    if item is not None:
        return item
    if "://" in wanted:
        from rulebot.library.urls import normalise_url

        found = store.find_by_url(wanted)
        if found is not None:
            return found
        key = normalise_url(wanted)
        same = [
            i
            for i in store.items()
            if key in {normalise_url(u) for u in (i.given_url, i.resolved_url) if u}
        ]
        if same:
            return min(same, key=lambda i: i.sort_key)
        raise RulebotError(f"no item with the URL {printable(wanted)} in the store {store.path}")
    raise RulebotError(f"no item {printable(repr(wanted))} in the store {store.path}")


def explain_item(config: Config, store: Store, item_id: str, now: int) -> dict[str, Any]:
    item = find_item(store, item_id)
    item_id = item.item_id
    # Plan with every enabled rule, watching the item as each rule sees it:
    # an earlier rule may have archived or re-tagged it (the simulated state).
    seen: dict[str, Item | None] = {}

    def observe(rule: Any, state: Any) -> None:
        seen[rule.name] = state.by_id.get(item_id)

    enabled = [r for r in config.rules if r.enabled]
    plan = make_plan(
        enabled,
        store.items(),
        now,
        observe=observe,
        timezone=config.timezone,
        ordered=True,
        marks=known_marks(config, store),
    )
    planned = [a for a in plan.actions if a.item_id == item_id]
    rules = []
    for rule in config.rules:
        entry: dict[str, Any] = {"rule": rule.name, "enabled": rule.enabled}
        current = seen.get(rule.name, item)
        if any(a.account_wide for a in rule.actions):
            entry["matched"] = None
            entry["account_wide"] = True
            entry["note"] = "acts on tags or URLs across the library, not on single items"
        elif current is None:
            entry["matched"] = None
            entry["note"] = "an earlier rule deleted the item"
        elif rule.where is None:
            entry["matched"] = True
            entry["conditions"] = []
        else:
            check = rule.where.test(current, now)
            entry["matched"] = check.matched
            entry["conditions"] = [_check_json(c) for c in check.children]
        if current is not None and current != item:
            entry["note"] = "sees the item as earlier rules left it"
        entry["actions"] = [a.send for a in planned if a.rule == rule.name]
        rules.append(entry)
    return {"item": item_json(item), "rules": rules}


def _verdict(matched: bool | None) -> str:
    return {True: "yes", False: "no", None: "unknown"}[matched]


def _shown(value: Any) -> str:
    """A field as a person reads it: yes/no, "unknown" for data the source lacks."""
    if value is None:
        return "unknown"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return clipped(value, TEXT_WIDTH)


def _when(value: Any) -> str:
    """A time as a person reads it: a UTC date, "never" (0: not read, not
    favourited), "unknown" (the source does not say)."""
    if value is None:
        return "unknown"
    if not isinstance(value, int) or isinstance(value, bool):
        return clipped(value, TEXT_WIDTH)
    if value == 0:
        return "never"
    try:
        return iso(value)
    except (OverflowError, OSError, ValueError):  # a time past year 9999
        return str(value)


def _lines(conditions: list[dict[str, Any]], depth: int) -> list[str]:
    lines = []
    for cond in conditions:
        pad = "    " * depth
        seen = f": {clipped(cond['seen'], TEXT_WIDTH)}" if cond.get("seen") else ""
        lines.append(f"{pad}[{_verdict(cond['matched']):>7}] {cond['condition']}{seen}")
        lines.extend(_lines(cond.get("children", []), depth + 1))
    return lines


def explain_text(report: dict[str, Any]) -> str:
    item = report["item"]
    tags = "unknown" if item["tags"] is None else (", ".join(item["tags"]) or "(none)")
    lines = [
        f"item {clipped(item['item_id'], 80)}: {clipped(item['title'], TITLE_WIDTH)}",
        f"  {clipped(item['url'], URL_WIDTH)}",
        f"  status {item['status']}, favorite {_shown(item['favorite'])}, "
        f"tags {clipped(tags, TEXT_WIDTH)}",
        "  " + ", ".join(f"{label} {_when(item[key])}" for key, label in TIMES),
        "  " + ", ".join(f"{label} {_shown(item[key])}" for key, label in DETAILS),
        "",
    ]
    for rule in report["rules"]:
        state = "" if rule["enabled"] else " (disabled)"
        if rule.get("account_wide"):
            lines.append(f"rule {rule['rule']}{state}: account-wide")
        else:
            lines.append(f"rule {rule['rule']}{state}: matched {_verdict(rule['matched'])}")
        if rule.get("note"):
            lines.append(f"    {rule['note']}")
        lines.extend(_lines(rule.get("conditions", []), 1))
        for send in rule["actions"]:
            extra = f" {clipped(send['tags'], TEXT_WIDTH)}" if "tags" in send else ""
            lines.append(f"    → {send['action']}{extra}")
        if rule["matched"] and not rule["actions"] and rule["enabled"]:
            lines.append("    → nothing to do (already so, or held back by limit/keep_newest)")
    return "\n".join(lines)
