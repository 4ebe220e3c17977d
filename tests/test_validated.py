"""Rules files the schema passed are remembered (rulebot.rules.validated): an
unchanged file is neither read as YAML again nor checked by jsonschema, and
nothing else changes. The properties: with the cache on, off, cold or warm,
every text gets the same problems, and a remembered file gives the document
and marks that reading it gives."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st

from rulebot.rules import config, marked_yaml, validated
from rulebot.rules.config import validate_text
from rulebot.rules.problems import Checked, Problem

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
    # it holds what the rules file holds: the owner's alone
    assert stat.S_IMODE((cache / validated.key(CLEAN)).stat().st_mode) == 0o600
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
    assert validated.recall(CLEAN) is None
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
    assert validated.recall(CLEAN) is None
    assert blocked.read_text() == "not a directory"


def test_the_cache_keeps_the_most_recently_used(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(validated, "KEEP", 6)
    texts = [CLEAN.replace("old-unread", f"rule-{n}") for n in range(7)]
    for age, text in enumerate(texts[:6]):
        validated.remember(text, {"version": 1}, {})
        os.utime(cache / validated.key(text), (1_000_000 + age, 1_000_000 + age))
    assert validated.recall(texts[0]) is not None  # used now: the newest
    validated.remember(texts[6], {"version": 1}, {})  # the seventh: over KEEP, the oldest half goes
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


def _imported(run: subprocess.CompletedProcess[str]) -> set[str]:
    return {line.split("|")[-1].strip() for line in run.stderr.splitlines() if "|" in line}


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
    imported = [_imported(run) for run in runs]
    assert {"jsonschema", "yaml"} <= imported[0]
    assert not {"jsonschema", "yaml"} & imported[1]


def test_a_nightly_plan_of_a_remembered_file_reads_no_yaml(cache: Path, tmp_path: Path) -> None:
    """The nightly case: ``plan`` of an unchanged file on the local library
    (the bundled sample) imports neither PyYAML nor jsonschema, and plans
    what the first run planned."""
    rules = tmp_path / "rules.yaml"
    rules.write_text(
        CLEAN.replace("read-later", "python").replace("[archive]", "[archive, {tags_add: [old]}]"),
        encoding="utf-8",
    )
    base = [sys.executable, "-m", "rulebot", "-c", str(rules), "--store", str(tmp_path / "l.db")]
    env = {**os.environ, "RULEBOT_CACHE_DIR": str(cache)}
    sample = ROOT / "examples" / "sample-library.csv"
    subprocess.run([*base, "import", str(sample)], check=True, capture_output=True, env=env)
    for key_file in cache.iterdir():  # the import read the file: start cold
        key_file.unlink()
    plan = ["plan", "--format", "json", "--now", "2026-12-01T00:00:00Z"]
    command = [base[0], "-X", "importtime", *base[1:], *plan]
    runs = [subprocess.run(command, capture_output=True, text=True, env=env) for _ in range(2)]
    assert [run.returncode for run in runs] == [0, 0], runs[1].stderr
    assert runs[0].stdout == runs[1].stdout
    assert json.loads(runs[0].stdout)["summary"]["by_rule"]["old-unread"] > 0
    assert {"jsonschema", "yaml"} <= _imported(runs[0])
    assert not {"jsonschema", "yaml"} & _imported(runs[1])


def test_a_remembered_file_is_not_read_again(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = config.load_config_text(CLEAN)

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a remembered file was read as YAML")

    monkeypatch.setattr(marked_yaml, "MarkedLoader", refuse)
    _schema_must_not_run(monkeypatch)
    again = config.load_config_text(CLEAN)

    def shown(loaded: config.Config) -> list[tuple[str, int, list[str], bool]]:
        return [
            (rule.name, rule.line, [type(a).__name__ for a in rule.actions], rule.where is None)
            for rule in loaded.rules
        ]

    assert shown(again) == shown(first) == [("old-unread", 3, ["Archive"], False)]


@pytest.mark.parametrize(
    "stored",
    [
        b"",  # what rulebot 0.1's cache wrote: a bare key
        b"not json",
        b"[1, 2]",
        b'{"document": [1], "marks": []}',
        b'{"document": {"version": 1}}',
        b'{"document": {"version": 1}, "marks": [[["version"], [1]]]}',
        b'{"document": {"version": 1}, "marks": 5}',
        b"\xff\xfe",
    ],
)
def test_a_key_file_not_as_written_is_no_key(
    cache: Path, monkeypatch: pytest.MonkeyPatch, stored: bytes
) -> None:
    """A key file rulebot did not write (an older version's, a torn or
    garbled one) counts as never seen: the file is read and checked afresh,
    and remembered properly."""
    cache.mkdir()
    (cache / validated.key(CLEAN)).write_bytes(stored)
    assert validated.recall(CLEAN) is None
    ran = []
    real = config.schema_findings

    def counted(document: dict[str, Any]) -> object:
        ran.append(1)
        return real(document)

    monkeypatch.setattr(config, "schema_findings", counted)
    assert validate_text(CLEAN) == []
    assert ran == [1]
    assert validated.recall(CLEAN) is not None
    assert validate_text(CLEAN) == []
    assert ran == [1]


def test_the_key_covers_the_yaml_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    """A changed ``marked_yaml`` (which decides what the document is) forgets
    what the old one read."""
    digest = validated._schema_digest.__wrapped__()
    real = Path.read_bytes

    def edited(self: Path) -> bytes:
        data = real(self)
        return data + b"# edited\n" if self.name == "marked_yaml.py" else data

    monkeypatch.setattr(Path, "read_bytes", edited)
    assert validated._schema_digest.__wrapped__() != digest


# -- what a remembered file gives is what reading it gives --------------------------------------

tag = st.from_regex(r"[a-zé][a-z0-9é_-]{0,6}", fullmatch=True)
condition = st.one_of(
    st.fixed_dictionaries({"tag": tag}),
    st.fixed_dictionaries({"title": st.fixed_dictionaries({"contains": st.text(max_size=8)})}),
    st.fixed_dictionaries({"added": st.fixed_dictionaries({"older_than": st.just("30d")})}),
    st.fixed_dictionaries({"status": st.sampled_from(["unread", "archived"])}),
    st.fixed_dictionaries({"added": st.fixed_dictionaries({"before": st.dates()})}),
)
valid_rule = st.fixed_dictionaries(
    {
        "name": st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True),
        "where": st.one_of(
            condition, st.fixed_dictionaries({"all": st.lists(condition, min_size=1)})
        ),
        "actions": st.lists(
            st.one_of(
                st.sampled_from(["archive", "favorite", "readd"]),
                st.fixed_dictionaries({"tags_add": st.lists(tag, min_size=1, max_size=2)}),
            ),
            min_size=1,
            max_size=2,
        ),
    },
    optional={
        "description": st.text(max_size=20),
        "limit": st.integers(0, 10**6),
        "enabled": st.booleans(),
    },
)
document = st.fixed_dictionaries(
    {
        "version": st.just(1),
        "rules": st.lists(valid_rule, min_size=1, max_size=3, unique_by=lambda r: r["name"]),
    },
    optional={
        "timezone": st.sampled_from(["UTC", "Europe/Paris"]),
        "limits": st.fixed_dictionaries({"max_actions": st.integers(1, 10**6)}),
        "pocket": st.fixed_dictionaries(
            {"base_url": st.just("http://127.0.0.1:1")},
            optional={"timeout": st.floats(0.5, 1e6), "page_size": st.integers(1, 5000)},
        ),
    },
)
ANCHORED = (
    CLEAN
    + """  - &base
    name: tagged
    where: {tag: "x", title: {glob: "*a*"}}
    actions: [{tags_add: [y]}]
  - <<: *base
    name: tagged-again
    description: |
      two lines,
      the second with a tab\there
