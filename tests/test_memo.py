"""``Memo``: the bounded caches generated conditions read with a subscript.
What they hold may be forgotten at any moment; nothing may change because
of it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rulebot.library import item as item_module
from rulebot.library.tagcase import tag_sets, unicode_lower
from rulebot.memo import Memo
from rulebot.planning.planner import make_plan, one_pass_ok, plan_in_passes
from rulebot.rules.conditions import tags as tags_module
from tests.helpers import examples

from .helpers import NOW
from .test_one_pass import chunked, marked_items, rule_sets


def test_a_memo_computes_once_and_forgets_everything_past_its_bound() -> None:
    calls: list[int] = []

    def square(n: int) -> int:
        calls.append(n)
        return n * n

    memo: Memo[int, int] = Memo(square, kept=3)
    assert [memo[n] for n in (1, 2, 1, 3, 2)] == [1, 4, 1, 9, 4]
    assert calls == [1, 2, 3]  # each key computed once while remembered
    assert memo[4] == 16  # the fourth key: the three before are forgotten
    assert len(memo) == 1
    assert memo[1] == 1
    assert calls == [1, 2, 3, 4, 1]


def test_tag_sets_are_one_memo_per_fold() -> None:
    sets = tag_sets(unicode_lower)
    assert sets is tag_sets(unicode_lower)
    assert sets[("News", "NEWS", "é")] == frozenset({"news", "é"})


@settings(max_examples=examples(150), deadline=None)
@given(marked_items, rule_sets(), st.integers(1, 4))
def test_a_plan_is_the_same_when_every_cache_keeps_one_entry(items, rules, size) -> None:
    """The planner's caches (folded tags, hosts, grace marks) forget all
    they hold past their bound, in the middle of a chunk or a rule: a plan
    made with each keeping a single entry is the plan made with them whole."""
    assert one_pass_ok(rules)
    ordered = sorted(items, key=lambda i: i.sort_key)
    live = [i for i in ordered if not i.is_deleted]
    roomy = plan_in_passes(rules, chunked(live, size), NOW).dumps()
    memos: list[Memo[Any, Any]] = [
        item_module.hosts,
        tags_module.only_marks_of,
        tag_sets(unicode_lower),
    ]
    with pytest.MonkeyPatch.context() as patch:
        for memo in memos:
            memo.clear()
            patch.setattr(memo, "kept", 1)
        assert plan_in_passes(rules, chunked(live, size), NOW).dumps() == roomy
        assert make_plan(rules, ordered, NOW).dumps() == roomy
    assert all(memo.kept == 8192 for memo in memos)
