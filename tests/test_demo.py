"""`rulebot demo SOURCE`: every source can be tried without an account, and
its demo rules fit what the source can do (#26). Run through the real entry
point, against the real demo servers (the fakes; Debian's Shaarli)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from rulebot.commands.demo import DEMO_RULES, SERVERS
from rulebot.rules.config import validate_file
from tests.helpers import stop
from tests.shaarli_server import require_server


def rulebot(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rulebot", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=cwd,
        env=env,
    )


def test_every_source_with_a_server_has_a_demo() -> None:
    from rulebot.sources import BACKENDS

    assert set(SERVERS) == set(BACKENDS) - {"local"}  # local: the README's own command
    assert {path.stem for path in DEMO_RULES.glob("*.yaml")} == set(SERVERS)
    from rulebot.cli import DEMO_SOURCES  # the parser's choices, kept without importing demo

    assert tuple(sorted(SERVERS)) == DEMO_SOURCES


@pytest.mark.parametrize("source", sorted(SERVERS))
def test_the_demo_rules_are_valid_for_their_source_without_a_warning(source: str) -> None:
    problems = validate_file(DEMO_RULES / f"{source}.yaml")
    assert problems == [], [str(p) for p in problems]


@pytest.mark.parametrize("source", sorted(SERVERS))
def test_demo_dry_runs_the_source_rules_against_a_seeded_server(
    source: str, tmp_path: Path
) -> None:
    if source == "shaarli":
        require_server()
    done = rulebot("demo", source, "--items", "60", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    head = done.stderr.splitlines()[0]
    assert head.startswith("rulebot demo: ") and "(nothing is changed)" in head
    assert re.search(r"at http://127\.0\.0\.1:\d+;", head)
    assert re.search(r"^Plan: \d+ actions", done.stdout, re.M), done.stdout
    assert not list(tmp_path.iterdir())  # nothing left behind


def test_demo_keep_leaves_a_server_to_go_on_with_by_hand(tmp_path: Path) -> None:
    """With --keep the server stays up, and the commands it prints work."""
    process = subprocess.Popen(
        [sys.executable, "-m", "rulebot", "demo", "karakeep", "--items", "30", "--keep"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        lines = []
        for line in process.stdout:
            lines.append(line.rstrip("\n"))
            if "rulebot -c" in line and line.rstrip().endswith(
                "runs     # what the run did; `undo` takes it back"
            ):
                break
        env = dict(os.environ)
        for line in lines:
            if line.strip().startswith("export "):
                name, _, value = line.strip().removeprefix("export ").partition("=")
                env[name] = value
        [run_line] = [
            line for line in lines if line.endswith("# apply the rules to the demo server")
        ]
        argv = shlex.split(run_line.split("#")[0])[1:]
        applied = rulebot(*argv, env=env, cwd=tmp_path)
        assert applied.returncode == 0, applied.stderr
        assert "Applied:" in applied.stdout
        again = rulebot(*argv[:2], "plan", env=env, cwd=tmp_path)
        assert again.returncode == 0 and "no changes" in again.stdout  # the server kept it
    finally:
        _, err = stop(process)
        assert process.returncode == 0, err


@pytest.mark.parametrize("source", sorted(SERVERS))
def test_each_source_page_says_how_to_try_it_and_the_commands_exist(source: str) -> None:
    import importlib

    from rulebot.cli import build_parser

    page = (Path(__file__).resolve().parent.parent / "docs" / f"{source}.md").read_text()
    section = page.split("## Try it without an account", 1)[1].split("\n## ", 1)[0]
    assert f"rulebot demo {source}\n" in section
    build_parser().parse_args(["demo", source])
    for module in re.findall(r"python -m (rulebot[\w.]+)", section):
        assert hasattr(importlib.import_module(module), "main"), module
    for config in re.findall(r"rulebot -c (\S+) plan", section):
        assert (Path(__file__).resolve().parent.parent / config).is_file(), config


def test_demo_shaarli_uses_the_fake_when_the_real_one_cannot_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """No PHP here (as far as the demo knows): the fake Shaarli stands in. (capfd:
    the dry run is a process of its own, writing to the same terminal.)"""
    import rulebot.fake.real_shaarli
    from tests.helpers import clear_rulebot_env, rb

    clear_rulebot_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(rulebot.fake.real_shaarli, "missing_reason", lambda: "php is missing")
    code, out, err = rb(capfd, "demo", "shaarli", "--items", "60")
    assert code == 0, err
    assert err.startswith("rulebot demo: a fake Shaarli with 60 links at http://127.0.0.1:"), err
    assert re.search(r"^Plan: \d+ actions", out, re.M), out
    assert "SHAARLI_API_SECRET" not in os.environ  # the credentials went to the dry run only
    assert not list(tmp_path.iterdir())


def test_the_demo_servers_default_ports_differ_so_any_two_can_run_at_once() -> None:
    ports = {
        source: re.search(
            r"base_url: http://127\.0\.0\.1:(\d+)", (DEMO_RULES / f"{source}.yaml").read_text()
        )
        for source in SERVERS
    }
    assert all(ports.values()), ports
    numbers = [match.group(1) for match in ports.values() if match]
    assert len(set(numbers)) == len(numbers), ports
