"""Renderers: the same Plan/Result data as text, JSON or Markdown."""

from __future__ import annotations

import os
from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import TextIO

from rulebot.plan import Plan, PlannedAction, Result

MAX_LINES_PER_RULE = 25


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


def _counts(names: Iterable[str]) -> str:
    counted = Counter(names)
    return ", ".join(
        f"{n} {name}" for name, n in sorted(counted.items(), key=lambda p: (-p[1], p[0]))
    )


def plan_footer(plan: Plan) -> str:
    if not plan.actions:
        return "Plan: no changes. The library already satisfies every rule."
    summary = plan.summary()
    rules = len(summary["by_rule"])
    items = summary["items"]
    text = f"Plan: {len(plan)} action{'s' if len(plan) != 1 else ''} — {_counts(a.name for a in plan.actions)}"
    text += f" — on {items} item{'s' if items != 1 else ''}" if items else ""
    text += f" by {rules} rule{'s' if rules != 1 else ''}"
    return text


def by_rule(actions: Iterable[PlannedAction]) -> dict[str, list[PlannedAction]]:
    grouped: dict[str, list[PlannedAction]] = defaultdict(list)
    for action in actions:
        grouped[action.rule].append(action)
    return grouped


def plan_text(
    plan: Plan, *, colour: bool = False, max_lines: int | None = MAX_LINES_PER_RULE
) -> str:
    style = Style(colour)
    lines: list[str] = []
    for rule, actions in by_rule(plan.actions).items():
        lines.append(
            style.bold(f"{rule}")
            + style.dim(f"  ({len(actions)} action{'s' if len(actions) != 1 else ''})")
        )
        shown = actions if max_lines is None else actions[:max_lines]
        for action in shown:
            mark = style.red("-") if action.destructive else style.green("~")
            lines.append(f"  {mark} {_truncate(action.label(), 110)}")
        hidden = actions[len(shown) :]
        if hidden:
            lines.append(
                style.dim(
                    f"  … and {len(hidden)} more ({_counts(a.name for a in hidden)}); use --format json or -v to see all"
                )
            )
        lines.append("")
    lines.append(style.bold(plan_footer(plan)))
    return "\n".join(lines)


def _truncate(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _changes(n: int) -> str:
    return f"{n} change{'s' if n != 1 else ''}"


def plan_status(plan: Plan, *, refused: str | None = None) -> str:
    """The one-glance status that leads a Markdown plan (a CI step summary)."""
    if refused:
        return "⛔ refused by a safety limit"
    if not plan.actions:
        return "✅ no changes"
    return f"📝 {_changes(len(plan))} planned"


def plan_markdown(plan: Plan, *, title: str = "rulebot plan", refused: str | None = None) -> str:
    lines = [f"### {title}: {plan_status(plan, refused=refused)}", ""]
    if refused:
        reason = refused.removeprefix("safety limit: ")
        lines += [f"**Refused by a safety limit:** {reason}", ""]
    lines += [f"**{plan_footer(plan)}**", ""]
    if plan.actions:
        lines += ["| rule | actions | breakdown |", "|---|---:|---|"]
        for rule, actions in by_rule(plan.actions).items():
            lines.append(f"| `{rule}` | {len(actions)} | {_counts(a.name for a in actions)} |")
        lines += ["", "<details><summary>All actions</summary>", ""]
        for rule, actions in by_rule(plan.actions).items():
            lines.append(f"#### `{rule}`")
            lines.append("")
            for action in actions[:500]:
                lines.append(f"- {_md(_truncate(action.label(), 140))}")
            if len(actions) > 500:
                lines.append(f"- … and {len(actions) - 500} more")
            lines.append("")
        lines.append("</details>")
    return "\n".join(lines) + "\n"


def result_text(result: Result, *, colour: bool = False) -> str:
    style = Style(colour)
    lines: list[str] = []
    for outcome in result.failed:
        lines.append(
            style.red(
                f"failed  {outcome.action.rule}: {_truncate(outcome.action.label(), 90)}: {outcome.error}"
            )
        )
    for outcome in result.skipped:
        lines.append(
            style.yellow(
                f"skipped {outcome.action.rule}: {_truncate(outcome.action.label(), 90)}: {outcome.error}"
            )
        )
    lines.append(style.bold(result_footer(result)))
    return "\n".join(lines)


def result_footer(result: Result) -> str:
    parts = [f"{len(result.succeeded)} succeeded"]
    if result.failed:
        parts.append(f"{len(result.failed)} failed")
    if result.skipped:
        parts.append(f"{len(result.skipped)} skipped as stale")
    text = "Applied: " + ", ".join(parts)
    if result.source.get("kind") == "pocket":
        text += f" ({result.requests} request{'s' if result.requests != 1 else ''})"
    return text


def result_status(result: Result) -> str:
    """The one-glance status that leads a Markdown result (a CI step summary)."""
    if result.failed:
        return f"❌ apply failed ({len(result.failed)} of {len(result.outcomes)} actions failed)"
    if not result.succeeded:
        return "✅ no changes" if not result.skipped else "⚠️ nothing applied, all stale"
    skipped = f", {len(result.skipped)} skipped as stale" if result.skipped else ""
    return f"✅ {_changes(len(result.succeeded))} applied{skipped}"


def result_markdown(result: Result, *, title: str = "rulebot apply") -> str:
    lines = [f"### {title}: {result_status(result)}", "", f"**{result_footer(result)}**", ""]
    rows = [("failed", o) for o in result.failed] + [("skipped", o) for o in result.skipped]
    if rows:
        lines += ["| state | rule | action | why |", "|---|---|---|---|"]
        for state, outcome in rows:
            lines.append(
                f"| {state} | `{outcome.action.rule}` | {_md(_truncate(outcome.action.label(), 80))} | {_md(outcome.error or '')} |"
            )
        lines.append("")
    if result.succeeded:
        lines += ["<details><summary>Succeeded</summary>", ""]
        lines += [
            f"- `{o.action.rule}`: {_md(_truncate(o.action.label(), 120))}"
            for o in result.succeeded[:500]
        ]
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"
