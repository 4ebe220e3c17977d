"""CI behaviour: the exit code of every outcome of validate/plan/run/apply, and
the GitHub Actions files (step summary, ``changes`` output).

Exit codes (design.md): 0 success or, with --detailed-exitcode, nothing to
do; 1 any error; 2 only with --detailed-exitcode when the plan is not empty;
3 a safety limit refused the run and nothing was sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rulebot.cli import main
from rulebot.fakepocket import FakePocket
from tests.helpers import clear_rulebot_env, rb

NOW = "2026-11-26T06:00:00Z"
T = 1795672800
DAY = 86400

RULES = """\
rules:
  - name: archive-stale
    where: {tag: read-later, added: {older_than: 30d}}
    actions: [archive, {tags_add: [auto-archived]}]
  - name: purge
    where: {status: archived, added: {older_than: 730d}}
    actions: [delete]
"""
CONFIG = "version: 1\ntimezone: UTC\nlimits: {max_actions: 50, max_deletes: 5}\n" + RULES
CSV = f"""\
title,url,time_added,tags,status
Old,https://a.org/old,{T - 45 * DAY},read-later,unread
Ancient one,https://b.org/1,{T - 900 * DAY},,archive
Ancient two,https://b.org/2,{T - 800 * DAY},,archive
Fresh,https://c.org/fresh,{T - DAY},read-later,unread
"""


@pytest.fixture
def workspace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    (tmp_path / "rules.yaml").write_text(CONFIG)
    (tmp_path / "export.csv").write_text(CSV)
    assert main(["import", "export.csv"]) == 0
    return tmp_path


@pytest.fixture
def github(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    summary, output = workspace / "summary.md", workspace / "output.txt"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    return summary, output


def sections(summary: Path) -> list[str]:
    """Each command's summary, by its first line."""
    return [line for line in summary.read_text(encoding="utf-8").splitlines() if line[:4] == "### "]


# -- exit codes ---------------------------------------------------------------------------


def test_validate_exit_codes(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rb(capsys, "validate")[0] == 0
    assert rb(capsys, "validate", "--format", "github")[:2] == (0, "")
    (workspace / "bad.yaml").write_text("version: 1\nrules:\n  - name: x\n    actions: [archve]\n")
    code, out, _ = rb(capsys, "validate", "bad.yaml", "--format", "github")
    assert code == 1 and out.startswith("::error file=bad.yaml,line=4,")
    assert rb(capsys, "validate", "missing.yaml")[0] == 1
    assert rb(capsys, "validate", "--format", "xml")[0] == 1  # usage: 1, never argparse's 2


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["plan"], 0),
        (["plan", "--detailed-exitcode"], 2),
        (["plan", "--detailed-exitcode", "--rule", "archive-stale", "--format", "json"], 2),
        (["plan", "--max-deletes", "1"], 3),
        (["plan", "--detailed-exitcode", "--max-actions", "3"], 3),  # 3 beats 2
        (["plan", "--rule", "nope"], 1),
        (["plan", "--max-actions", "-1"], 1),
        (["plan", "--format", "yaml"], 1),
        (["plan", "--bogus"], 1),
        (["run", "--dry-run"], 0),
        (["run", "--dry-run", "--detailed-exitcode"], 2),
        (["run", "--dry-run", "--max-deletes", "1"], 3),
        (["run", "--max-deletes", "1"], 3),
        (["run", "--detailed-exitcode"], 2),
        (["run"], 0),
    ],
)
def test_plan_and_run_exit_codes(
    workspace: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int
) -> None:
    got, out, err = rb(capsys, *argv, "--now", NOW)
    assert got == code, (out, err)
    assert "Traceback" not in err
    if code == 3:
        assert "--max-" in err and "Plan: 4 actions" in out  # the refused plan is shown
    applied = argv[0] == "run" and "--dry-run" not in argv and code in (0, 2)
    # nothing was sent unless it was a run that applied
    left = rb(capsys, "plan", "--detailed-exitcode", "--now", NOW)[0]
    assert left == (0 if applied else 2)


