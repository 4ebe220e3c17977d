from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from rulebot.library.item import ARCHIVED
from rulebot.planning.plan import Plan, PlannedAction
from rulebot.planning.planned import compact
from rulebot.planning.planner import make_plan
from tests.helpers import examples

from .helpers import NOW, item, rule

ROOT = Path(__file__).resolve().parent.parent
SCHEMA = json.loads((ROOT / "schemas" / "plan.schema.json").read_text())


def every_action_plan() -> Plan:
    library = [
        item(1, tags=("js", "x")),
        item(2, status=ARCHIVED, favorite=True, tags=("old",)),
        item(3, tags=("y",)),
    ]
    rules = [
        rule("rename", None, [{"tag_rename": {"old_tag": "js", "new_tag": "javascript"}}]),
        rule("drop", None, [{"tag_delete": "old"}]),
        rule("add", None, [{"add": {"url": "https://n.org/", "title": "N", "tags": ["a"]}}]),
        rule(
            "one",
            {"url": {"glob": "*/1"}},
            ["archive", "favorite", {"tags_add": ["a"]}, {"tags_remove": ["x"]}, "tags_clear"],
        ),
        rule("two", {"url": {"glob": "*/2"}}, ["readd", "unfavorite", {"tags_replace": ["z"]}]),
        rule("three", {"url": {"glob": "*/3"}}, ["delete"]),
    ]
    return make_plan(rules, library, NOW, config_sha256="a" * 64)


def test_schema_is_valid_2020_12() -> None:
    Draft202012Validator.check_schema(SCHEMA)


def test_shipped_copy_matches() -> None:
    shipped = ROOT / "rulebot" / "schemas" / "plan.schema.json"
    assert shipped.read_text() == (ROOT / "schemas" / "plan.schema.json").read_text(), (
        "copy schemas/plan.schema.json to rulebot/schemas/"
    )


def test_a_plan_with_every_action_validates() -> None:
    plan = every_action_plan()
    assert {a.name for a in plan.actions} == {
        "tag_rename", "tag_delete", "add", "archive", "favorite", "tags_add", "tags_remove",
        "tags_clear", "readd", "unfavorite", "tags_replace", "delete",
    }  # fmt: skip
    errors = list(Draft202012Validator(SCHEMA).iter_errors(json.loads(plan.dumps())))
    assert errors == []


@pytest.mark.parametrize(
    "breakage",
    [
        lambda d: d.pop("format_version"),
        lambda d: d["actions"][0]["send"].pop("old_tag"),
        lambda d: d["actions"][3]["send"].update(item_id=123),
        lambda d: d["actions"][3].update(extra=1),
    ],
)
def test_schema_rejects_broken_plans(breakage) -> None:
    data = json.loads(every_action_plan().dumps())
    breakage(data)
    assert list(Draft202012Validator(SCHEMA).iter_errors(data))


def test_result_document_is_json_with_one_outcome_per_line() -> None:
    from rulebot.planning.plan import Outcome, Result

    plan = every_action_plan()
    outcomes = [Outcome(i, a, "succeeded") for i, a in enumerate(plan.actions)]
    outcomes[2] = Outcome(2, plan.actions[2], "failed", "Invalid URL (422)")
    result = Result(outcomes, NOW, requests=3)
    text = result.dumps()
    data = json.loads(text)
    assert data == result.to_json()  # the streamed document is the whole one
    assert data["format_version"] == 1 and data["requests"] == 3
    assert data["summary"] == {
        "planned": 12,
        "sent": 12,
        "succeeded": 11,
        "failed": 1,
        "skipped": 0,
    }
    assert data["failed"][0]["error"] == "Invalid URL (422)" and data["skipped"] == []
    assert len(text.splitlines()) == 12 + 12  # header lines + one line per outcome


@pytest.mark.parametrize("count", [1, 999, 1000, 1001, 2000])
def test_a_plan_is_one_action_per_line_at_any_size(count: int) -> None:
    # the writer joins lines a thousand at a time: no block edge may break it
    actions = [PlannedAction("r", {"action": "archive", "item_id": str(i)}) for i in range(count)]
    text = Plan(created_at=NOW, actions=actions).dumps()
    assert [a["send"]["item_id"] for a in json.loads(text)["actions"]] == [
        str(i) for i in range(count)
    ]
    action_lines = [line for line in text.splitlines() if line.startswith('    {"rule"')]
    assert len(action_lines) == count


@settings(max_examples=examples(100), deadline=None, derandomize=True)
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["r1", 'r"2', "ré"]),
            st.fixed_dictionaries(
                {"action": st.text()}, optional={"item_id": st.text(), "tags": st.text()}
            ),
            st.integers(0, 3),  # which shared item reference, 3: none
            st.sampled_from([(), ("tag a",), ('title contains "x"', "status unread")]),
        ),
        max_size=20,
    )
)
def test_plan_lines_read_like_each_action_encoded_whole(
    specs: list[tuple[str, dict[str, str], int, tuple[str, ...]]],
) -> None:
    # the writer encodes shared rules, item references and reasons once each
    refs = [
        {"item_id": str(n), "title": f"T{n} \u2014 \x01", "url": "u", "time_updated": n}
        for n in range(3)
    ]
    actions = [
        PlannedAction(rule_, send, None if ref == 3 else refs[ref], reasons_)
        for rule_, send, ref, reasons_ in specs
    ]
    text = Plan(created_at=NOW, actions=actions).dumps()
    lines = [line[4:].rstrip(",") for line in text.split("\n") if line.startswith('    {"rule"')]
    assert lines == [compact(action.to_json()) for action in actions]
    assert json.loads(text)["actions"] == [action.to_json() for action in actions]


