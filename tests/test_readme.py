"""The README's two commands are the contract with a new user: keep them true."""

from __future__ import annotations

import re
from pathlib import Path

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