"""
)


def _dumped(drawn: tuple[dict[str, object], bool | None, int]) -> str:
    document, flow, width = drawn
    return yaml.safe_dump(
        document, allow_unicode=True, sort_keys=False, default_flow_style=flow, width=width
    )


def _read(text: str) -> tuple[Checked, list[Problem]]:
    return config._run(config._check_text, text, "rules.yaml")


@settings(max_examples=80, deadline=None)
@given(
    st.one_of(
        st.just(ANCHORED),
        st.tuples(document, st.sampled_from([None, True, False]), st.integers(20, 200)).map(
            _dumped
        ),
    )
)
def test_a_remembered_file_gives_what_reading_it_gives(text: str) -> None:
    """Read cold, then recalled: the same document (types included), the
    same marks, the same problems, whatever the text holds."""
    saved = os.environ["RULEBOT_CACHE_DIR"]
    try:
        os.environ["RULEBOT_CACHE_DIR"] = ""
        cold, cold_problems = _read(text)
        os.environ["RULEBOT_CACHE_DIR"] = str(Path(saved) / "recall")
        _read(text)  # remembered here if clean
        recalled = validated.recall(text)
        warm, warm_problems = _read(text)
    finally:
        os.environ["RULEBOT_CACHE_DIR"] = saved
    assert warm_problems == cold_problems
    event("recalled" if recalled is not None else "not kept")
    if recalled is None:  # only a text the YAML and schema layers found nothing in is kept
        assert cold_problems
        return
    assert repr(warm.document) == repr(cold.document)  # 1 and 1.0, True and 1 told apart
    assert warm.marks == cold.marks
