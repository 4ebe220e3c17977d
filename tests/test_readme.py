"""The README's two commands are the contract with a new user: keep them true."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def sh_blocks() -> list[str]:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    return re.findall(r"```sh\n(.*?)```", text, flags=re.S)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    test_command = sh_blocks()[1].strip()
    assert "pytest" in test_command
    ci_lines = [line for line in (ROOT / ".ci" / "run").read_text().splitlines() if line.strip()]
    assert ci_lines[-1] == test_command


def test_main_job_is_a_dry_run_of_the_example_on_the_sample_library() -> None:
    main_job = sh_blocks()[0].strip()
    assert "\n" not in main_job  # one command
    assert "rulebot -c rules.example.yaml import examples/sample-library.csv" in main_job
    assert main_job.endswith("rulebot -c rules.example.yaml plan")  # plan sends nothing
    assert (ROOT / "examples" / "sample-library.csv").is_file()
    assert (ROOT / "rules.example.yaml").is_file()


def test_the_example_deletes_at_most_20_a_night_however_often_it_runs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README promises "at most 20 a night": three runs in one night on the
    sample library delete 20 in all (before the rule had a schedule, its
    limit counted per run: 20 + 20 + …), and the next night it deletes again."""
    from rulebot.cli import main

    shutil.copy(ROOT / "rules.example.yaml", tmp_path / "rules.yaml")
    config = str(tmp_path / "rules.yaml")
    assert main(["-c", config, "import", str(ROOT / "examples" / "sample-library.csv")]) == 0

    def deleted(now: str) -> int:
        capsys.readouterr()
        assert main(["-c", config, "run", "--now", now, "--format", "json"]) == 0
        result = json.loads(capsys.readouterr().out)
        return sum(1 for done in result["succeeded"] if done["send"]["action"] == "delete")

    night = ("2026-03-02T03:05:00Z", "2026-03-02T04:00:00Z", "2026-03-02T23:00:00Z")
    assert [deleted(now) for now in night] == [20, 0, 0]
    assert 0 < deleted("2026-03-03T03:05:00Z") <= 20  # the next night: what is left, up to 20
