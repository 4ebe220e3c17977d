"""``rulebot validate`` through the real entry point: positions, formats, robustness."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulebot.cli import main
from tests.helpers import examples

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "rules.example.yaml"

VALID_RULE = """\
version: 1
rules:
  - name: a
    where: {tag: x}
    actions: [archive]
"""


def run_validate(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["validate", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write(tmp_path: Path, text: str | bytes, name: str = "rules.yaml") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


# (id, config text, line, col, message fragment)
INVALID = [
    ("empty", "", 1, 1, "the file is empty"),
    ("top-level-list", "- archive\n", 1, 1, "top level must be a mapping"),
    (
        "yaml-syntax",
        "version: 1\nrules:\n  - name: a\n   actions: [archive]\n",
        4,
        4,
        "YAML syntax error: expected <block end>",
    ),
    ("tab-indent", "version: 1\nrules:\n\t- name: a\n", 3, 1, "indent with spaces, not tabs"),
    (
        "duplicate-key",
        "version: 1\nrules:\n  - name: a\n    actions: [archive]\n    name: b\n",
        5,
        5,
        "duplicate key 'name' (first at line 3)",
    ),
    ("unknown-top-key", "version: 1\nrule: []\nrules: []\n", 2, 1, "did you mean 'rules'?"),
    ("version-2", "version: 2\nrules: []\n", 1, 10, "version must be 1"),
    ("missing-version", "rules: []\n", 1, 1, "missing `version`; add `version: 1`"),
    (
        "unknown-condition",
        VALID_RULE.replace("{tag: x}", "{tagz: x}"),
        4,
        13,
        "unknown key 'tagz' in where; did you mean 'tag'?",
    ),
    (
        "status-enum",
        VALID_RULE.replace("{tag: x}", "{status: unred}"),
        4,
        21,
        "status must be one of unread, archived; got 'unred'; did you mean 'unread'?",
    ),
    (
        "status-list-enum",
        VALID_RULE.replace("{tag: x}", "{status: [unread, archivd]}"),
        4,
        30,
        "[1] must be one of unread, archived; got 'archivd'",
    ),
    (
        "yaml-on-boolean",
        VALID_RULE.replace("{tag: x}", "{tag: on}"),
        4,
        18,
        "`on` is read as a boolean by YAML; quote it: 'on'",
    ),
    (
        "yaml-yes-where-boolean",
        VALID_RULE + "    enabled: yes\n",
        6,
        14,
        "`yes` is read as a boolean by YAML; write true or false",
    ),
    (
        "sexagesimal",
        VALID_RULE + "    limit: 1:30\n",
        6,
        12,
        "`1:30` is read as the number 90 by YAML; quote it: '1:30'",
    ),
    (
        "bare-date-in-description",
        VALID_RULE + "    description: 2025-01-01\n",
        6,
        18,
        "`2025-01-01` is read as a date by YAML; quote it",
    ),
    (
        "unknown-bare-action",
        VALID_RULE.replace("[archive]", "[archiv]"),
        5,
        15,
        "unknown action 'archiv'; did you mean 'archive'?",
    ),
    (
        "unknown-mapping-action",
        VALID_RULE.replace("[archive]", "\n      - tag_add: [x]"),
        6,
        9,
        "unknown action 'tag_add'; did you mean 'tags_add'?",
    ),
    (
        "bare-word-with-argument",
        VALID_RULE.replace("[archive]", "\n      - archive: true"),
        6,
        9,
        "`archive` takes no argument",
    ),
    (
        "action-needs-argument",
        VALID_RULE.replace("[archive]", "[tags_add]"),
        5,
        15,
        "`tags_add` needs an argument",
    ),
    ("empty-actions", VALID_RULE.replace("[archive]", "[]"), 5, 14, "actions is empty"),
    (
        "missing-actions",
        "version: 1\nrules:\n  - name: a\n    where: {tag: x}\n",
        3,
        5,
        "this rule is missing `actions`",
    ),
    (
        "rule-name-pattern",
        VALID_RULE.replace("name: a", "name: Archive Old"),
        3,
        11,
        "try 'archive-old'",
    ),
    (
        "cron-out-of-range",
        VALID_RULE + '    schedule: "61 6 * * *"\n',
        6,
        15,
        "minute field '61' is out of range 0-59",
    ),
    (
        "cron-six-fields",
        VALID_RULE + '    schedule: "0 0 6 * * *"\n',
        6,
        15,
        "has 6 field(s); write 5",
    ),
    (
        "regex-does-not-compile",
        VALID_RULE.replace("{tag: x}", '{title: {regex: "(("}}'),
        4,
        28,
        "regex '((' does not compile",
    ),
    (
        "bad-duration",
        VALID_RULE.replace("{tag: x}", '{added: {older_than: "30 days"}}'),
        4,
        33,
        "is not a duration; write a whole number and a unit",
    ),
    (
        "invalid-date",
        VALID_RULE.replace("{tag: x}", "{added: {before: 2025-13-01}}"),
        4,
        29,
        "'2025-13-01' is not a date",
    ),
    (
        "comma-in-tag-list",
        VALID_RULE.replace("[archive]", '\n      - tags_add: [ok, "a,b"]'),
        6,
        24,
        "tag 'a,b' contains a comma",
    ),
    (
        "timezone-typo",
        "version: 1\ntimezone: Europe/Berln\nrules: []\n",
        2,
        11,
        "unknown timezone 'Europe/Berln'; did you mean 'Europe/Berlin'?",
    ),
    (
        "duplicate-rule-name",
        VALID_RULE + "  - name: a\n    where: {tag: z}\n    actions: [archive]\n",
        6,
        11,
        "rule name 'a' is already used at line 3",
    ),
    (
        "account-wide-with-where",
        VALID_RULE.replace("[archive]", "\n      - tag_delete: old"),
        6,
        9,
        "tag_delete is account-wide",
    ),
    (
        "mixed-account-wide",
        "version: 1\nrules:\n  - name: a\n    actions:\n      - tag_delete: old\n      - archive\n",
        6,
        9,
        "put the account-wide actions in a rule of their own",
    ),
    (
        "negative-max-deletes",
        "version: 1\nlimits:\n  max_deletes: -1\nrules: []\n",
        3,
        16,
        "max_deletes must be at least 0; got -1",
    ),
    (
        "page-size-too-big",
        "version: 1\npocket:\n  base_url: https://p.example\n  page_size: 9000\nrules: []\n",
        4,
        14,
        "page_size must be at most 5000",
    ),
    (
        "empty-where",
        VALID_RULE.replace("{tag: x}", ""),
        4,
        11,
        "where is empty; add a condition",
    ),
    (
        "rule-not-mapping",
        "version: 1\nrules:\n  - archive\n",
        3,
        5,
        "[0] must be a mapping",
    ),
    (
        "expect-unknown-rule",
        VALID_RULE + "tests:\n  - name: t\n    items: [{url: 'https://x.example'}]\n"
        "    expect: [{action: archive, rule: b}]\n",
        9,
        38,
        "expect names rule 'b', which is not in rules",
    ),
    (
        "test-item-missing-url",
        VALID_RULE + "tests:\n  - name: t\n    items: [{id: 1}]\n    expect: []\n",
        8,
        13,
        "this test item is missing `url`",
    ),
    (
        "not-utf8",
        b"version: 1\nrules: []\n# caf\xe9\n",
        1,
        1,
        "not UTF-8 text",
    ),
    ("binary", b"\x00\x01\x02\xff\xfe", 1, 1, "not UTF-8 text"),
    ("nul-bytes", b"version: 1\x00\n", 1, 1, "binary file"),
]


@pytest.mark.parametrize(
    ("text", "line", "col", "fragment"),
    [case[1:] for case in INVALID],
    ids=[case[0] for case in INVALID],
)
def test_invalid_config_is_located(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    text: str | bytes,
    line: int,
    col: int,
    fragment: str,
) -> None:
    path = write(tmp_path, text)
    code, out, err = run_validate(capsys, str(path))
    assert code == 1
    assert "Traceback" not in err and "internal error" not in err
    lines = out.splitlines()
    located = [entry for entry in lines if entry.startswith(f"{path}:{line}:{col}: ")]
    assert any(fragment in entry for entry in located), out


def test_there_are_enough_invalid_cases() -> None:
    assert len(INVALID) >= 25


def test_every_problem_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    text = VALID_RULE.replace("{tag: x}", "{tagz: x, status: unred}") + "    limit: 0\n"
    path = write(tmp_path, text)
    code, out, _ = run_validate(capsys, str(path))
    assert code == 1
    assert [entry.split(": ", 1)[0] for entry in out.splitlines()] == [
        f"{path}:4:13",
        f"{path}:4:30",
        f"{path}:6:12",
    ]


def test_example_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run_validate(capsys, str(EXAMPLE))
    assert (code, out) == (0, "")  # no errors, and no warnings either
    assert err == f"{EXAMPLE}: valid\n"


def test_config_from_global_option(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(tmp_path, VALID_RULE, "mine.yaml")
    assert main(["-c", str(path), "validate"]) == 0
    assert main(["validate", "-q", "-c", str(path)]) == 0
    monkeypatch.chdir(tmp_path)
    assert main(["validate"]) == 1  # ./rules.yaml does not exist
    assert "rules.yaml:1:1: no such file; create it or pass -c FILE" in capsys.readouterr().out


def test_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    missing = tmp_path / "nope.yaml"
    code, out, _ = run_validate(capsys, str(missing))
    assert code == 1
    assert out == f"{missing}:1:1: no such file; create it or pass -c FILE [$]\n"


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "--format", "xml"],
        ["validate", "--format"],
        ["nosuch"],
        ["validate", "--bogus"],
    ],
)
def test_usage_errors_exit_1(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 1
    assert "usage:" in capsys.readouterr().err


PROBLEM_TEXT = 'version: 1\nrules:\n  - name: a\n    where: {"t,a:g%": x}\n    actions: [archive]\n'


def test_json_format_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, PROBLEM_TEXT)
    code, out, err = run_validate(capsys, str(path), "--format", "json")
    assert code == 1 and err == ""
    message = "unknown key 't,a:g%' in where; did you mean 'tag'?"
    expected = [
        {
            "file": str(path),
            "line": 4,
            "col": 13,
            "severity": "error",
            "message": message,
            "path": "$.rules[0].where['t,a:g%']",
        }
    ]
    assert json.loads(out) == expected
    assert out == json.dumps(expected, indent=2) + "\n"


def test_json_format_valid_is_empty_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = run_validate(capsys, str(write(tmp_path, VALID_RULE)), "--format", "json")
    assert (code, out, err) == (0, "[]\n", "")


def test_github_format_exact(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, PROBLEM_TEXT, "we,ird:name.yaml")
    code, out, _ = run_validate(capsys, str(path), "--format", "github")
    assert code == 1
    escaped_file = str(path).replace(",", "%2C").replace(":", "%3A")
    assert out == (
        f"::error file={escaped_file},line=4,col=13::"
        "unknown key 't,a:g%25' in where; did you mean 'tag'?\n"
    )


def test_github_escapes_newlines() -> None:
    from rulebot.rules.config import Problem, render_problems

    # a message is one line whatever it quotes: control characters are escaped first
    problem = Problem("a,b:c%.yaml", 2, 3, "100% wrong\r\nreally", "$.x")
    assert render_problems([problem], "github") == (
        "::error file=a%2Cb%3Ac%25.yaml,line=2,col=3::100%25 wrong\\r\\nreally"
    )


# -- a few through a real process ------------------------------------------------------


def _subprocess(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "rulebot", *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )


def test_subprocess_example_valid() -> None:
    done = _subprocess("validate", str(EXAMPLE))
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""


@pytest.mark.parametrize("case", [INVALID[4], INVALID[14], INVALID[22]], ids=lambda c: c[0])
def test_subprocess_invalid(tmp_path: Path, case: tuple) -> None:
    _, text, line, col, fragment = case
    path = write(tmp_path, text)
    done = _subprocess("validate", str(path))
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert f"{path}:{line}:{col}: " in done.stdout and fragment in done.stdout


def test_subprocess_usage_error() -> None:
    done = _subprocess("validate", "--format", "yaml")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr


# -- never a traceback ------------------------------------------------------------------


def _validate_quietly(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    import contextlib
    import io

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["validate", "-q", str(path)])
    assert code in (0, 1), err.getvalue()
    assert "Traceback" not in err.getvalue()
    assert "internal error" not in err.getvalue(), err.getvalue()


FUZZ = settings(
    max_examples=examples(200),
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 10_000),
    st.floats(allow_nan=True),
    st.text(max_size=12),
    st.sampled_from(
        ["on", "no", "1:30", "2025-01-01", "30d", "archive", "tags_add", "* * * * *", "UTC"]
    ),
)
_keys = st.one_of(
    st.sampled_from(
        [
            "version",
            "rules",
            "name",
            "where",
            "actions",
            "tag",
            "tags",
            "status",
            "added",
            "older_than",
            "before",
            "all",
            "any",
            "not",
            "limits",
            "max_deletes",
            "schedule",
            "tests",
            "items",
            "expect",
            "url",
            "pocket",
            "timezone",
            "tag_rename",
            "limit",
        ]
    ),
    st.text(min_size=1, max_size=8),
)
_documents = st.recursive(
    _scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(_keys, children, max_size=5)
    ),
    max_leaves=25,
)


@FUZZ
@given(document=_documents, style=st.sampled_from([None, True, False]))
def test_fuzz_random_documents(tmp_path: Path, document: object, style: bool | None) -> None:
    import yaml

    if isinstance(document, dict) and style is not None:
        document = {"version": 1, "rules": [document]} if style else {"version": 1, **document}
    text = yaml.safe_dump(document, default_flow_style=None, allow_unicode=True)
    _validate_quietly(tmp_path, text.encode("utf-8"))


EXAMPLE_LINES = EXAMPLE.read_text(encoding="utf-8").splitlines(keepends=True)


@FUZZ
@given(
    edits=st.lists(
        st.tuples(
            st.sampled_from(["delete", "duplicate", "retype", "swap", "dedent"]),
            st.integers(0, len(EXAMPLE_LINES) - 1),
            st.sampled_from(
                ["", "x", "- ", ": ", "[", "{", "&a", "*a", "on", "1:30", "2020-01-01", "'"]
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_fuzz_mutated_example(tmp_path: Path, edits: list[tuple[str, int, str]]) -> None:
    lines = list(EXAMPLE_LINES)
    for kind, index, junk in edits:
        index %= len(lines)
        if kind == "delete":
            del lines[index]
        elif kind == "duplicate":
            lines.insert(index, lines[index])
        elif kind == "retype":  # replace the value after the first colon
            head, sep, _ = lines[index].partition(":")
            lines[index] = f"{head}{sep} {junk}\n" if sep else junk + "\n"
        elif kind == "swap" and index + 1 < len(lines):
            lines[index], lines[index + 1] = lines[index + 1], lines[index]
        elif kind == "dedent":
            lines[index] = lines[index].lstrip()
        if not lines:
            lines = ["\n"]
    _validate_quietly(tmp_path, "".join(lines).encode("utf-8"))


@FUZZ
@given(data=st.binary(max_size=200))
def test_fuzz_random_bytes(tmp_path: Path, data: bytes) -> None:
    _validate_quietly(tmp_path, data)


def test_alias_bomb_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 9)]
    path = write(tmp_path, "\n".join(lines) + "\n")
    code, out, _ = run_validate(capsys, str(path))
    assert code == 1 and "more than" in out


def test_deep_nesting_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "version: 1\nrules: " + "[" * 5000 + "]" * 5000 + "\n")
    code, out, err = run_validate(capsys, str(path))
    assert code == 1 and "internal error" not in err
    assert out.startswith(f"{path}:")


def test_random_mutations_smoke(tmp_path: Path) -> None:
    """A fixed handful without hypothesis, so a failure is easy to replay."""
    rng = random.Random(7)
    for _ in range(30):
        lines = list(EXAMPLE_LINES)
        for _ in range(3):
            del lines[rng.randrange(len(lines))]
        _validate_quietly(tmp_path, "".join(lines).encode("utf-8"))


def test_several_files_at_once_as_pre_commit_passes_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "rules-good.yaml"
    good.write_text("version: 1\nrules:\n  - name: a\n    where: {}\n    actions: [archive]\n")
    bad = tmp_path / "rules-bad.yaml"
    bad.write_text("version: 1\nrules:\n  - name: b\n")
    code = main(["validate", str(good), str(bad)])
    captured = capsys.readouterr()
    assert code == 1
    assert captured.out.startswith(f"{bad}:3:5: ")
    assert f"{good}: valid" in captured.err and f"{bad}: valid" not in captured.err
    assert main(["validate", str(good), str(good)]) == 0


# -- A4: every problem everywhere, warnings ------------------------------------------------

THREE_PROBLEMS = """\
version: 1
rules:
  - name: a
    where: {tagz: x}
    actions: [archiv]
  - name: b
    schedule: "0 0 31 2 *"
    where: {}
    actions: [archive]
