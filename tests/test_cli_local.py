"""End to end on the local library: the real CLI, a real SQLite file."""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rulebot.cli import main
from rulebot.library.item import Item
from rulebot.library.store import Store
from rulebot.planning.plan import Plan

from .helpers import clear_rulebot_env, rb

ROOT = Path(__file__).resolve().parent.parent

NOW = "2026-11-26T06:00:00Z"
T = 1795672800  # NOW in unix seconds
DAY = 86400

CONFIG = """\
version: 1
timezone: UTC
limits: {max_actions: 50, max_deletes: 2}
rules:
  - name: archive-stale
    where:
      tag: read-later
      status: unread
      added: {older_than: 30d}
    actions:
      - archive
      - tags_add: [auto-archived]
  - name: rename-js
    actions:
      - tag_rename: {old_tag: js, new_tag: javascript}
  - name: purge
    where: {status: archived, added: {older_than: 730d}}
    actions: [delete]
    limit: 1
tests:
  - name: archives stale read-later
    now: "2026-11-26T06:00:00Z"
    items:
      - {id: 1, url: "https://a.org/1", tags: [read-later], added: 45d}
      - {id: 2, url: "https://a.org/2", tags: [read-later], added: 5d}
    expect:
      - {action: archive, item: 1}
      - {action: tags_add, item: 1, tags: [auto-archived]}
"""

EXPORT_ROWS = [
    ("Old read later", "https://a.org/old", T - 45 * DAY, "read-later", "unread"),
    ("New read later", "https://a.org/new", T - 2 * DAY, "read-later|js", "unread"),
    ("Ancient one", "https://b.org/ancient", T - 900 * DAY, "", "archive"),
    ("Ancient two", "https://b.org/ancient2", T - 800 * DAY, "js", "archive"),
    ("Fresh", "https://c.org/fresh", T - DAY, "", "unread"),
]


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    (tmp_path / "rules.yaml").write_text(CONFIG)
    lines = ["title,url,time_added,tags,status"]
    lines += [",".join(map(str, row)) for row in EXPORT_ROWS]
    (tmp_path / "export.csv").write_text("\n".join(lines) + "\n")
    assert main(["import", "export.csv"]) == 0
    return tmp_path


def store_rows(path: Path) -> list[tuple]:
    with sqlite3.connect(path) as conn:
        items = conn.execute("SELECT * FROM items ORDER BY item_id").fetchall()
        tags = conn.execute("SELECT * FROM item_tags ORDER BY item_id, tag").fetchall()
    return items + tags


def items_by_url(workspace: Path) -> dict[str, Item]:
    with Store.open(workspace / ".rulebot" / "rulebot.db") as store:
        return {i.url: i for i in store.items()}


