"""The shared rate-limit pacing (rulebot.sources.pacing): the pacer's window,
the plan's estimate, and the apply's time budget (whole units, journaled)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema

from rulebot.library.store import Store
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.planning.render import plan_markdown, plan_text
from rulebot.sources.applier import Answer, apply_units
from rulebot.sources.pacing import (
    Pacer,
    TimeBudget,
    estimate,
    plan_estimate,
    plan_units,
)
from tests.helpers import NOW, item

ROOT = Path(__file__).resolve().parent.parent


class Clock:
    """A clock that only a sleep moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_the_pacer_keeps_a_class_within_its_limit_in_any_minute() -> None:
    clock = Clock()
    pacer = Pacer({"list": 3, "update": 50}, clock=clock, sleep=clock.sleep)
    sent = []
    for _ in range(7):
        pacer.wait("list")
        sent.append(clock.now)
    # three at once, then each next one a minute after the one three before
    # (a minute and MARGIN: a request sent first may arrive late)
    assert sent == [1000, 1000, 1000, 1061, 1061, 1061, 1122]
    for index in range(3, len(sent)):
        assert sent[index] - sent[index - 3] >= 60
    before = clock.now
    pacer.wait("update")  # another class: its own window
    pacer.wait("other")  # no limit declared: never held back
    assert clock.now == before


def test_a_pacer_with_a_sleep_that_does_not_move_the_clock_still_returns() -> None:
    slept: list[float] = []
    pacer = Pacer({"list": 1}, clock=lambda: 0.0, sleep=slept.append)
    for _ in range(3):
        pacer.wait("list")
    assert slept == [61.0, 122.0]  # each request has its own slot (a minute and MARGIN)


def test_the_estimate_counts_requests_per_class_and_the_time_they_take() -> None:
    costs = [(1, {"update": 1})] * 120 + [(2, {"list": 1, "update": 1})]
    result = estimate(costs, {"update": 50, "list": 20}, latency=0)
    assert result.by_class == {"update": 121, "list": 1}
    assert result.requests == 122
    assert result.actions == 122
    assert result.seconds == 122  # 50 now, 50 after a minute (and MARGIN), 21 after two
    data = result.to_json()
    assert data == {
        "requests": 122,
        "by_class": {"list": 1, "update": 121},
        "seconds": 122,
        "limits": {"list": 20, "update": 50},
    }


def test_with_a_time_budget_the_estimate_says_which_units_fit() -> None:
    costs = [(2, {"update": 1})] * 120
    result = estimate(costs, {"update": 50}, time_budget=90, latency=0)
    assert (result.fits_actions, result.fits_requests) == (200, 100)
    assert result.to_json()["fits"] == {"actions": 200, "requests": 100}
    assert result.to_json()["time_budget"] == 90


def test_plan_units_group_as_the_applier_does() -> None:
    actions = [
        _planned("r1", "1", "archive"),
        _planned("r1", "1", "tags_add", tags="x"),
        _planned("r2", "1", "delete"),
        PlannedAction("r3", {"action": "tag_delete", "tag": "x", "time": NOW}),
        PlannedAction("r3", {"action": "tag_delete", "tag": "y", "time": NOW}),
    ]
    assert [len(unit) for unit in plan_units(actions)] == [2, 1, 1, 1]
    result = plan_estimate(actions, lambda unit: {"update": 1}, {"update": 50})
    assert result.by_class == {"update": 4} and result.actions == 5


def test_a_time_budget_without_a_pacer_is_wall_time() -> None:
    budget = TimeBudget(0, None)
    assert not budget.fits({"update": 1})
    assert "time budget (0 s)" in budget.why
    assert TimeBudget(60, None).fits({})


def test_the_apply_sends_what_fits_and_journals_the_rest_whole_units(tmp_path: Path) -> None:
    clock = Clock()
    pacer = Pacer({"update": 2}, clock=clock, sleep=clock.sleep)
    store = Store.open(tmp_path / "s.db")
    store.upsert([item(i, tags=("a",)) for i in range(1, 5)])
    actions = []
    for i in range(1, 5):  # two actions per item: one unit each
        actions += [_planned("r", str(i), "archive"), _planned("r", str(i), "tags_add", tags="b")]
    plan = Plan(NOW, actions, source={"kind": "test"}, rules=["r"])
    sent: list[str] = []

    def perform(unit: Any, current: Any, library: Any) -> list[Answer]:
        pacer.wait("update")
        sent.append(unit[0][1].item_id)
        return [Answer(True)] * len(unit)

    budget = TimeBudget(30, pacer)  # two requests now; a third only after a minute
    result = apply_units(
        store,
        plan,
        perform,
        kind="test",
        concurrency=1,
        requests=lambda: len(sent),
        check_stale=False,
        budget=budget,
        cost=lambda unit: {"update": 1},
    )
    assert sent == ["1", "2"]
    states = [(o.action.item_id, o.state) for o in result.outcomes]
    assert states == [("1", "succeeded")] * 2 + [("2", "succeeded")] * 2 + [
        ("3", "skipped"),
        ("3", "skipped"),
        ("4", "skipped"),
        ("4", "skipped"),
    ]
    assert all("time budget (30 s)" in (o.error or "") for o in result.skipped)
    entries = store.journal_entries(store.journal_runs(1)[0].run_id)
    assert sorted({e.state for e in entries}) == ["confirmed", "skipped"]


def test_a_plan_with_pacing_round_trips_renders_and_validates(tmp_path: Path) -> None:
    pacing = estimate([(1, {"update": 1})] * 3, {"update": 50}, time_budget=60).to_json()
    plan = Plan(NOW, [_planned("r", str(i), "archive") for i in (1, 2, 3)], rules=["r"])
    plan.pacing = pacing
    path = tmp_path / "plan.json"
    path.write_text(plan.dumps())
    schema = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())
    jsonschema.validate(json.loads(path.read_text()), schema)
    again = Plan.read(path)
    assert again.pacing == pacing and len(again) == 3
    assert json.loads(path.read_text())["pacing"] == pacing
    assert "Requests: 3 (3 update at 50/min), about 1 s at the rate limits." in plan_text(plan)
    assert "Requests: 3" in plan_markdown(plan)
    # without pacing, the file is exactly as before
    plain = Plan(NOW, plan.actions, rules=["r"])
    assert "pacing" not in plain.dumps() and "Requests:" not in plan_text(plain)


def test_the_footer_says_what_the_time_budget_leaves_for_the_next_run() -> None:
    plan = Plan(NOW, [_planned("r", str(i), "archive") for i in range(1, 121)], rules=["r"])
    plan.pacing = estimate([(1, {"update": 1})] * 120, {"update": 50}, time_budget=60).to_json()
    text = plan_text(plan)
    assert "Requests: 120 (120 update at 50/min), about 2 min" in text
    assert "The time budget (1 min) fits about 50 of these actions" in text


def _planned(rule: str, item_id: str, action: str, **send: Any) -> PlannedAction:
    return PlannedAction(
        rule,
        {"action": action, "item_id": item_id, "time": NOW, **send},
        {
            "item_id": item_id,
            "title": f"Item {item_id}",
            "url": f"https://example.com/{item_id}",
            "time_updated": NOW,
        },
    )