SAVED_ACTIONS = st.lists(
    st.builds(
        PlannedAction,
        st.sampled_from(["r1", 'r"2', "ré"]),
        st.fixed_dictionaries(
            {"action": st.sampled_from(["archive", "delete", "tags_add"])},
            optional={"item_id": st.sampled_from(["1", "2", "3"]), "tags": st.text()},
        ),
        st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {"item_id": st.text(), "title": st.text(), "time_updated": st.integers(0, 9)}
            ),
        ),
        st.lists(st.text(), max_size=2).map(tuple),
        st.one_of(  # an undo's restore on the local library
            st.none(),
            st.fixed_dictionaries(
                {},
                optional={
                    "favorite": st.one_of(st.none(), st.booleans()),
                    "tags": st.lists(st.text(), max_size=2),
                    "time_read": st.one_of(st.none(), st.integers(0, 9)),
                },
            ),
        ),
    ),
    max_size=12,
)


@settings(max_examples=examples(60), deadline=None)
@given(SAVED_ACTIONS, st.sampled_from([0, 3, 20_000]))
def test_a_saved_plan_reads_back_as_it_was_written_a_line_at_a_time(
    tmp_path_factory: pytest.TempPathFactory, actions: list[PlannedAction], spill: int
) -> None:
    """A plan file in ``write``'s layout is read a line at a time (into the
    spool past ``SPILL`` actions: from the first, midway, never), and gives
    the plan that was written: texts with line and paragraph separators,
    quotes and control characters included."""
    from rulebot.planning import spool

    plan = Plan(NOW, actions, "abc", rules=["r1", "ré"], matched={"r1": 2})
    path = tmp_path_factory.mktemp("p") / "plan.json"
    path.write_text(plan.dumps(), encoding="utf-8")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(spool, "SPILL", spill)
        read = Plan.read(path)
    assert read.dumps() == plan.dumps()
    # streamed, not parsed whole: past SPILL actions they wait on disk
    assert isinstance(read.actions, spool.SpooledActions) == (len(actions) > spill)
    assert list(read.actions) == actions and read.matched == {"r1": 2}
    assert read.summary() == plan.summary() and read.deletes == plan.deletes
    # laid out another way (a reviewer's tool re-indented it): read whole
    path.write_text(json.dumps(plan.to_json(), indent=1), encoding="utf-8")
    assert Plan.read(path).dumps() == plan.dumps()


def test_a_broken_saved_plan_is_an_error_naming_the_file(tmp_path: Path) -> None:
    from rulebot.errors import RulebotError

    actions = [PlannedAction("r", {"action": "archive", "item_id": str(i)}) for i in range(3)]
    text = Plan(NOW, actions).dumps()
    lines = text.splitlines(keepends=True)
    at = next(n for n, line in enumerate(lines) if line.startswith("    {"))
    broken = {
        "cut short": text[: len(text) // 2],
        "no comma": "".join([*lines[:at], lines[at][:-2] + "\n", *lines[at + 1 :]]),
        "a send that is not an action": text.replace(
            '"send": {"action": "archive", "item_id": "1"}', '"send": 5'
        ),
        "trailing text": text + "x\n",
    }
    # a summary that is not an object is ignored (only its counts are read)
    odd = json.loads(text) | {"summary": [1]}
    (tmp_path / "odd.json").write_text(json.dumps(odd), encoding="utf-8")
    assert Plan.read(tmp_path / "odd.json").matched == {}
    for case, content in broken.items():
        path = tmp_path / "plan.json"
        path.write_text(content, encoding="utf-8")
        with pytest.raises(RulebotError, match=r"plan\.json: ") as error:
            Plan.read(path)
        assert "actions[1].send" in str(error.value) or "cannot read" in str(error.value), case


@settings(max_examples=examples(200), deadline=None)
@given(SAVED_ACTIONS, st.booleans())
def test_a_plan_lines_keys_are_read_off_it_as_decoding_it_reads_them(
    actions: list[PlannedAction], shuffled: bool
) -> None:
    """``line_keys`` (rule, action, item id without decoding the line) says
    what ``decode_line`` says, or nothing; and for the sends the planner
    makes (action first, item id next, or no item id at all) it says."""
    from rulebot.planning.planned import PlanLines, decode_line, line_keys

    line = PlanLines().line
    for action in actions:
        if shuffled:  # the item id elsewhere in the send, as a saved plan may have it
            action = PlannedAction(
                action.rule,
                dict(reversed(action.send.items())),
                action.item,
                action.reasons,
                action.restore,
            )
        text = line(action)
        keys = line_keys(text)
        decoded = decode_line(text)
        assert keys is None or keys == (decoded.rule, decoded.name, decoded.item_id)
        keys_first = list(action.send)[:2] == ["action", "item_id"]
        no_id = "item_id" not in action.send and (
            action.item is None or "item_id" not in action.item
        )
        if keys_first or (no_id and next(iter(action.send)) == "action"):
            assert keys == (action.rule, action.name, action.item_id)