def test_plan_is_a_dry_run_and_exact(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = workspace / ".rulebot" / "rulebot.db"
    before = store_rows(db)
    code, out, _ = rb(capsys, "plan", "--now", NOW, "--format", "json")
    assert code == 0
    plan = json.loads(out)
    sends = [
        (a["rule"], a["send"]["action"], a.get("item", {}).get("url")) for a in plan["actions"]
    ]
    assert sends == [
        ("archive-stale", "archive", "https://a.org/old"),
        ("archive-stale", "tags_add", "https://a.org/old"),
        ("rename-js", "tag_rename", None),
        ("purge", "delete", "https://b.org/ancient"),
    ]
    assert plan["actions"][0]["send"]["time"] == T
    assert plan["summary"]["by_action"] == {
        "archive": 1,
        "delete": 1,
        "tag_rename": 1,
        "tags_add": 1,
    }
    assert store_rows(db) == before  # nothing changed


def test_text_plan_and_detailed_exitcode(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = rb(capsys, "plan", "--now", NOW, "--detailed-exitcode")
    assert code == 2
    assert (
        "Plan: 4 actions — 1 archive, 1 delete, 1 tag_rename, 1 tags_add — on 2 items by 3 rules"
        in out
    )
    assert '"Old read later"' in out
    assert "\033[" not in out  # no colour when not a terminal


def test_run_applies_then_second_run_plans_nothing_but_what_limit_held(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = rb(capsys, "run", "--now", NOW)
    assert code == 0, out
    assert "Applied: 4 succeeded" in out
    items = items_by_url(workspace)
    assert items["https://a.org/old"].status == 1
    assert "auto-archived" in (items["https://a.org/old"].tags or ())
    assert items["https://a.org/new"].tags == ("read-later", "javascript")
    assert "https://b.org/ancient" not in items
    # the limit held back the second ancient item; after that, nothing
    code, out, _ = rb(capsys, "run", "--now", NOW, "--format", "json")
    assert json.loads(out)["summary"]["succeeded"] == 1
    code, out, _ = rb(capsys, "plan", "--now", NOW, "--detailed-exitcode")
    assert code == 0 and "Plan: no changes" in out


def test_limits_refuse_with_exit_3_and_send_nothing(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    db = workspace / ".rulebot" / "rulebot.db"
    before = store_rows(db)
    code, out, err = rb(capsys, "run", "--now", NOW, "--max-actions", "3")
    assert code == 3
    assert "4 actions exceed max_actions 3" in err and "--max-actions 4" in err
    assert "Plan: 4 actions" in out  # the refused plan is still shown
    assert store_rows(db) == before
    code, _, _ = rb(capsys, "plan", "--now", NOW, "--max-actions", "3")
    assert code == 3
    code, _, _ = rb(capsys, "run", "--now", NOW, "--max-actions", "4")
    assert code == 0


def test_plan_out_then_apply_skips_stale(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, _ = rb(capsys, "plan", "--now", NOW, "--out", "plan.json")
    assert code == 0
    plan = json.loads((workspace / "plan.json").read_text())
    assert plan["format_version"] == 1 and len(plan["actions"]) == 4
    # the library changes after planning: the ancient item is re-tagged
    with Store.open(workspace / ".rulebot" / "rulebot.db") as store:
        ancient = store.find_by_url("https://b.org/ancient")
        assert ancient is not None
        store.upsert([ancient.replace(tags=("keep",), time_updated=T + 5)])
    code, out, _ = rb(capsys, "apply", "plan.json", "--format", "json")
    assert code == 0
    result = json.loads(out)
    assert result["summary"] == {"planned": 4, "sent": 3, "succeeded": 3, "failed": 0, "skipped": 1}
    assert result["skipped"][0]["error"] == "the item changed since the plan was made"
    assert "https://b.org/ancient" in items_by_url(workspace)


def test_apply_skips_an_item_whose_tags_or_favourite_changed_without_a_new_time(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a planned action depends on is checked again, not only
    ``time_updated``: another client may change an item without it."""
    assert rb(capsys, "plan", "--now", NOW, "--out", "plan.json")[0] == 0
    with Store.open(workspace / ".rulebot" / "rulebot.db") as store:
        ancient = store.find_by_url("https://b.org/ancient")
        stale = store.find_by_url("https://a.org/old")
        assert ancient is not None and stale is not None
        store.upsert([ancient.replace(tags=("keep",)), stale.replace(favorite=True)])
    code, out, _ = rb(capsys, "apply", "plan.json", "--format", "json")
    assert code == 0
    result = json.loads(out)
    assert result["summary"] == {"planned": 4, "sent": 1, "succeeded": 1, "failed": 0, "skipped": 3}
    assert [s["error"] for s in result["skipped"]] == [
        "the item's favourite changed since the plan was made",  # archive
        "the item's favourite changed since the plan was made",  # tags_add
        "the item's tags changed since the plan was made",  # delete
    ]
    assert "https://b.org/ancient" in items_by_url(workspace)


def test_a_plan_file_without_the_items_tags_status_and_favourite_still_applies(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Plans saved by an older rulebot carry only ``time_updated``: they stay
    valid and are checked by it alone."""
    from jsonschema import Draft202012Validator

    assert rb(capsys, "plan", "--now", NOW, "--out", "plan.json")[0] == 0
    saved = json.loads((workspace / "plan.json").read_text())
    item_refs = [a["item"] for a in saved["actions"] if "item" in a]
    assert {"status", "favorite", "tags"} <= set(item_refs[0])
    for ref in item_refs:
        for key in ("status", "favorite", "tags"):
            del ref[key]
    (workspace / "plan.json").write_text(json.dumps(saved))
    schema = json.loads((Path(__file__).parent.parent / "schemas/plan.schema.json").read_text())
    assert list(Draft202012Validator(schema).iter_errors(saved)) == []
    with Store.open(workspace / ".rulebot" / "rulebot.db") as store:
        stale = store.find_by_url("https://a.org/old")
        assert stale is not None
        store.upsert([stale.replace(favorite=True)])  # not something an old plan can see
    code, out, _ = rb(capsys, "apply", "plan.json", "--format", "json")
    assert code == 0
    assert json.loads(out)["summary"]["succeeded"] == 4


def test_tag_comparison_lower_cases_and_never_case_folds(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`masse` is not `Maße` (str.casefold says it is; no service does): a
    `tag_delete: masse` leaves `Maße` alone, a `tag: masse` rule does not see
    it, and `tags_add: [Maße]` on an item tagged `masse` adds it."""
    (workspace / "rules.yaml").write_text(
        "version: 1\nrules:\n"
        "  - name: mass\n    where: {tag: masse}\n    actions: [{tags_add: [Maße]}]\n"
        "  - name: drop\n    actions: [{tag_delete: masse}]\n"
    )
    with Store.open(workspace / ".rulebot" / "rulebot.db") as store:
        store.replace_all(
            [
                Item(item_id="1", given_url="https://m.org/1", tags=("Maße", "x")),
                Item(item_id="2", given_url="https://m.org/2", tags=("MASSE",)),
            ]
        )
    code, out, err = rb(capsys, "plan", "--now", NOW, "--format", "json")
    assert code == 0, err
    assert [
        (a["send"]["action"], a["send"].get("item_id")) for a in json.loads(out)["actions"]
    ] == [
        ("tags_add", "2"),
        ("tag_delete", None),
    ]
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    with Store.open(workspace / ".rulebot" / "rulebot.db") as store:
        assert {i.item_id: i.tags for i in store.items()} == {"1": ("Maße", "x"), "2": ("Maße",)}


def test_apply_refuses_a_plan_from_another_config(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rb(capsys, "plan", "--now", NOW, "--out", "plan.json")[0] == 0
    (workspace / "rules.yaml").write_text(CONFIG.replace("limit: 1", "limit: 2"))
    code, _, err = rb(capsys, "apply", "plan.json")
    assert code == 1 and "different config" in err and "--force" in err
    code, _, _ = rb(capsys, "apply", "plan.json", "--force")
    assert code == 0


def test_apply_of_a_broken_plan_file(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workspace / "bad.json").write_text('{"format_version": 1, "actions": [{}]}')
    code, _, err = rb(capsys, "apply", "bad.json")
    assert code == 1 and "not a rulebot plan file" in err and "Traceback" not in err
    (workspace / "worse.json").write_text("not json")
    code, _, err = rb(capsys, "apply", "worse.json")
    assert code == 1 and "worse.json" in err


def test_rule_selection(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = rb(capsys, "plan", "--now", NOW, "--rule", "rename-js", "--format", "json")
    assert code == 0
    assert [a["rule"] for a in json.loads(out)["actions"]] == ["rename-js"]
    code, _, err = rb(capsys, "plan", "--rule", "nope")
    assert code == 1 and "no rule named 'nope'" in err and "archive-stale" in err


def test_markdown_and_github_files(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    summary, output = workspace / "summary.md", workspace / "output.txt"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    code, out, _ = rb(capsys, "plan", "--now", NOW, "--format", "markdown")
    assert code == 0
    assert "| `archive-stale` | 2 | 1 archive, 1 tags_add |" in out
    assert summary.read_text().startswith("### rulebot plan")
    assert output.read_text() == "changes=4\n"


def test_explain(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with Store.open(workspace / ".rulebot" / "rulebot.db") as store:
        old = store.find_by_url("https://a.org/old")
    assert old is not None
    code, out, _ = rb(capsys, "explain", old.item_id, "--now", NOW, "--format", "json")
    assert code == 0
    report = json.loads(out)
    by_rule = {r["rule"]: r for r in report["rules"]}
    assert by_rule["archive-stale"]["matched"] is True
    assert [c["seen"] for c in by_rule["archive-stale"]["conditions"]] == [
        "tag read-later",
        "status unread",
        "added 45d ago (older than 30d)",
    ]
    assert [s["action"] for s in by_rule["archive-stale"]["actions"]] == ["archive", "tags_add"]
    assert by_rule["purge"]["matched"] is False
    code, out, _ = rb(capsys, "explain", old.item_id, "--now", NOW)
    assert "rule purge: matched no" in out
    # purge sees the item as archive-stale left it: archived, but not old enough
    assert "[    yes] status: status archived" in out
    assert "[     no] added: added 45d ago (older than 730d)" in out
    code, _, err = rb(capsys, "explain", "999")
    assert code == 1 and "no item '999'" in err


def test_config_tests_pass_and_fail_with_a_diff(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = rb(capsys, "test")
    assert code == 0 and "PASS archives stale read-later" in out
    broken = CONFIG.replace("{action: archive, item: 1}", "{action: archive, item: 2}")
    (workspace / "rules.yaml").write_text(broken)
    code, out, _ = rb(capsys, "test")
    assert code == 1
    assert "FAIL archives stale read-later" in out
    assert "-archive item=2" in out and "+archive item=1" in out


def test_export_round_trip(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rb(capsys, "export", "out.csv")[0] == 0
    code, out, _ = rb(capsys, "import", "out.csv")
    assert code == 0 and "0 added, 0 updated, 5 unchanged" in out


def test_bad_config_and_usage_exit_1(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (workspace / "rules.yaml").write_text("version: 1\nrules:\n  - name: x\n")
    code, _, err = rb(capsys, "plan")
    assert code == 1 and "rules.yaml:3:5" in err
    assert rb(capsys, "plan", "--bogus")[0] == 1
    assert rb(capsys, "frobnicate")[0] == 1
    assert rb(capsys)[0] == 1


def test_store_lock_names_the_holder(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time\n"
            "from rulebot.library.store import Store\n"
            "with Store.open(sys.argv[1]) as s, s.lock('run'):\n"
            "    print('locked', flush=True); time.sleep(30)\n",
            str(workspace / ".rulebot" / "rulebot.db"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        code, _, err = rb(capsys, "run", "--now", NOW)
        assert code == 1
        assert f"pid {holder.pid}" in err and "rulebot run" in err
    finally:
        holder.kill()
        holder.wait()


def test_entry_point_in_a_subprocess(workspace: Path) -> None:
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-m", "rulebot", "plan", "--now", NOW, "-q"],
        capture_output=True,
        text=True,
        env=env,
        cwd=workspace,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Plan: 4 actions" in done.stdout
    version = subprocess.run(
        [sys.executable, "-m", "rulebot", "--version"], capture_output=True, text=True, check=False
    )
    assert version.returncode == 0 and version.stdout.startswith("rulebot ")


def test_an_error_is_written_to_the_step_summary(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = workspace / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    (workspace / "rules.yaml").write_text("version: 1\nrules: []\ntimezone: Mars/Olympus\n")
    code, _, err = rb(capsys, "plan")
    assert code == 1 and "Mars/Olympus" in err
    text = summary.read_text()
    assert text.startswith("### rulebot plan: ❌ error") and "Mars/Olympus" in text


def test_apply_takes_limit_overrides(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rb(capsys, "plan", "--now", NOW, "--out", "plan.json", "--max-deletes", "9")[0] == 0
    code, _, err = rb(capsys, "apply", "plan.json", "--max-actions", "3")
    assert code == 3 and "--max-actions 4" in err
    assert rb(capsys, "apply", "plan.json", "--max-actions", "4")[0] == 0


class _Terminal:
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_and_never_with_no_color(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from rulebot.planning.render import use_colour

    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm")
    assert use_colour(_Terminal()) is True  # type: ignore[arg-type]
    assert use_colour(sys.stdout) is False  # captured: not a terminal
    monkeypatch.setenv("NO_COLOR", "1")
    assert use_colour(_Terminal()) is False  # type: ignore[arg-type]


def test_import_refuses_a_pocket_mirror(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "pocket.yaml").write_text(
        "version: 1\npocket: {base_url: 'https://pocket.example.org'}\n"
        "rules:\n  - name: a\n    where: {}\n    actions: [archive]\n"
    )
    code, _, err = rb(capsys, "-c", "pocket.yaml", "import", "export.csv")
    assert code == 1 and "mirrors https://pocket.example.org" in err
    assert not (workspace / ".rulebot" / "pocket.db").exists()


def test_plan_on_an_empty_library_says_how_to_fill_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "rules.yaml").write_text(CONFIG)
    code, out, err = rb(capsys, "plan")
    assert code == 0 and "Plan: no changes" in out
    assert "is empty; fill it with `rulebot import" in err


def test_explain_shows_later_rules_the_simulated_state(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "rules.yaml").write_text(
        "version: 1\nrules:\n"
        "  - name: first\n    where: {tag: read-later}\n    actions: [archive]\n"
        "  - name: second\n    where: {status: archived, tag: read-later}\n"
        "    actions: [{tags_add: [done]}]\n"
        "  - name: third\n    where: {status: archived}\n    actions: [delete]\n"
        "  - name: fourth\n    where: {status: archived}\n    actions: [favorite]\n"
    )
    with Store.open(workspace / ".rulebot" / "rulebot.db") as store:
        new = store.find_by_url("https://a.org/new")
    assert new is not None and new.status == 0
    code, out, _ = rb(capsys, "explain", new.item_id, "--now", NOW, "--format", "json")
    assert code == 0
    by_rule = {r["rule"]: r for r in json.loads(out)["rules"]}
    assert by_rule["second"]["matched"] is True  # archived by "first", as the planner sees it
    assert by_rule["second"]["note"] == "sees the item as earlier rules left it"
    assert [s["action"] for s in by_rule["second"]["actions"]] == ["tags_add"]
    assert by_rule["fourth"]["matched"] is None
    assert by_rule["fourth"]["note"] == "an earlier rule deleted the item"


def test_unwritable_outputs_are_clear_errors_or_warnings(
    workspace: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = rb(capsys, "plan", "--out", "no/such/dir/plan.json")
    assert code == 1 and "cannot write the plan to no/such/dir/plan.json" in err
    assert "Traceback" not in err and "internal error" not in err
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(workspace / "missing" / "summary.md"))
    code, out, err = rb(capsys, "plan")
    assert code == 0 and "Plan: 4 actions" in out
    assert "cannot write GITHUB_STEP_SUMMARY" in err


def test_add_on_the_local_library_saves_the_url_once(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from rulebot.library.export_reader import item_id_for_url

    (workspace / "rules.yaml").write_text(
        "version: 1\nrules:\n  - name: save\n    actions:\n"
        "      - add: {url: 'https://new.example/post', title: New post, tags: [inbox]}\n"
        "      - add: {url: 'https://a.org/old'}\n"  # already saved: skipped
    )
    code, out, _ = rb(capsys, "run", "--now", NOW)
    assert code == 0 and "Applied: 1 succeeded" in out
    saved = items_by_url(workspace)["https://new.example/post"]
    assert saved.item_id == item_id_for_url("https://new.example/post")  # as an import would
    assert (saved.title, saved.tags, saved.time_added) == ("New post", ("inbox",), T)
    code, out, _ = rb(capsys, "plan", "--now", NOW)
    assert "Plan: no changes" in out


def test_explain_reads_like_words_and_account_wide_rules_say_so(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with Store.open(workspace / ".rulebot" / "rulebot.db") as store:
        old = store.find_by_url("https://a.org/old")
    assert old is not None
    code, out, _ = rb(capsys, "explain", old.item_id, "--now", NOW)
    assert code == 0
    assert "False" not in out and "True" not in out and "None" not in out
    assert "rule rename-js: account-wide" in out and "matched unknown" not in out
    assert "words unknown, reading time unknown, lang unknown" in out
    # times as dates, not unix seconds (it printed `read at 1796632764`)
    from rulebot.planning.plan import iso

    assert old.time_added is not None
    assert f"added {iso(old.time_added)}" in out and str(old.time_added) not in out
    assert "read never" in out or "read unknown" in out


def test_library_text_is_escaped_in_plan_explain_errors_and_logs(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import logging

    hostile = "Evil \x1b[2J\x1b]0;owned\x07 title \u202eeman"
    (workspace / "evil.csv").write_text(
        f'title,url,time_added,tags,status\n"{hostile}",https://e.org/x,{T - 45 * DAY},read-later,unread\n'
    )
    assert rb(capsys, "import", "evil.csv")[0] == 0
    with Store.open(workspace / ".rulebot" / "rulebot.db") as store:
        evil = store.find_by_url("https://e.org/x")
    assert evil is not None
    for args in (("plan", "--now", NOW), ("explain", evil.item_id, "--now", NOW)):
        code, out, err = rb(capsys, *args)
        assert code == 0
        assert "\x1b" not in out + err and "\x07" not in out + err and "\u202e" not in out
        assert "\\x1b[2J" in out and "\\u202e" in out
    # log lines: escaped too, and stamped when stderr is not a terminal (cron, CI)
    rb(capsys, "plan", "--now", NOW)
    logging.getLogger("rulebot.test").warning("title %s", hostile)
    err = capsys.readouterr().err
    assert "\x1b" not in err and "\\x1b]0;owned\\x07" in err
    line = err.strip().splitlines()[-1]
    assert line[:4].isdigit() and "T" in line[:11] and " rulebot: title Evil" in line


def test_items_csv_and_json_neutralise_formulas_and_terminal_escapes_as_export_does(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`items --format csv` is read by a spreadsheet and a terminal: no cell
    starts a formula, no control character or bidi mark goes out raw. JSON
    escapes them as \\u, so a reader gets the exact title back."""
    rows = [
        ('=HYPERLINK("http://evil.example/?leak","click")', "https://f.org/1", "=cmd|@x"),
        ("+SUM(1)", "https://f.org/2", "-tag"),
        ("@SUM(1+1)", "https://f.org/3", "ok"),
        ("Evil \x1b[2J\x1b]0;owned\x07 \x9b31m title \u202eeman", "https://f.org/4", "ok"),
    ]
    lines = ["title,url,time_added,tags,status"]
    for title, url, tags in rows:
        quoted = title.replace('"', '""')
        lines.append(f'"{quoted}",{url},{T - 45 * DAY},{tags},unread')
    (workspace / "formulas.csv").write_text("\n".join(lines) + "\n")
    assert rb(capsys, "import", "formulas.csv")[0] == 0
    code, out, err = rb(capsys, "items", "--where", "{domain: f.org}", "--format", "csv")
    assert code == 0, err
    for raw in ("\x1b", "\x07", "\x9b", "\u202e"):
        assert raw not in out
    table = list(csv.reader(io.StringIO(out)))
    assert table[0] == ["item_id", "status", "favorite", "time_added", "tags", "title", "url"]
    cells = [cell for row in table[1:] for cell in row]
    assert len(table) == 5 and not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")]
    titles = [row[5] for row in table[1:]]
    assert titles[:3] == ["'" + title for title, _, _ in rows[:3]]  # as `export` writes them
    assert titles[3] == "Evil \\x1b[2J\\x1b]0;owned\\x07 \\x9b31m title \\u202eeman"
    assert [row[4] for row in table[1:3]] == ["'=cmd,@x", "'-tag"]
    # the same cells in an export file: formula-guarded (text kept exact there)
    assert rb(capsys, "export", "out.csv")[0] == 0
    exported = list(csv.reader(io.StringIO((workspace / "out.csv").read_text())))
    assert "'+SUM(1)" in [row[0] for row in exported]
    # JSON: escaped for the terminal, the exact text for a reader
    code, out, _ = rb(capsys, "items", "--where", "{domain: f.org}", "--format", "json")
    assert code == 0 and "\x9b" not in out and "\u202e" not in out
    assert [row["title"] for row in json.loads(out)] == [title for title, _, _ in rows]


def test_a_100000_character_title_is_clipped_in_items_and_explain_not_in_json(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    title = "Long " + "x" * 100_000 + " end"
    url = "https://g.org/" + "p" * 5_000
    tags = "|".join(f"tag{n:04d}" for n in range(2_000))
    (workspace / "long.csv").write_text(
        f"title,url,time_added,tags,status\n{title},{url},{T - 45 * DAY},{tags},unread\n"
    )
    assert rb(capsys, "import", "long.csv")[0] == 0
    with Store.open(workspace / ".rulebot" / "rulebot.db") as store:
        long = store.find_by_url(url)
    assert long is not None
    for args in (("items", "--where", "{domain: g.org}"), ("explain", long.item_id)):
        code, out, err = rb(capsys, *args, "--now", NOW)
        assert code == 0, err
        widest = max(len(line) for line in out.splitlines())
        assert widest <= 400 and "Long xxx" in out and "…" in out, (args, widest)
    code, out, _ = rb(capsys, "items", "--where", "{domain: g.org}", "--format", "json")
    assert code == 0 and json.loads(out)[0]["title"] == title  # whole where a program reads it
    code, out, _ = rb(capsys, "explain", long.item_id, "--format", "json", "--now", NOW)
    assert code == 0 and json.loads(out)["item"]["url"] == url


def test_reapplying_a_saved_plan_skips_account_wide_actions_already_done(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rb(capsys, "plan", "--now", NOW, "--rule", "rename-js", "--out", "plan.json")[0] == 0
    code, out, _ = rb(capsys, "apply", "plan.json", "--format", "json")
    assert code == 0 and json.loads(out)["summary"]["succeeded"] == 1
    code, out, _ = rb(capsys, "apply", "plan.json", "--format", "json")
    result = json.loads(out)
    assert code == 0 and result["summary"]["succeeded"] == 0
    assert result["summary"]["skipped"] == 1
    assert result["skipped"][0]["error"].startswith("already done")


def test_plan_shows_config_warnings_and_names_silent_rules(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (workspace / "fav.yaml").write_text(
        "version: 1\nrules:\n  - name: favs\n    where: {favorite: true}\n    actions: [archive]\n"
    )
    code, out, err = rb(capsys, "-c", "fav.yaml", "plan", "--now", NOW)
    assert code == 0
    assert "warning: rule favs: `favorite` is never known in the local library" in err
    assert "Matched no item: favs" in out
    code, out, err = rb(capsys, "-q", "-c", "fav.yaml", "plan", "--now", NOW)
    assert "warning" not in err


def test_plan_out_is_atomic_private_and_never_follows_a_link(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    victim = workspace / "victim.txt"
    victim.write_text("precious\n")
    (workspace / "plan.json").symlink_to(victim)
    code, _, err = rb(capsys, "plan", "--now", NOW, "--out", "plan.json")
    assert code == 1 and "symbolic link" in err and "plan.json" in err
    assert victim.read_text() == "precious\n"
    (workspace / "plan.json").unlink()
    assert rb(capsys, "plan", "--now", NOW, "--out", "plan.json")[0] == 0
    written = workspace / "plan.json"
    assert json.loads(written.read_text())["format_version"] == 1
    assert written.stat().st_mode & 0o777 == 0o600
    assert not [p for p in workspace.iterdir() if p.name.endswith(".partial")]


def test_apply_of_a_plan_with_an_unknown_action_fails_that_action_only(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rb(capsys, "plan", "--now", NOW, "--out", "plan.json")[0] == 0
    plan = json.loads((workspace / "plan.json").read_text())
    plan["actions"].insert(0, {"rule": "x", "send": {"action": "bogus", "time": T}, "reasons": []})
    (workspace / "plan.json").write_text(json.dumps(plan))
    code, out, err = rb(capsys, "apply", "plan.json", "--force", "--format", "json")
    assert code == 1 and "internal error" not in err
    summary = json.loads(out)["summary"]
    assert (summary["failed"], summary["succeeded"]) == (1, 4)


BIG_CONFIG = """\
version: 1
timezone: UTC
rules:
  - name: tag-old
    where: {added: {older_than: 30d}}
    actions: [{tags_add: [old]}]
  - name: rename
    actions: [{tag_rename: {old_tag: a, new_tag: b}}]
  - name: archive-old
    where: {tag: old}
    keep_newest: 50
    actions: [archive]
  - name: favorite-archived
    where: {status: archived, tag: b}
    actions: [favorite]
"""


def test_a_plan_too_large_to_hold_is_saved_and_applied_from_disk(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A first run past ``spool.SPILL`` actions, end to end: `plan --out`
    writes it from disk, `apply` reads it back a line at a time and applies
    it item by item between the rename, and both agree with the plan made
    and applied in memory (a rename between item rules, and a keep rule
    whose held items come late)."""
    from rulebot.planning import spool
    from rulebot.rules.config import load_config
    from rulebot.run.pipeline import plan_rules

    from .test_planner import apply_in_memory

    clear_rulebot_env(monkeypatch)
    monkeypatch.setattr(spool, "SPILL", 2_000)  # past it well before the plan ends
    config_path, db = tmp_path / "rulebot.yaml", tmp_path / "big.db"
    config_path.write_text(BIG_CONFIG)
    items = [
        Item(
            item_id=str(n),
            given_url=f"https://a.org/{n}",
            given_title=f"Item {n}",
            tags=("a",) if n % 3 else (),
            time_added=T - (n % 90) * DAY,
            time_updated=T - (n % 90) * DAY,
        )
        for n in range(1, 6_001)
    ]
    with Store.open(db) as store:
        store.upsert(items)
        stored = store.items()
    config = load_config(config_path)
    reference = plan_rules(config, config.rules, stored, T, ordered=True)
    assert len(reference) > 3 * spool.SPILL
    limits = ("--max-actions", "100000", "--max-deletes", "100000")
    common = ("-c", str(config_path), "--store", str(db))
    saved_path = str(tmp_path / "plan.json")
    code, _, err = rb(capsys, *common, "plan", "--now", NOW, "--out", saved_path, *limits)
    assert code == 0, err
    saved = Plan.read(Path(saved_path))
    assert isinstance(saved.actions, spool.SpooledActions)  # read back a line at a time
    assert saved.dumps() == reference.dumps()
    code, out, err = rb(
        capsys, *common, "apply", saved_path, "--now", NOW, "--format", "json", *limits
    )
    assert code == 0, err
    result = json.loads(out)
    assert result["summary"]["succeeded"] == len(reference) and not result["failed"]
    assert [o["index"] for o in result["succeeded"]] == list(range(len(reference)))
    expected = sorted(apply_in_memory(reference, stored), key=lambda i: i.sort_key)
    with Store.open(db) as store:
        assert store.items() == [i for i in expected if not i.is_deleted]
        [run] = store.journal_runs(1)
        assert [e.index for e in store.journal_entries(run.run_id)] == list(range(len(reference)))


def test_every_command_has_its_handler_and_loads_only_its_own_module() -> None:
    """The parser's commands and HANDLERS agree, each handler is found, and a
    command imports no other command's module (they are loaded when run)."""
    from rulebot.cli import HANDLERS, build_parser, handler_of

    parser = build_parser()
    commands = next(
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    )
    assert set(commands.choices) == set(HANDLERS)
    assert all(callable(handler_of(command)) for command in HANDLERS)
    probe = (
        "import sys; from rulebot.cli import main; main(['validate', sys.argv[1]]);"
        " print(sorted(m for m in sys.modules if m.startswith('rulebot.commands.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe, str(ROOT / "rules.example.yaml")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert (
        done.stdout.strip().splitlines()[-1]
        == "['rulebot.commands.config', 'rulebot.commands.shared']"
    )