"""


@pytest.mark.parametrize("command", [["plan"], ["run", "--dry-run"], ["run"], ["test"]])
def test_every_command_that_loads_the_config_shows_every_problem(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    path = write(tmp_path, THREE_PROBLEMS)
    code, validate_out, _ = run_validate(capsys, str(path))
    assert code == 1 and len(validate_out.splitlines()) == 3
    code = main(["-c", str(path), "--store", str(tmp_path / "s.db"), *command])
    captured = capsys.readouterr()
    assert code == 1
    assert "Traceback" not in captured.err
    assert captured.err.startswith("rulebot: error: the config has 3 problems:\n")
    for line in validate_out.splitlines():  # exactly what validate shows, one a line
        assert line in captured.err.splitlines()


WARNED = VALID_RULE.replace("{tag: x}", "{tag: x, favorite: true}")


def test_only_warnings_exit_0_in_every_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, WARNED)
    code, out, err = run_validate(capsys, str(path))
    assert code == 0
    assert out.startswith(f"{path}:4:21: warning: rule a: `favorite` is never known")
    assert err == f"{path}: valid\n"
    code, out, _ = run_validate(capsys, str(path), "--format", "json")
    assert code == 0 and [p["severity"] for p in json.loads(out)] == ["warning"]
    code, out, _ = run_validate(capsys, str(path), "--format", "github")
    assert code == 0 and out.startswith("::warning file=") and "line=4,col=21::rule a:" in out


def test_a_warning_next_to_an_error_still_fails(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, WARNED.replace("[archive]", "[archiv]"))
    code, out, err = run_validate(capsys, str(path))
    assert code == 1
    assert [": warning: " in line for line in out.splitlines()] == [True, False]
    assert "valid" not in err


def test_plan_runs_with_warnings(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, WARNED)
    code = main(["-c", str(path), "--store", str(tmp_path / "s.db"), "plan"])
    assert code == 0, capsys.readouterr().err
