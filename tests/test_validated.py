"""Rules files the schema passed are remembered (rulebot.rules.validated): an
unchanged file skips jsonschema, and nothing else changes. The property: with
the cache on, off, cold or warm, every text gets the same problems."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rulebot.rules import config, validated
from rulebot.rules.config import validate_text

ROOT = Path(__file__).resolve().parent.parent
CLEAN = """\
version: 1
rules:
  - name: old-unread
    where: {tag: read-later, added: {older_than: 30d}}
    actions: [archive]
"""
WRONG = CLEAN.replace("older_than: 30d", "older_than: 30 days")


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    where = tmp_path / "validated"
    monkeypatch.setenv("RULEBOT_CACHE_DIR", str(where))
    return where


def _schema_must_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(document: object) -> list[object]:
        raise AssertionError("the schema ran on a remembered file")

    monkeypatch.setattr(config, "schema_findings", refuse)


def test_a_clean_file_is_remembered_and_not_checked_again(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert validate_text(CLEAN) == []
    assert [path.name for path in cache.iterdir()] == [validated.key(CLEAN)]
    _schema_must_not_run(monkeypatch)
    assert validate_text(CLEAN) == []


def test_a_file_with_a_finding_is_checked_every_time(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = validate_text(WRONG)
    assert first and all(problem.line == 4 for problem in first)
    assert not cache.exists() or not any(cache.iterdir())
    assert validate_text(WRONG) == first


def test_the_semantic_checks_still_run_on_a_remembered_file(cache: Path) -> None:
    warned = CLEAN.replace("tag: read-later", "tag: read-later, word_count: {gte: 10}")
    first = validate_text(warned)
    assert [problem.is_error for problem in first] == [False]
    assert "word_count" in first[0].message
    assert validate_text(warned) == first  # remembered, and still warned about


def test_a_changed_text_schema_or_version_is_a_new_key(monkeypatch: pytest.MonkeyPatch) -> None:
    one = validated.key(CLEAN)
    assert validated.key(CLEAN + "\n") != one
    monkeypatch.setattr(validated, "__version__", "99.0")
    assert validated.key(CLEAN) != one
    monkeypatch.undo()
    monkeypatch.setattr(validated, "_schema_digest", lambda: b"another schema")
    assert validated.key(CLEAN) != one


def test_an_empty_cache_dir_turns_it_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("RULEBOT_CACHE_DIR", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path))
    assert validate_text(CLEAN) == []
    assert validated.known(CLEAN) is False
    assert list(tmp_path.iterdir()) == []


def test_xdg_cache_home_is_the_default(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("RULEBOT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert validated.directory() == tmp_path / "rulebot" / "validated"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert validated.directory() == tmp_path / ".cache" / "rulebot" / "validated"


def test_a_cache_that_cannot_be_written_only_costs_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("not a directory")
    monkeypatch.setenv("RULEBOT_CACHE_DIR", str(blocked / "validated"))
    assert validate_text(CLEAN) == []
    assert validate_text(WRONG) != []
    assert validated.known(CLEAN) is False
    assert blocked.read_text() == "not a directory"


def test_the_cache_keeps_the_most_recently_used(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validated, "KEEP", 6)
    texts = [CLEAN.replace("old-unread", f"rule-{n}") for n in range(7)]
    for age, text in enumerate(texts[:6]):
        validated.remember(text)
        os.utime(cache / validated.key(text), (1_000_000 + age, 1_000_000 + age))
    assert validated.known(texts[0])  # used now: the newest
    validated.remember(texts[6])  # the seventh: over KEEP, the oldest half goes
    kept = {path.name for path in cache.iterdir()}
    assert kept == {validated.key(text) for text in (texts[0], texts[5], texts[6])}


@settings(max_examples=60)
@given(
    st.sampled_from(
        [
            CLEAN,
            WRONG,
            CLEAN.replace("archive", "archiv"),
            CLEAN.replace("version: 1", "version: 2"),
            CLEAN + "  - name: old-unread\n    actions: [delete]\n",
            CLEAN.replace("[archive]", "[archive, {tags_add: []}]"),
        ]
    ),
    st.lists(st.booleans(), min_size=1, max_size=4),
)
def test_the_cache_never_changes_an_answer(text: str, switches: list[bool]) -> None:
    """Whatever was remembered before, with the cache on or off, a text gets
    the problems it gets from a cold check."""
    base = Path(os.environ["RULEBOT_CACHE_DIR"])
    saved = os.environ["RULEBOT_CACHE_DIR"]
    try:
        os.environ["RULEBOT_CACHE_DIR"] = ""
        cold = validate_text(text)
        for on in switches:
            os.environ["RULEBOT_CACHE_DIR"] = str(base / "property") if on else ""
            assert validate_text(text) == cold
    finally:
        os.environ["RULEBOT_CACHE_DIR"] = saved


def test_the_cli_does_not_import_jsonschema_for_a_remembered_file(
    cache: Path, tmp_path: Path
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(CLEAN, encoding="utf-8")
    command = [sys.executable, "-X", "importtime", "-m", "rulebot", "validate", str(rules)]
    env = {**os.environ, "RULEBOT_CACHE_DIR": str(cache)}
    runs = [subprocess.run(command, capture_output=True, text=True, env=env) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0]
    assert all(f"{rules}: valid\n" in run.stderr for run in runs)
    imported = [
        {line.split("|")[-1].strip() for line in run.stderr.splitlines() if "|" in line}
        for run in runs
    ]
    assert "jsonschema" in imported[0]
    assert "jsonschema" not in imported[1]
