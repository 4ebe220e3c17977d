from __future__ import annotations

from rulebot.plan import Outcome, Result
from rulebot.planner import make_plan
from rulebot.render import plan_markdown, plan_text, result_markdown, result_text

from .helpers import NOW, item, rule


def big_plan():  # type: ignore[no-untyped-def]
    library = [item(i, tags=("x",), given_title=f"Title {i}") for i in range(1, 41)]
    rules = [
        rule("tagger", {"tag": "x"}, [{"tags_add": ["y"]}, "archive"]),
        rule("d", None, ["delete"]),
    ]
    return make_plan(rules, library, NOW)


def test_large_plans_collapse_per_rule_with_counts() -> None:
    text = plan_text(big_plan(), max_lines=5)
    lines = text.splitlines()
    assert lines[0] == "tagger  (80 actions)"
    assert lines[1] == '  ~ tags_add y "Title 1"'
    assert "  … and 75 more (38 archive, 37 tags_add); use --format json or -v to see all" in lines
    assert '  - delete "Title 1"' in lines
    assert (
        lines[-1]
        == "Plan: 120 actions — 40 archive, 40 delete, 40 tags_add — on 40 items by 2 rules"
    )
    assert len(plan_text(big_plan(), max_lines=None).splitlines()) == 120 + 2 * 2 + 1


def test_colour_codes_only_when_asked() -> None:
    assert "\033[" not in plan_text(big_plan())
    assert "\033[1m" in plan_text(big_plan(), colour=True)


def test_markdown_summary_table() -> None:
    markdown = plan_markdown(big_plan())
    assert markdown.splitlines()[0].startswith("### rulebot plan")
    assert "| `tagger` | 80 | 40 archive, 40 tags_add |" in markdown
    assert "<details>" in markdown


def test_result_renderings_list_failures_and_skips() -> None:
    plan = big_plan()
    outcomes = [Outcome(i, a, "succeeded") for i, a in enumerate(plan.actions)]
    outcomes[0] = Outcome(0, plan.actions[0], "failed", "Invalid/non-existent URL (422)")
    outcomes[1] = Outcome(1, plan.actions[1], "skipped", "the item changed since the plan was made")
    result = Result(outcomes, NOW, requests=7, source={"kind": "pocket", "base_url": "x"})
    text = result_text(result)
    assert 'failed  tagger: tags_add y "Title 1": Invalid/non-existent URL (422)' in text
    assert (
        text.splitlines()[-1] == "Applied: 118 succeeded, 1 failed, 1 skipped as stale (7 requests)"
    )
    assert "❌ apply failed" in result_markdown(result).splitlines()[0]
