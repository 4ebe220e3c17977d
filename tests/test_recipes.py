"""The CI and scheduling recipes work as written: the files parse, every
`rulebot ...` command in them is accepted by the real argument parser, the
workflow's shell steps run in bash (against a fake `gh` where they ask
GitHub), the systemd units have what systemd needs, every recipe installs
the package's own version, and the docs show the files verbatim."""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from rulebot import __version__
from rulebot.cli import build_parser
from tests.helpers import clear_rulebot_env

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


def step(job: str, step_id: str) -> dict[str, Any]:
    return next(s for s in workflow()["jobs"][job]["steps"] if s.get("id") == step_id)


def test_workflow_is_yaml_with_the_expected_triggers() -> None:
    document = workflow()
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on"
    triggers: dict[str, Any] = document.get("on") or document[True]
    assert set(triggers) == {"pull_request", "push", "schedule", "workflow_dispatch"}
    assert triggers["push"]["branches"] == ["main"]
    assert triggers["push"]["paths"] == triggers["pull_request"]["paths"] == ["rules.yaml"]
    assert triggers["schedule"][0]["cron"].count(" ") == 4
    assert set(document["jobs"]) == {"plan", "run", "apply"}
    for name, job in document["jobs"].items():
        assert job["runs-on"] and job["steps"], name
        for one in job["steps"]:
            assert ("uses" in one) != ("run" in one), f"{name}: {one}"
    # each event runs one job: the pull request plans, its merge applies, the cron runs
    events = {
        name: set(re.findall(r"github\.event_name == '(\w+)'", job["if"]))
        for name, job in document["jobs"].items()
    }
    assert events == {
        "plan": {"pull_request"},
        "apply": {"push"},
        "run": {"schedule", "workflow_dispatch"},
    }


def test_one_writer_of_the_store_at_a_time() -> None:
    """The jobs that save the store queue in one group (a running one is never
    cancelled for a newer one); a pull request's plan only reads it, and never
    waits for them nor takes a waiting merge's place."""
    jobs = workflow()["jobs"]
    assert "concurrency" not in workflow()
    for name in ("apply", "run"):
        assert jobs[name]["concurrency"] == {"group": "rulebot-store", "cancel-in-progress": False}
    assert "concurrency" not in jobs["plan"]


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
    assert commands["apply"] == [["apply", "reviewed/plan.json"]]  # the reviewed plan only


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
    plan = step("plan", "plan")
    assert "set +e" in plan["run"]
    assert '[ "$code" -eq 1 ] || [ "$code" -eq 3 ]' in plan["run"]


def test_the_merge_applies_the_artifact_the_plan_job_keeps() -> None:
    steps = workflow()["jobs"]["plan"]["steps"]
    (upload,) = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"] == {"name": "rulebot-plan", "path": "plan.json"}
    assert "if" not in upload  # kept only when the plan step passed (exit 0 or 2)
    merge = step("apply", "apply")["run"]
    assert "--name rulebot-plan --dir reviewed" in merge
    assert "rulebot apply reviewed/plan.json" in merge
    assert step("apply", "apply")["env"] == {"GH_TOKEN": "${{ github.token }}"}
    assert workflow()["jobs"]["apply"]["permissions"] == {
        "contents": "read",
        "actions": "read",
        "pull-requests": "read",
    }


# -- the credentials of every source ------------------------------------------------------------

SECRET_LINE = re.compile(
    r"^  ([A-Z][A-Z0-9_]*): \$\{\{ secrets\.([A-Z][A-Z0-9_]*) \}\} # ([a-z]+):$", re.MULTILINE
)


def source_variables() -> dict[str, set[str]]:
    """Each source block's credential variables, as the schema's defaults name them."""
    schema = json.loads((ROOT / "rulebot" / "schemas" / "rules.schema.json").read_text("utf-8"))
    found: dict[str, set[str]] = {}
    for name, block in schema["properties"].items():
        for key, spec in block.get("properties", {}).items():
            if key.endswith("_env"):
                found.setdefault(name, set()).add(spec["default"])
    return found


def workflow_variables() -> dict[str, set[str]]:
    """The workflow's credential lines by the source their comment names."""
    found: dict[str, set[str]] = {}
    for variable, secret, source in SECRET_LINE.findall(WORKFLOW.read_text(encoding="utf-8")):
        assert variable == secret, f"{variable} is given the secret {secret}"
        found.setdefault(source, set()).add(variable)
    return found


