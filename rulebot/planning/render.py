"""Renderers: the same Plan/Result data as text, JSON or Markdown.

Everything that came from a library (titles, URLs, tags, a server's error
text) is escaped for where it goes: control characters never reach a
terminal (``safe.printable``), and HTML, Markdown and ``@mentions`` never
reach a pull-request comment as markup (``md_text``).
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TextIO

from rulebot.planning.plan import Outcome, Plan, Result
from rulebot.planning.planned import PlannedAction, decode_line, line_keys
from rulebot.safe import clipped, printable

MAX_LINES_PER_RULE = 25
# A GitHub comment holds 65,536 characters and a step summary 1 MiB; a
# Markdown plan or result stays under the smaller, whatever its size.
MARKDOWN_BUDGET = 60_000


def use_colour(stream: TextIO) -> bool:
    """Colour only on a terminal, and never with NO_COLOR (no-color.org)."""
    if "NO_COLOR" in os.environ or os.environ.get("TERM") == "dumb":
        return False
    return bool(getattr(stream, "isatty", lambda: False)())


class Style:
    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def _wrap(self, code: str, text: str) -> str:
        return f"\033[{code}m{text}\033[0m" if self.enabled else text

    def bold(self, text: str) -> str:
        return self._wrap("1", text)

    def dim(self, text: str) -> str:
        return self._wrap("2", text)

    def red(self, text: str) -> str:
        return self._wrap("31", text)

    def green(self, text: str) -> str:
        return self._wrap("32", text)

    def yellow(self, text: str) -> str:
        return self._wrap("33", text)


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _counts(names: Iterable[str]) -> str:
    counted = names if isinstance(names, Counter) else Counter(names)
    return ", ".join(
        f"{n} {name}" for name, n in sorted(counted.items(), key=lambda p: (-p[1], p[0]))
    )


def plan_footer(plan: Plan) -> str:
    if not plan.actions and not plan.rules:
        return "Plan: no changes. No rule was planned (none due, or none enabled)."
    if not plan.actions:
        return "Plan: no changes. The library already satisfies every rule."
    tally = plan.tally()
    rules = len(+tally.rules)
    items = tally.items
    text = f"Plan: {plural(len(plan), 'action')} — {_counts(tally.names)}"
    text += f" — on {plural(items, 'item')}" if items else ""
    text += f" by {plural(rules, 'rule')}"
    return text


def silent_note(plan: Plan) -> str | None:
    """Rules whose `where` matched nothing: a typo, or data the source lacks."""
    silent = plan.silent_rules
    if not silent:
        return None
    return f"Matched no item: {', '.join(silent)} (check the conditions with `rulebot explain`)"


@dataclass
class RuleActions:
    """One rule's actions in a plan: how many of each, and the first few
    with their index in the plan (a first run's plan has 100k+ actions,
    and may be read back from disk: nothing here holds them all)."""

    count: int = 0
    names: Counter[str] = field(default_factory=Counter)
    shown: list[tuple[int, PlannedAction]] = field(default_factory=list)


def by_rule(actions: Iterable[PlannedAction], keep: int | None = None) -> dict[str, RuleActions]:
    """The plan's rules in order of their first action; ``keep``: how many
    actions of each to keep (all when None)."""
    grouped: dict[str, RuleActions] = defaultdict(RuleActions)
    lines = getattr(actions, "lines", None)
    if lines is None:
        for index, action in enumerate(actions):
            group = grouped[action.rule]
            group.count += 1
            group.names[action.name] += 1
            if keep is None or len(group.shown) < keep:
                group.shown.append((index, action))
        return grouped
    for index, line in enumerate(lines()):  # a plan on disk: only what is shown is decoded
        rule, name, _ = line_keys(line) or _keys(decode_line(line))
        group = grouped[rule]
        group.count += 1
        group.names[name] += 1
        if keep is None or len(group.shown) < keep:
            group.shown.append((index, decode_line(line)))
    return grouped


def _keys(action: PlannedAction) -> tuple[str, str, str | None]:
    return action.rule, action.name, action.item_id


def _rules_and_items(actions: Iterable[PlannedAction]) -> Iterator[tuple[str, str | None]]:
    lines = getattr(actions, "lines", None)
    if lines is None:
        return ((action.rule, action.item_id) for action in actions)
    keys = (line_keys(line) or _keys(decode_line(line)) for line in lines())
    return ((rule, item_id) for rule, _, item_id in keys)


def chained(plan: Plan, shown: Iterable[tuple[int, PlannedAction]]) -> dict[int, str]:
    """Action index (of the ``shown`` actions) → the earlier rule that
    already changed its item in this plan.

    Rules see the library as earlier rules left it, so one rule's archive can
    make an item match a later rule's delete; the plan shows that chain.
    Only the items of the actions shown are followed."""
    shown = [(index, action) for index, action in shown if action.item_id is not None]
    wanted = {action.item_id for _, action in shown}
    first_rule: dict[str | None, str] = {}
    for rule, item_id in _rules_and_items(plan.actions):
        if item_id in wanted:
            first_rule.setdefault(item_id, rule)
    return {
        index: first_rule[action.item_id]
        for index, action in shown
        if first_rule.get(action.item_id, action.rule) != action.rule
    }


def _touches(action: PlannedAction) -> str:
    """How many items an account-wide action touches (its planning reason)."""
    if action.item is not None or not action.reasons:
        return ""
    return f"  ({printable(action.reasons[0])})"


def plan_text(
    plan: Plan, *, colour: bool = False, max_lines: int | None = MAX_LINES_PER_RULE
) -> str:
    style = Style(colour)
    grouped = by_rule(plan.actions, max_lines)
    after = chained(plan, (shown for group in grouped.values() for shown in group.shown))
    lines: list[str] = []
    for rule, group in grouped.items():
        lines.append(style.bold(f"{rule}") + style.dim(f"  ({plural(group.count, 'action')})"))
        for index, action in group.shown:
            mark = style.red("-") if action.destructive else style.green("~")
            line = f"  {mark} {clipped(action.label(), 100)}"
            if action.item_id is not None:
                line += style.dim(f"  [{printable(action.item_id)}]")
            line += _touches(action)
            earlier = after.get(index)
            if earlier:
                line += style.yellow(f"  (after {earlier})")
            lines.append(line)
        hidden = group.names - Counter(action.name for _, action in group.shown)
        if hidden:
            lines.append(
                style.dim(
                    f"  … and {hidden.total()} more ({_counts(hidden)}); use --format json or -v to see all"
                )
            )
        lines.append("")
    note = silent_note(plan)
    if note:
        lines.append(style.yellow(note))
    lines.append(style.bold(plan_footer(plan)))
    if plan.pacing and plan.actions:
        lines.append(pacing_text(plan.pacing))
    return "\n".join(lines)


# -- Markdown -----------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+!|~>-])")


def md_text(text: str) -> str:
    """Library text as inert Markdown: no HTML, links, images, emphasis, or
    @mentions (a word joiner after ``@`` keeps GitHub from notifying)."""
    text = " ".join(printable(text).split())
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = _MD_SPECIAL.sub(r"\\\1", text)
    return text.replace("@", "@\u2060")


def _code(text: str) -> str:
    """A rule name in backticks (names are `[a-z0-9_-]`, but a saved plan is input)."""
    return "`" + printable(text).replace("`", "'") + "`"


class _Budget:
    """Lines while they fit; the caller says what was left out."""

    def __init__(self, limit: int) -> None:
        self.left = limit

    def take(self, line: str) -> bool:
        cost = len(line) + 1
        if cost > self.left:
            return False
        self.left -= cost
        return True


def _fit(lines: Iterator[str], budget: _Budget) -> tuple[list[str], int]:
    """The lines that fit, and how many did not."""
    kept: list[str] = []
    dropped = 0
    for line in lines:
        if dropped or not budget.take(line):
            dropped += 1
        else:
            kept.append(line)
    return kept, dropped


def _changes(n: int) -> str:
    return plural(n, "change")


def plan_status(plan: Plan, *, refused: str | None = None) -> str:
    """The one-glance status that leads a Markdown plan (a CI step summary)."""
    if refused:
        return "⛔ refused by a safety limit"
    if not plan.actions:
        return "✅ no changes"
    return f"📝 {_changes(len(plan))} planned"


MORE_IN_JSON = (
    "_… and {n} more not shown here (a comment holds 65,536 characters); "
    "the JSON plan (`rulebot plan --out plan.json`) has every action._"
)


def plan_markdown(
    plan: Plan,
    *,
    title: str = "rulebot plan",
    refused: str | None = None,
    budget: int = MARKDOWN_BUDGET,
) -> str:
    head = [f"### {title}: {plan_status(plan, refused=refused)}", ""]
    if refused:
        reason = refused.removeprefix("safety limit: ")
        head += [f"**Refused by a safety limit:** {printable(reason)}", ""]
    head += [f"**{plan_footer(plan)}**", ""]
    if plan.pacing and plan.actions:
        head += [md_text(pacing_text(plan.pacing)), ""]
    if plan.silent_rules:
        names = ", ".join(_code(rule) for rule in plan.silent_rules)
        head += [f"Matched no item: {names} (check the conditions with `rulebot explain`)", ""]
    if not plan.actions:
        return "\n".join(head) + "\n"
    head += ["| rule | actions | breakdown |", "|---|---:|---|"]
    # a listed action takes 16 characters or more: no more of a rule's can fit
    grouped = by_rule(plan.actions, keep=budget // 16)
    for rule, group in grouped.items():
        head.append(f"| {_code(rule)} | {group.count} | {_counts(group.names)} |")
    head += ["", "<details><summary>All actions</summary>", ""]
    tail = ["", "</details>"]
    room = _Budget(budget - sum(len(line) + 1 for line in head + tail) - len(MORE_IN_JSON) - 20)
    after = chained(plan, (shown for group in grouped.values() for shown in group.shown))

    def detail() -> Iterator[str]:
        for rule, group in grouped.items():
            yield f"#### {_code(rule)}"
            for index, action in group.shown:
                line = f"- {md_text(clipped(action.label(), 140))}"
                if action.item_id is not None:
                    line += f" `[{printable(action.item_id)}]`"
                earlier = after.get(index)
                if earlier:
                    line += f" _(after {_code(earlier)})_"
                yield line

    shown, dropped = _fit(detail(), room)
    dropped += sum(group.count - len(group.shown) for group in grouped.values())
    more = [MORE_IN_JSON.format(n=dropped)] if dropped else []
    return "\n".join(head + shown + more + tail) + "\n"


def result_text(
    result: Result, *, colour: bool = False, max_lines: int | None = MAX_LINES_PER_RULE
) -> str:
    """Failures in full; skips collapsed like the plan (``-v`` shows all)."""
    style = Style(colour)
    lines: list[str] = []
    for outcome in result.each("failed"):
        lines.append(style.red(f"failed  {_outcome_line(outcome)}"))
    rest: Counter[str] = Counter()  # the skips not shown, by reason
    shown = 0
    for outcome in result.each("skipped"):
        if max_lines is None or shown < max_lines:
            lines.append(style.yellow(f"skipped {_outcome_line(outcome)}"))
            shown += 1
        else:
            rest[outcome.error or "skipped"] += 1
    if rest:
        more = f"… and {rest.total()} more skipped ({_counts(rest)}); use -v to see all"
        lines.append(style.dim(more))
    lines.append(style.bold(result_footer(result)))
    return "\n".join(lines)


def _outcome_line(outcome: Outcome) -> str:
    action = outcome.action
    where = f" [{printable(action.item_id)}]" if action.item_id is not None else ""
    return f"{action.rule}: {clipped(action.label(), 90)}{where}: {printable(outcome.error)}"


def result_footer(result: Result) -> str:
    parts = [f"{result.count('succeeded')} succeeded"]
    if result.count("failed"):
        parts.append(f"{result.count('failed')} failed")
    if result.count("skipped"):
        parts.append(f"{result.count('skipped')} skipped")
    text = "Applied: " + ", ".join(parts)
    if result.source.get("kind") not in (None, "local"):
        text += f" ({plural(result.requests, 'request')})"
    return text


def result_status(result: Result) -> str:
    """The one-glance status that leads a Markdown result (a CI step summary)."""
    failed, skipped, succeeded = (result.count(s) for s in ("failed", "skipped", "succeeded"))
    if failed:
        return f"❌ apply failed ({failed} of {len(result.outcomes)} actions failed)"
    if not succeeded:
        return "✅ no changes" if not skipped else "⚠️ nothing applied, all skipped"
    also = f", {skipped} skipped" if skipped else ""
    return f"✅ {_changes(succeeded)} applied{also}"


def result_markdown(
    result: Result, *, title: str = "rulebot apply", budget: int = MARKDOWN_BUDGET
) -> str:
    head = [f"### {title}: {result_status(result)}", "", f"**{result_footer(result)}**", ""]
    room = _Budget(budget - sum(len(line) + 1 for line in head) - 2 * len(MORE_IN_JSON) - 60)
    lines: list[str] = []
    rows = [("failed", o) for o in result.failed] + [("skipped", o) for o in result.skipped]
    if rows:
        table = (
            f"| {state} | {_code(o.action.rule)} | {md_text(clipped(o.action.label(), 80))} "
            f"| {md_text(o.error or '')} |"
            for state, o in rows
        )
        shown, dropped = _fit(table, room)
        lines += ["| state | rule | action | why |", "|---|---|---|---|", *shown]
        if dropped:
            lines += ["", f"_… and {dropped} more failed or skipped; `--format json` lists all._"]
        lines.append("")
    if result.count("succeeded"):
        listing = (
            f"- {_code(o.action.rule)}: {md_text(clipped(o.action.label(), 120))}"
            for o in result.each("succeeded")
        )
        shown, dropped = _fit(listing, room)
        lines += ["<details><summary>Succeeded</summary>", "", *shown]
        if dropped:
            lines.append(f"- _… and {dropped} more; `--format json` lists all._")
        lines += ["", "</details>"]
    return "\n".join(head + lines) + "\n"


# -- pacing (a hosted service's rate limits: rulebot.sources.pacing) ----------------


def duration_text(seconds: float) -> str:
    """``75`` -> ``1 min 15 s``; ``7200`` -> ``2 h``."""
    seconds = math.ceil(seconds)
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        minutes, rest = divmod(seconds, 60)
        return f"{minutes} min" + (f" {rest} s" if rest else "")
    hours, rest = divmod(seconds, 3600)
    return f"{hours} h" + (f" {rest // 60} min" if rest // 60 else "")


def pacing_text(pacing: Mapping[str, Any]) -> str:
    """A plan's ``pacing`` as one or two sentences for its footer (read from a
    plan file: whatever is not a count is left out)."""
    limits = _counts_in(pacing.get("limits"))
    by_class = _counts_in(pacing.get("by_class"))
    parts = [
        f"{n} {printable(name)}" + (f" at {limits[name]}/min" if name in limits else "")
        for name, n in sorted(by_class.items())
    ]
    requests = _count(pacing.get("requests"))
    text = f"Requests: {requests}" + (f" ({', '.join(parts)})" if parts else "")
    text += f", about {duration_text(_count(pacing.get('seconds')))} at the rate limits."
    budget = pacing.get("time_budget")
    fits = _counts_in(pacing.get("fits"))
    if isinstance(budget, int) and fits.get("requests", requests) < requests:
        text += (
            f" The time budget ({duration_text(budget)}) fits about "
            f"{fits.get('actions', 0)} of these actions; the rest is left for the next run."
        )
    return text


def _count(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _counts_in(value: Any) -> dict[str, int]:
    if not isinstance(value, Mapping):
        return {}
    return {str(k): _count(v) for k, v in value.items()}
