"""The CI and scheduling recipes work as written: the files parse, every
`rulebot ...` command in them is accepted by the real argument parser, the
systemd units have what systemd needs, and the docs show the files verbatim."""

from __future__ import annotations

import configparser
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from rulebot.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
WORKFLOW = EXAMPLES / "github-workflow.yml"
HOOKS = ROOT / ".pre-commit-hooks.yaml"
UNITS = {
    "rulebot.service": EXAMPLES / "rulebot.service",
    "rulebot.timer": EXAMPLES / "rulebot.timer",
    "rulebot-daemon.service": EXAMPLES / "rulebot-daemon.service",
}
DOCS = [ROOT / "docs" / "ci.md", ROOT / "docs" / "scheduling.md"]
FENCE = re.compile(r"^```[\w-]*[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def rulebot_commands(script: str) -> list[list[str]]:
    """The argv of every `rulebot ...` command in a shell script or unit line."""
    script = script.replace("\\\n", " ")
    found = []
    for line in script.splitlines():
        line = re.sub(r"^\s*(ExecStart=|entry:)\s*", "", line)
        for segment in re.split(r"&&|\|\||;|\|", line):
            try:
                tokens = shlex.split(segment, comments=True)
            except ValueError:
                continue
            if tokens and tokens[0].endswith("/env"):
                tokens = tokens[1:]
            if tokens and (tokens[0] == "rulebot" or tokens[0].endswith("/bin/rulebot")):
                found.append(_without_redirections(tokens[1:]))
    return found


def _without_redirections(tokens: list[str]) -> list[str]:
    kept: list[str] = []
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
        elif token in (">", ">>", "<", "2>"):
            skip_next = True
        elif not re.match(r"^\d?>>?|^<|^\d>&\d$", token):
            kept.append(token)
    return kept


def assert_parses(argv: list[str], where: str) -> None:
    args = build_parser().parse_args(argv)  # UsageError, naming the flag, if not
    assert args.command, f"{where}: `rulebot {' '.join(argv)}` names no command"


def test_command_extraction() -> None:
    script = (
        "set +e\nrulebot plan --out p.json > plan.md 2>&1 && echo ok\ncd x && rulebot run --due"
    )
    assert rulebot_commands(script) == [["plan", "--out", "p.json"], ["run", "--due"]]
    assert rulebot_commands("ExecStart=/usr/bin/env rulebot -c r.yaml daemon") == [
        ["-c", "r.yaml", "daemon"]
    ]


# -- GitHub Actions -------------------------------------------------------------------------


def workflow() -> dict[Any, Any]:
    return yaml.safe_load(WORKFLOW.read_text(encoding="utf-8"))


def test_workflow_is_yaml_with_the_expected_triggers() -> None:
    document = workflow()
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on"
    triggers: dict[str, Any] = document.get("on") or document[True]
    assert set(triggers) == {"pull_request", "push", "schedule", "workflow_dispatch"}
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["schedule"][0]["cron"].count(" ") == 4
    assert set(document["jobs"]) == {"plan", "run", "apply"}
    for name, job in document["jobs"].items():
        assert job["runs-on"] and job["steps"], name
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name}: {step}"


def test_every_rulebot_command_in_the_workflow_parses() -> None:
    commands: dict[str, list[list[str]]] = {}
    for name, job in workflow()["jobs"].items():
        for step in job["steps"]:
            for argv in rulebot_commands(step.get("run", "")):
                assert_parses(argv, f"{WORKFLOW.name}: job {name}")
                commands.setdefault(name, []).append(argv)
    assert ["validate", "--format", "github"] in commands["plan"]
    assert [
        "plan",
        "--detailed-exitcode",
        "--format",
        "markdown",
        "--out",
        "plan.json",
    ] in commands["plan"]
    assert ["run", "--due"] in commands["run"]
    assert ["apply", "plan.json"] in commands["apply"]


def test_workflow_caches_the_store_and_restores_the_latest() -> None:
    for name, job in workflow()["jobs"].items():
        caches = [s for s in job["steps"] if s.get("uses", "").startswith("actions/cache")]
        restore = [s for s in caches if "/restore@" in s["uses"]]
        save = [s for s in caches if "/save@" in s["uses"]]
        assert len(restore) == 1, name
        assert restore[0]["with"]["path"] == ".rulebot"
        assert restore[0]["with"]["restore-keys"] == "rulebot-store-"
        if name == "plan":
            assert not save  # a pull request never changes what main runs next
        else:
            assert len(save) == 1 and save[0]["if"] == "always()"
            assert save[0]["with"]["key"].startswith("rulebot-store-${{ github.run_id }}")
            steps = job["steps"]
            assert steps.index(restore[0]) < steps.index(save[0])


def test_plan_step_fails_only_on_errors_and_refusals() -> None:
    plan = next(s for s in workflow()["jobs"]["plan"]["steps"] if s.get("id") == "plan")
    assert "set +e" in plan["run"]
    assert '[ "$code" -eq 1 ] || [ "$code" -eq 3 ]' in plan["run"]


# -- pre-commit ------------------------------------------------------------------------------


