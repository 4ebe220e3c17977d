from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from rulebot.planning.plan import Outcome, Result
from rulebot.planning.planner import make_plan
from rulebot.planning.render import plan_markdown, plan_text, result_markdown, result_text
from tests.helpers import examples

from .helpers import NOW, item, rule


def big_plan():
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
    assert lines[1] == '  ~ tags_add y "Title 1"  [1]'
    assert "  … and 75 more (38 archive, 37 tags_add); use --format json or -v to see all" in lines
    assert '  - delete "Title 1"  [1]  (after tagger)' in lines
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
    assert 'failed  tagger: tags_add y "Title 1" [1]: Invalid/non-existent URL (422)' in text
    assert text.splitlines()[-1] == "Applied: 118 succeeded, 1 failed, 1 skipped (7 requests)"
    assert "❌ apply failed" in result_markdown(result).splitlines()[0]


def test_chained_actions_name_the_earlier_rule_and_first_touches_do_not() -> None:
    library = [item(1, tags=("x",)), item(2)]
    rules = [
        rule("archive-x", {"tag": "x"}, ["archive"]),
        rule("purge", {"status": "archived"}, ["delete"]),
        rule("fresh", {"tag": "y"}, ["archive"]),
    ]
    lines = plan_text(make_plan(rules, library, NOW)).splitlines()
    assert '  ~ archive "Item 1"  [1]' in lines
    assert '  - delete "Item 1"  [1]  (after archive-x)' in lines
    # `fresh` matched nothing: the plan names it
    assert lines[-2].startswith("Matched no item: fresh")


def test_account_wide_actions_say_how_many_items_they_touch() -> None:
    library = [item(i, tags=("js",)) for i in range(1, 4)]
    rules = [rule("rename", None, [{"tag_rename": {"old_tag": "js", "new_tag": "javascript"}}])]
    text = plan_text(make_plan(rules, library, NOW))
    assert "  ~ tag_rename js → javascript  (changes 3 items)" in text.splitlines()


HOSTILE = "evil\x1b[2J\x1b]0;pwned\x07 </details><img src=x> [link](http://x) @octocat"


def test_titles_never_reach_the_terminal_or_markdown_raw() -> None:
    library = [item(1, tags=("x",), given_title=HOSTILE.encode().decode("unicode_escape"))]
    plan = make_plan([rule("r", {"tag": "x"}, ["archive"])], library, NOW)
    text = plan_text(plan)
    assert "\x1b" not in text.replace("\\x1b", "")  # no raw ESC
    assert "\\x1b[2J" in text and "\\x07" in text
    markdown = plan_markdown(plan)
    assert "\x1b" not in markdown and "\x07" not in markdown
    assert "</details><img" not in markdown and "&lt;img src=x&gt;" in markdown
    assert "[link](http" not in markdown and "\\[link\\]" in markdown
    assert "@octocat" not in markdown and "@\u2060octocat" in markdown
    assert markdown.count("</details>") == 1


def test_markdown_stays_under_a_github_comment_with_totals_intact() -> None:
    library = [item(i, tags=("x",), given_title="T" * 120 + str(i)) for i in range(1, 3001)]
    plan = make_plan([rule("r", {"tag": "x"}, ["archive", "favorite"])], library, NOW)
    markdown = plan_markdown(plan)
    assert len(markdown) < 65_536
    assert (
        "**Plan: 6000 actions — 3000 archive, 3000 favorite — on 3000 items by 1 rule**" in markdown
    )
    assert "| `r` | 6000 | 3000 archive, 3000 favorite |" in markdown
    assert "more not shown here" in markdown and "plan --out plan.json" in markdown
    assert markdown.rstrip().endswith("</details>")
    outcomes = [Outcome(i, a, "skipped", "the item changed") for i, a in enumerate(plan.actions)]
    result = result_markdown(Result(outcomes, NOW, source={"kind": "local"}))
    assert len(result) < 65_536 and "6000 skipped" in result and "more failed or skipped" in result


def test_a_stale_apply_collapses_its_skips() -> None:
    plan = big_plan()
    outcomes = [Outcome(i, a, "skipped", "the item changed") for i, a in enumerate(plan.actions)]
    result = Result(outcomes, NOW, source={"kind": "local"})
    lines = result_text(result, max_lines=5).splitlines()
    assert len(lines) == 5 + 2
    assert lines[-2] == "… and 115 more skipped (115 the item changed); use -v to see all"
    assert len(result_text(result, max_lines=None).splitlines()) == 121


def spooled(plan_rules, library):
    """The one-pass plan read back from disk (``spill=0``), in chunks of 7."""
    from rulebot.planning.planner import plan_in_passes

    ordered = sorted(library, key=lambda i: i.sort_key)
    chunks = [ordered[n : n + 7] for n in range(0, len(ordered), 7)]
    return plan_in_passes(plan_rules, chunks, NOW, spill=0)


def test_a_plan_read_back_from_disk_renders_as_the_one_in_memory() -> None:
    from rulebot.planning.spool import SpooledActions

    library = [item(i, tags=("x",), given_title=f"Title {i}") for i in range(1, 41)]
    rules = [
        rule("tagger", {"tag": "x"}, [{"tags_add": ["y"]}, "archive"]),
        rule("d", None, ["delete"]),
    ]
    disk, memory = spooled(rules, library), make_plan(rules, library, NOW)
    assert isinstance(disk.actions, SpooledActions)  # the path under test
    for lines in (5, None):
        assert plan_text(disk, max_lines=lines) == plan_text(memory, max_lines=lines)
    for budget in (60_000, 1_500):  # everything, and cut short
        assert plan_markdown(disk, budget=budget) == plan_markdown(memory, budget=budget)
    assert "(after tagger)" in plan_text(disk)


@settings(max_examples=examples(60), deadline=None)
@given(st.lists(st.sampled_from(["succeeded", "failed", "skipped"]), min_size=120, max_size=120))
def test_compact_outcomes_read_as_the_list_of_outcomes(states) -> None:
    """A local apply's outcomes (a byte each, the actions left in the plan,
    on disk or not) give the same result document, renderings, counts and
    lookups as the list of ``Outcome`` the server appliers build."""
    from rulebot.planning.plan import Outcomes

    library = [item(i, tags=("x",), given_title=f"Title {i}") for i in range(1, 41)]
    rules = [
        rule("tagger", {"tag": "x"}, [{"tags_add": ["y"]}, "archive"]),
        rule("d", None, ["delete"]),
    ]
    memory = make_plan(rules, library, NOW)
    for plan in (memory, spooled(rules, library)):
        compact = Outcomes(plan.actions)
        listed = []
        for index, (state, action) in enumerate(zip(states, memory.actions, strict=True)):
            error = None if state == "succeeded" else f"error {index % 3}"
            compact.add(state, error)
            listed.append(Outcome(index, action, state, error))
        one, other = Result(compact, NOW), Result(listed, NOW)
        assert one.dumps() == other.dumps()
        assert list(compact) == listed and compact[-1] == listed[-1]
        assert compact[3:6] == listed[3:6]
        for state in ("succeeded", "failed", "skipped"):
            assert one.count(state) == other.count(state)
            assert list(one.each(state)) == list(other.each(state))
        assert result_text(one, max_lines=5) == result_text(other, max_lines=5)
        assert result_markdown(one, budget=2_000) == result_markdown(other, budget=2_000)