def test_workflow_gives_every_source_its_credentials() -> None:
    named, needed = workflow_variables(), source_variables()
    assert needed and set(needed) <= set(named)
    for source, variables in needed.items():
        assert named[source] == variables, source
    # Linkding lands beside these recipes: its variable is the one its docs will name
    assert named.get("linkding", {"LINKDING_TOKEN"}) == {"LINKDING_TOKEN"}
    assert set(named) - set(needed) <= {"linkding"}
    env = workflow()["env"]
    assert set(env) == {"RULEBOT_STORE"} | set().union(*named.values())


@pytest.mark.parametrize("source", sorted(workflow_variables()))
def test_an_unset_secret_is_an_unset_variable(
    source: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """GitHub gives a secret that is not set as "": rulebot stops before any
    request (nothing listens at the config's base_url anyway) and names every
    variable of the source, as the workflow's comment says."""
    if source not in source_variables():
        pytest.skip(f"the {source} source is not on this branch yet")
    from rulebot.cli import main

    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    for variables in workflow_variables().values():
        for variable in variables:
            monkeypatch.setenv(variable, "")
    (tmp_path / "rules.yaml").write_text(
        f"version: 1\n{source}: {{base_url: 'http://127.0.0.1:9'}}\n"
        "rules:\n  - name: x\n    actions: [{tag_delete: old}]\n"
    )
    capsys.readouterr()
    assert main(["plan"]) == 1
    err = capsys.readouterr().err
    for variable in workflow_variables()[source]:
        assert variable in err, err
    assert "127.0.0.1" not in err, err  # refused before connecting


@pytest.mark.parametrize("doc", ["ci.md", "scheduling.md"])
def test_docs_name_every_source_credential(doc: str) -> None:
    text = (ROOT / "docs" / doc).read_text(encoding="utf-8")
    for variables in workflow_variables().values():
        for variable in variables:
            assert f"`{variable}`" in text or f"{variable}=" in text, f"docs/{doc}: {variable}"


# -- one version --------------------------------------------------------------------------------

TAG = f"v{__version__}"  # the release tag the recipes install
INSTALLED = re.compile(r"git\+https://github\.com/rulebot/rulebot@([^\s\"'`]+)")
REV = re.compile(r"^[\s#]*rev:\s*(\S+)", re.MULTILINE)
RECIPES = [WORKFLOW, HOOKS, ROOT / "README.md", *DOCS]


def release_mentions(text: str) -> list[str]:
    return INSTALLED.findall(text) + REV.findall(text)


@pytest.mark.parametrize("path", RECIPES, ids=[p.name for p in RECIPES])
def test_every_recipe_installs_the_package_version(path: Path) -> None:
    named = release_mentions(path.read_text(encoding="utf-8"))
    assert named, f"{path.name} names no release of rulebot"
    assert set(named) == {TAG}, f"{path.name} names {sorted(set(named))}, the package is {TAG}"


def test_no_file_names_another_release() -> None:
    files = [*RECIPES, ROOT / "CHANGELOG.md", *(ROOT / "docs").glob("*.md"), *EXAMPLES.iterdir()]
    for path in files:
        if path.suffix in (".md", ".yml", ".yaml", ".service", ".timer", ".py", ""):
            for named in release_mentions(path.read_text(encoding="utf-8")):
                assert named == TAG, f"{path.relative_to(ROOT)} names {named}, not {TAG}"


def test_one_version_string_and_its_changelog(capsys: pytest.CaptureFixture[str]) -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" in pyproject["project"]["dynamic"]  # never a second copy
    assert pyproject["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "rulebot.__version__"}
    assert re.fullmatch(r"\d+\.\d+\.\d+", __version__)  # what a tag v{x.y.z} can name
    with pytest.raises(SystemExit) as done:
        build_parser().parse_args(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out == f"rulebot {__version__}\n"

    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    releases = re.findall(r"^## \[(\d+\.\d+\.\d+)\]", changelog, flags=re.MULTILINE)
    assert releases and releases[0] == __version__, "CHANGELOG.md: the newest release first"
    assert changelog.index("## [Unreleased]") < changelog.index(f"## [{__version__}]")
    assert f"[{__version__}]: https://github.com/rulebot/rulebot/releases/tag/{TAG}" in changelog


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


def test_systemd_accepts_the_units(tmp_path: Path) -> None:
    """systemd's own check: no unknown key, no bad value (it warns and goes on,
    so any output is a failure). The venv's rulebot is swapped for one that
    exists, as systemd checks the executable."""
    verify = shutil.which("systemd-analyze")
    if verify is None:
        pytest.skip("systemd-analyze is not installed")
    for name, path in UNITS.items():
        text = path.read_text(encoding="utf-8")
        (tmp_path / name).write_text(text.replace("%h/rulebot/.venv/bin/rulebot", "/bin/true"))
    done = subprocess.run(
        [verify, "verify", "--man=no", *(str(tmp_path / name) for name in UNITS)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0 and not done.stderr.strip() and not done.stdout.strip(), done


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


# -- the workflow's shell steps, run as GitHub runs them ---------------------------------------

REPO = "me/library"
MERGE_SHA = "a1" * 20  # the push to main
HEAD = "b2" * 20  # the merged pull request's last commit
EARLIER = "c3" * 20  # a commit before it
EXPRESSION = re.compile(r"\$\{\{\s*([^}]*?)\s*\}\}")
RULES = """\
version: 1
timezone: UTC
rules:
  - name: archive-stale
    where: {tag: read-later, added: {older_than: 30d}}
    actions: [archive]
"""
CSV = """\
title,url,time_added,tags,status
Old one,https://a.org/old,1700000000,read-later,unread
Old two,https://a.org/old2,1700000100,read-later,unread
Fresh,https://a.org/fresh,4102444800,read-later,unread
"""


class Runner:
    """A workspace, a PATH with this checkout's `rulebot` and the fake `gh`,
    and GitHub's environment for a step (the workflow's and the step's
    `env:`, a secret that is not set being "", as GitHub gives it)."""

    def __init__(self, tmp_path: Path, event: str) -> None:
        self.home = tmp_path
        self.workspace = tmp_path / "workspace"
        self.fixtures = tmp_path / "gh"
        self.bin = tmp_path / "bin"
        for directory in (self.workspace, self.fixtures, self.bin):
            directory.mkdir()
        for name, target in (("rulebot", "-m rulebot"), ("gh", str(ROOT / "tests" / "fake_gh.py"))):
            script = self.bin / name
            script.write_text(
                f"#!/bin/sh\nPYTHONPATH={shlex.quote(str(ROOT))} "
                f'exec {shlex.quote(sys.executable)} {target} "$@"\n'
            )
            script.chmod(0o755)
        self.summary = tmp_path / "step_summary.md"
        self.output = tmp_path / "github_output"
        self.github = {
            "GITHUB_EVENT_NAME": event,
            "GITHUB_REPOSITORY": REPO,
            "GITHUB_SHA": MERGE_SHA,
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_REF_NAME": "main",
            "GITHUB_WORKFLOW_REF": f"{REPO}/.github/workflows/rulebot.yml@refs/heads/main",
            "GITHUB_STEP_SUMMARY": str(self.summary),
            "GITHUB_OUTPUT": str(self.output),
        }

    def env(self, job: str, one: dict[str, Any]) -> dict[str, str]:
        def value(text: Any) -> str:
            known = {"github.token": "ghs_fake", "github.repository": REPO}
            return EXPRESSION.sub(lambda m: known.get(m.group(1), ""), str(text))

        env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "HOME": str(self.home),
            "FAKE_GH": str(self.fixtures),
            **self.github,
        }
        for mapping in (workflow()["env"], workflow()["jobs"][job].get("env", {}), one["env"]):
            env.update({key: value(text) for key, text in mapping.items()})
        return env

    def rulebot(self, *argv: str) -> subprocess.CompletedProcess[str]:
        env = {**self.env("plan", {"env": {}}), "GITHUB_STEP_SUMMARY": "", "GITHUB_OUTPUT": ""}
        return subprocess.run(
            ["rulebot", *argv],
            cwd=self.workspace,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )

    def step(self, job: str, step_id: str) -> subprocess.CompletedProcess[str]:
        one = {"env": {}, **step(job, step_id)}
        return subprocess.run(
            # what GitHub runs a `run:` step with when it names no `shell:`
            ["bash", "-e", "-c", one["run"]],
            cwd=self.workspace,
            env=self.env(job, one),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def calls(self) -> list[list[str]]:
        log = self.fixtures / "calls.jsonl"
        lines = log.read_text().splitlines() if log.exists() else []
        return [json.loads(line) for line in lines]


@pytest.mark.parametrize(("limits", "step_code", "plan_code"), [("", 0, "2"), ("strict", 3, "3")])
def test_plan_step_script_runs_in_bash(
    tmp_path: Path, limits: str, step_code: int, plan_code: str
) -> None:
    """The pull-request plan step, run as GitHub runs it (bash -e), on a real store."""
    runner = Runner(tmp_path, "pull_request")
    max_actions = 1 if limits else 50  # the plan has two actions
    (runner.workspace / "rules.yaml").write_text(
        f"version: 1\nlimits: {{max_actions: {max_actions}}}\nrules:\n"
        "  - name: add-docs\n    actions:\n"
        "      - add: {url: 'https://d.org/x'}\n      - add: {url: 'https://d.org/y'}\n"
    )
    done = runner.step("plan", "plan")
    assert done.returncode == step_code, done.stderr
    assert f"exitcode={plan_code}" in runner.output.read_text().splitlines()
    assert (runner.workspace / "plan.md").read_text().startswith("### rulebot plan: ")
    assert (runner.workspace / "plan.json").exists()


def pull(
    number: int, *, merged: bool = True, base: str = "main", repo: str | None = REPO
) -> dict[str, Any]:
    """A pull request as GET /repos/{repo}/commits/{sha}/pulls lists it."""
    return {
        "number": number,
        "state": "closed" if merged else "open",
        "merged_at": "2026-12-07T12:00:00Z" if merged else None,
        "base": {"ref": base, "repo": {"full_name": REPO}},
        "head": {"sha": HEAD, "ref": "tidy-rules", "repo": repo and {"full_name": repo}},
    }


def run(
    run_id: int,
    head: str,
    conclusion: str | None = "success",
    *,
    event: str = "pull_request",
    workflow_file: str = "rulebot.yml",
) -> dict[str, Any]:
    return {
        "databaseId": run_id,
        "headSha": head,
        "event": event,
        "status": "completed" if conclusion else "in_progress",
        "conclusion": conclusion or "",
        "workflowName": workflow_file.removesuffix(".yml"),
        "path": f".github/workflows/{workflow_file}",
    }


PULLS = [pull(9, merged=False), pull(5, base="release"), pull(7)]  # #7 merged into main
RUNS = [  # newest first
    run(1006, MERGE_SHA, event="push"),
    run(1005, HEAD, workflow_file="tests.yml"),
    run(1004, HEAD, None),  # a re-run still going
    run(1003, HEAD, "failure"),
    run(1002, HEAD),  # the plan of the merged commit
    run(1001, EARLIER),  # the plan of an earlier commit
]


def merge(runner: Runner, pulls: list[Any], runs: list[Any], plans: dict[int, Path]) -> Any:
    """The push job's "find and apply the plan" step, gh answering from fixtures."""
    fixtures = runner.fixtures
    (fixtures / "api.json").write_text(
        json.dumps({f"repos/{REPO}/commits/{MERGE_SHA}/pulls": pulls})
    )
    (fixtures / "runs.json").write_text(json.dumps(runs))
    for run_id, plan in plans.items():
        artifact = fixtures / "artifacts" / str(run_id) / "rulebot-plan"
        artifact.mkdir(parents=True, exist_ok=True)
        shutil.copy(plan, artifact / "plan.json")
    (fixtures / "calls.jsonl").unlink(missing_ok=True)
    runner.summary.unlink(missing_ok=True)
    return runner.step("apply", "apply")


def archived(runner: Runner) -> set[str]:
    from rulebot.library.store import Store

    with Store.open(runner.workspace / ".rulebot" / "rulebot.db") as store:
        return {item.url for item in store.items() if item.status == 1}


@pytest.fixture
def reviewed(tmp_path: Path) -> tuple[Runner, Path, Path]:
    """A library planned on a pull request (its plan step, as GitHub runs it),
    and an earlier commit's plan of a config the merge no longer has."""
    if shutil.which("jq") is None:
        pytest.skip("the fake gh filters --jq through jq (GitHub's runners have it)")
    runner = Runner(tmp_path, "push")
    (runner.workspace / "export.csv").write_text(CSV)
    (runner.workspace / "rules.yaml").write_text(RULES.replace("30d", "300d"))
    runner.rulebot("import", "export.csv")
    runner.rulebot("plan", "--out", "earlier.json")
    (runner.workspace / "rules.yaml").write_text(RULES)
    planned = runner.step("plan", "plan")
    assert planned.returncode == 0, planned.stderr
    assert "exitcode=2" in runner.output.read_text()
    plan, earlier = tmp_path / "plan.json", tmp_path / "earlier.json"
    shutil.move(runner.workspace / "plan.json", plan)
    shutil.move(runner.workspace / "earlier.json", earlier)
    return runner, plan, earlier


OLD = {"https://a.org/old", "https://a.org/old2"}


def test_merge_applies_the_plan_its_pull_request_showed(
    reviewed: tuple[Runner, Path, Path],
) -> None:
    runner, plan, earlier = reviewed
    done = merge(runner, PULLS, RUNS, {1002: plan, 1001: earlier})
    assert done.returncode == 0, done.stderr
    assert "applying the plan of pull request #7, made by run 1002" in done.stdout
    assert archived(runner) == OLD
    assert runner.summary.read_text().startswith("### rulebot apply: ✅ 2 changes applied\n")
    assert runner.calls() == [
        ["api", f"repos/{REPO}/commits/{MERGE_SHA}/pulls", "--jq", ANY_JQ],
        [
            *f"run list --workflow rulebot.yml --commit {HEAD} --event pull_request "
            f"--status success --limit 1 --json databaseId --jq".split(),
            ANY_JQ,
        ],
        ["run", "download", "1002", "--name", "rulebot-plan", "--dir", "reviewed"],
    ]
    # the job run again (after a cancel, say): what was applied is skipped, listed, exit 0
    (runner.workspace / "reviewed" / "plan.json").unlink()
    again = merge(runner, PULLS, RUNS, {1002: plan})
    assert again.returncode == 0, again.stderr
    assert runner.summary.read_text().startswith(
        "### rulebot apply: ⚠️ nothing applied, all skipped\n"
    )


def test_merge_refuses_a_plan_of_another_config(reviewed: tuple[Runner, Path, Path]) -> None:
    """Another change to rules.yaml landed between the plan and the merge: the
    reviewed plan is not what main now says, so nothing is applied."""
    runner, plan, _ = reviewed
    (runner.workspace / "rules.yaml").write_text(RULES.replace("30d", "60d"))
    done = merge(runner, PULLS, RUNS, {1002: plan})
    assert done.returncode == 1
    assert "was made from a different config than rules.yaml (config_sha256 differs)" in done.stderr
    assert archived(runner) == set()


@pytest.mark.parametrize(
    ("pulls", "runs", "code", "said"),
    [
        pytest.param(
            [pull(9, merged=False)],
            RUNS,
            0,
            f"::warning::no pull request merged {MERGE_SHA[:7]}, so no plan was reviewed",
            id="direct push",
        ),
        pytest.param(
            [pull(7, repo="someone/library")],
            RUNS,
            0,
            "::warning::pull request #7 came from someone/library, whose plan is never applied",
            id="fork",
        ),
        pytest.param(
            [pull(7, repo=None)],
            RUNS,
            0,
            "::warning::pull request #7 came from a deleted fork",
            id="deleted fork",
        ),
        pytest.param(
            PULLS,
            [r for r in RUNS if r["databaseId"] != 1002],
            1,
            f"::error::pull request #7 has no plan of its last commit {HEAD[:7]}",
            id="plan failed",
        ),
        pytest.param(
            PULLS,
            RUNS,
            1,
            "::error::run 1002 of pull request #7 kept no plan",
            id="artifact expired",
        ),
    ],
)
def test_merge_without_a_reviewed_plan_applies_nothing(
    reviewed: tuple[Runner, Path, Path],
    pulls: list[Any],
    runs: list[Any],
    code: int,
    said: str,
) -> None:
    runner, _, earlier = reviewed
    done = merge(runner, pulls, runs, {1001: earlier})  # never the plan of #7's last commit
    assert done.returncode == code, done.stderr
    (line,) = [line for line in done.stdout.splitlines() if line.startswith("::")]
    assert line.startswith(said)
    assert line.endswith("; nothing applied, the rules run when due at the next scheduled run")
    assert runner.summary.read_text().startswith("### rulebot apply: ⚠️ nothing applied: ")
    assert archived(runner) == set()
    assert not (runner.workspace / "reviewed" / "plan.json").exists()
    asked = [call[:2] for call in runner.calls()]
    if code == 0:  # no pull request of this repository: nothing more to ask
        assert asked == [["api", f"repos/{REPO}/commits/{MERGE_SHA}/pulls"]]


def test_merge_fails_when_github_cannot_be_asked(reviewed: tuple[Runner, Path, Path]) -> None:
    """An API error is not "no pull request": the step fails with gh's message."""
    runner = reviewed[0]
    (runner.fixtures / "api.json").write_text("{}")  # the fake answers 404
    (runner.fixtures / "runs.json").write_text(json.dumps(RUNS))
    done = runner.step("apply", "apply")
    assert done.returncode == 1
    assert "Not Found (HTTP 404)" in done.stderr and "::" not in done.stdout
    assert archived(runner) == set()


class _Any:
    def __eq__(self, other: object) -> bool:
        return isinstance(other, str)


ANY_JQ = _Any()