def test_after_a_run_there_is_nothing_to_do(
    workspace: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert rb(capsys, "plan", "--detailed-exitcode", "--now", NOW)[0] == 0
    assert rb(capsys, "run", "--detailed-exitcode", "--now", NOW)[0] == 0


def test_apply_exit_codes(workspace: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert rb(capsys, "plan", "--out", "plan.json", "--now", NOW)[0] == 0
    assert rb(capsys, "apply", "missing.json")[0] == 1
    (workspace / "broken.json").write_text("{")
    assert rb(capsys, "apply", "broken.json")[0] == 1
    # another config: 1 unless --force; forced, that config's limits still apply (3)
    (workspace / "rules.yaml").write_text(CONFIG.replace("max_deletes: 5", "max_deletes: 1"))
    assert rb(capsys, "apply", "plan.json")[0] == 1
    code, _, err = rb(capsys, "apply", "plan.json", "--force")
    assert code == 3 and "2 deletions exceed max_deletes 1" in err
    (workspace / "rules.yaml").write_text(CONFIG)
    code, out, _ = rb(capsys, "apply", "plan.json", "--format", "json")
    assert code == 0 and json.loads(out)["summary"]["succeeded"] == 4
    # applied again: every action is stale now, skipped and listed; still 0
    code, out, _ = rb(capsys, "apply", "plan.json")
    assert code == 0 and "4 skipped" in out
    (workspace / "rules.yaml").write_text("version: 1\nrules: nope\n")
    assert rb(capsys, "apply", "plan.json")[0] == 1


# -- GitHub Actions files ---------------------------------------------------------------------


def test_step_summary_states_the_status_first(
    github: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    summary, output = github
    code, out, _ = rb(capsys, "plan", "--detailed-exitcode", "--format", "markdown", "--now", NOW)
    assert code == 2
    text = summary.read_text(encoding="utf-8")
    assert text.startswith("### rulebot plan: 📝 4 changes planned\n")
    assert text.strip() == out.strip()  # the summary is the markdown plan
    assert "| `archive-stale` | 2 | 1 archive, 1 tags_add |" in text
    assert "<details><summary>All actions</summary>" in text  # details collapsed
    assert output.read_text() == "changes=4\n"

    assert rb(capsys, "plan", "--max-deletes", "1", "--now", NOW)[0] == 3
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert rb(capsys, "run", "--now", NOW)[0] == 0
    assert rb(capsys, "run", "--dry-run", "--now", NOW)[0] == 0
    assert sections(summary) == [
        "### rulebot plan: 📝 4 changes planned",
        "### rulebot plan: ⛔ refused by a safety limit",
        "### rulebot apply: ✅ 4 changes applied",
        "### rulebot apply: ✅ no changes",
        "### rulebot plan: ✅ no changes",
    ]
    assert "**Refused by a safety limit:** 2 deletions exceed max_deletes 1" in summary.read_text()
    assert output.read_text().splitlines() == [
        "changes=4",
        "changes=4",
        "changes=4",
        "changes=0",
        "changes=0",
    ]


def test_step_summary_of_an_applied_plan_file(
    github: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    summary, output = github
    assert rb(capsys, "plan", "--out", "plan.json", "--now", NOW)[0] == 0
    assert rb(capsys, "run", "--rule", "purge", "--now", NOW)[0] == 0
    assert rb(capsys, "apply", "plan.json", "--now", NOW)[0] == 0
    assert sections(summary)[-1] == "### rulebot apply: ✅ 2 changes applied, 2 skipped"
    assert output.read_text().splitlines()[-1] == "changes=4"


def test_a_failed_apply_exits_1_and_says_so_first(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = Path("summary.md").absolute()
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    ids = [
        fake_pocket.add_item(
            f"https://a.org/{n}", f"Old {n}", ["read-later"], time_added=T - 99 * DAY
        )
        for n in range(3)
    ]
    Path("rules.yaml").write_text(
        f"version: 1\npocket:\n  base_url: {fake_pocket.base_url}\n" + RULES, encoding="utf-8"
    )
    fake_pocket.fail_actions[ids[1]] = (422, "item is locked")
    code, out, _ = rb(capsys, "run", "--now", NOW)
    assert code == 1 and "failed" in out
    first = sections(summary)[0]
    assert first == "### rulebot apply: ❌ apply failed (2 of 6 actions failed)"
    assert "item is locked" in summary.read_text()
    # the rule is not recorded as run, so `--due` tries it again; the rest is done
    fake_pocket.fail_actions.clear()
    code, out, _ = rb(
        capsys, "run", "--due", "--detailed-exitcode", "--now", NOW, "--format", "json"
    )
    assert code == 2 and json.loads(out)["summary"]["succeeded"] == 2


# -- the test suite's own CI guard (tests/strict_skips.py) ---------------------------------

SKIPPING = """
import pytest

def test_skips():
    pytest.skip("no server here")

@pytest.mark.skipif(True, reason="not on this machine")
def test_marked():
    pass

@pytest.mark.xfail(strict=True, reason="a known defect")
def test_expected_to_fail():
    assert False

def test_passes():
    pass
"""


@pytest.mark.parametrize("strict", [True, False])
def test_under_real_servers_a_skip_is_a_failure_naming_its_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, strict: bool
) -> None:
    if strict:
        monkeypatch.setenv("RULEBOT_REAL_SERVERS", "1")
    else:
        monkeypatch.delenv("RULEBOT_REAL_SERVERS", raising=False)
    pytester.makeconftest("from tests.strict_skips import *\n")
    pytester.makepyfile(
        test_skipping=SKIPPING,
        test_module_skipped='import pytest\npytest.skip("no client", allow_module_level=True)\n',
    )
    result = pytester.runpytest(
        "-p", "no:xdist", "-p", "no:cacheprovider", "--continue-on-collection-errors"
    )
    if strict:
        # a skip in the test fails it; one at setup or collection is an error
        result.assert_outcomes(passed=1, failed=1, errors=2, xfailed=1)
        said = "*skipped where nothing may skip (RULEBOT_REAL_SERVERS=1): *"
        for reason in ("no server here", "not on this machine", "no client"):
            result.stdout.fnmatch_lines([f"{said}{reason}*"])
    else:
        result.assert_outcomes(passed=1, skipped=3, xfailed=1)