def test_pre_commit_hook() -> None:
    hooks = yaml.safe_load(HOOKS.read_text(encoding="utf-8"))
    (hook,) = hooks
    assert hook["id"] == "rulebot-validate"
    assert hook["entry"] == "rulebot validate"
    assert hook["language"] == "python"
    files = re.compile(hook["files"])
    for path in ("rules.yaml", "config/rules.yml", "rules.work.yaml"):
        assert files.search(path), path
    for path in ("docs/rules.md", "myrules.yaml", ".github/workflows/rulebot.yml"):
        assert not files.search(path), path
    # pre-commit appends the file names to the entry
    for argv in rulebot_commands(hook["entry"]):
        assert_parses([*argv, "rules.yaml"], HOOKS.name)


# -- systemd -----------------------------------------------------------------------------------


def unit(name: str) -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keys are case-sensitive
    parser.read_string(UNITS[name].read_text(encoding="utf-8"), source=name)
    return parser


@pytest.mark.parametrize("name", list(UNITS))
def test_systemd_units_have_their_sections(name: str) -> None:
    parsed = unit(name)
    assert parsed["Unit"]["Description"]
    if name.endswith(".timer"):
        assert parsed["Timer"]["OnCalendar"]
        assert parsed["Timer"]["Persistent"] == "true"  # a missed start runs at boot
        assert parsed["Install"]["WantedBy"] == "timers.target"
        assert (EXAMPLES / name.replace(".timer", ".service")).exists()  # the unit it starts
        return
    service = parsed["Service"]
    (argv,) = rulebot_commands(f"ExecStart={service['ExecStart']}")
    assert_parses(argv, name)
    # systemd wants an absolute path (%h expands to one), and a unit's PATH
    # never has the venv: the recipe names the venv's rulebot
    assert service["ExecStart"].startswith("%h/rulebot/.venv/bin/rulebot ")
    if name == "rulebot.service":
        assert service["Type"] == "oneshot" and "--due" in argv
        assert "Install" not in parsed  # started by the timer, not enabled itself
    else:
        assert service["Type"] == "simple" and argv[-1] == "daemon"
        assert service["KillSignal"] == "SIGTERM" and service["Restart"] == "on-failure"
        assert parsed["Install"]["WantedBy"]


# -- the docs ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("doc", "example"),
    [
        ("ci.md", WORKFLOW),
        ("scheduling.md", UNITS["rulebot.service"]),
        ("scheduling.md", UNITS["rulebot.timer"]),
        ("scheduling.md", UNITS["rulebot-daemon.service"]),
    ],
)
def test_docs_include_the_example_files_verbatim(doc: str, example: Path) -> None:
    blocks = FENCE.findall((ROOT / "docs" / doc).read_text(encoding="utf-8"))
    assert example.read_text(encoding="utf-8") in blocks, f"docs/{doc} lacks {example.name}"


@pytest.mark.parametrize("doc", DOCS, ids=[d.name for d in DOCS])
def test_every_rulebot_command_in_the_docs_parses(doc: Path) -> None:
    text = doc.read_text(encoding="utf-8")
    commands = [
        argv
        for block in FENCE.findall(text)
        for argv in rulebot_commands(re.sub(r"^\$ ", "", block, flags=re.MULTILINE))
    ]
    assert commands
    for argv in commands:
        assert_parses(argv, doc.name)


def test_crontab_line_is_five_fields_and_a_due_run() -> None:
    text = (ROOT / "docs" / "scheduling.md").read_text(encoding="utf-8")
    (line,) = [line for line in text.splitlines() if line.startswith("*/15 ")]
    fields = line.split()
    assert len(fields) > 5 and not fields[5][0].isdigit() and fields[5] != "*"
    assert rulebot_commands(" ".join(fields[5:])) == [["run", "--due", "--quiet"]]
    # cron's PATH is /usr/bin:/bin: the venv's rulebot by its absolute path
    assert '"$HOME/rulebot/.venv/bin/rulebot" run' in line


@pytest.mark.parametrize(("limits", "step_code", "plan_code"), [("", 0, "2"), ("strict", 3, "3")])
def test_plan_step_script_runs_in_bash(
    tmp_path: Path, limits: str, step_code: int, plan_code: str
) -> None:
    """The pull-request plan step, run as GitHub runs it (bash -e), on a real store."""
    executable = Path(sys.executable).parent / "rulebot"
    if not executable.exists():
        pytest.skip("the rulebot console script is not installed next to this python")
    max_actions = 1 if limits else 50  # the plan has two actions
    (tmp_path / "rules.yaml").write_text(
        f"version: 1\nlimits: {{max_actions: {max_actions}}}\nrules:\n"
        "  - name: add-docs\n    actions:\n"
        "      - add: {url: 'https://d.org/x'}\n      - add: {url: 'https://d.org/y'}\n"
    )
    plan = next(s for s in workflow()["jobs"]["plan"]["steps"] if s.get("id") == "plan")
    output = tmp_path / "github_output"
    env = {
        "PATH": f"{executable.parent}{os.pathsep}{os.environ['PATH']}",
        "GITHUB_OUTPUT": str(output),
        "HOME": str(tmp_path),
    }
    done = subprocess.run(
        ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", plan["run"]],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == step_code, done.stderr
    assert f"exitcode={plan_code}" in output.read_text().splitlines()
    assert (tmp_path / "plan.md").read_text().startswith("### rulebot plan: ")
    assert (tmp_path / "plan.json").exists()
