"""Loading the rules file: YAML marks and traps, schema words, semantics, the model."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import subprocess
import sys
import textwrap
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from rulebot import actions, conditions
from rulebot.config import (
    Config,
    MarkedLoader,
    Problem,
    cron_problem,
    load_config,
    load_config_text,
    render_problems,
    validate_file,
    validate_text,
)
from rulebot.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent


def problems(text: str) -> list[str]:
    """Problems as ``LINE:COL: message [path]`` (file name dropped)."""
    return [str(p).split(":", 1)[1] for p in validate_text(textwrap.dedent(text), "f.yaml")]


def one_rule(where: str = "{tag: x}", actions_text: str = "[archive]", extra: str = "") -> str:
    return (
        f"version: 1\nrules:\n  - name: a\n    where: {where}\n    actions: {actions_text}\n"
        + extra
    )


# -- Problem and rendering ------------------------------------------------------------


def test_problem_str() -> None:
    problem = Problem("rules.yaml", 3, 7, "unknown key 'tagz' in where", "$.rules[0].where.tagz")
    assert str(problem) == "rules.yaml:3:7: unknown key 'tagz' in where [$.rules[0].where.tagz]"


def test_render_text_and_json() -> None:
    found = [Problem("f", 1, 1, "a", "$"), Problem("f", 2, 5, "b", "$.rules")]
    assert render_problems(found, "text") == "f:1:1: a [$]\nf:2:5: b [$.rules]"
    assert json.loads(render_problems(found, "json"))[1] == {
        "file": "f",
        "line": 2,
        "col": 5,
        "message": "b",
        "path": "$.rules",
    }
    assert render_problems([], "text") == ""
    assert render_problems([], "json") == "[]"
    assert render_problems([], "github") == ""
    with pytest.raises(ValueError):
        render_problems(found, "xml")


# -- YAML layer -----------------------------------------------------------------------


def test_marks_for_keys_and_values() -> None:
    loader = MarkedLoader("a:\n  b: [1, {c: x}]\n")
    try:
        assert loader.load_document() == {"a": {"b": [1, {"c": "x"}]}}
    finally:
        loader.dispose()
    assert loader.node_marks[("a", "b")] == ((2, 3), (2, 6))
    assert loader.node_marks[("a", "b", 1, "c")] == ((2, 11), (2, 14))


def test_duplicate_key_names_both_lines() -> None:
    text = "version: 1\nrules:\n  - name: a\n    where:\n      tag: x\n      tag: y\n"
    assert "6:7: duplicate key 'tag' (first at line 5); remove one of them" in "\n".join(
        problems(text + "    actions: [archive]\n")
    )


@pytest.mark.parametrize("word", ["on", "Off", "YES", "no", "y", "N"])
def test_yaml_11_booleans_must_be_quoted(word: str) -> None:
    assert problems(one_rule(where=f"{{tag: {word}}}")) == [
        f"4:18: `{word}` is read as a boolean by YAML; quote it: '{word}' [$.rules[0].where.tag]"
    ]
    assert problems(one_rule(where=f"{{tag: '{word}'}}")) == []


def test_boolean_spot_wants_true_or_false() -> None:
    assert problems(one_rule(where="{favorite: true}", extra="    enabled: False\n")) == []
    assert problems(one_rule(where="{untagged: Yes}")) == [
        "4:23: `Yes` is read as a boolean by YAML; write true or false [$.rules[0].where.untagged]"
    ]


def test_literal_boolean_where_text_is_wanted() -> None:
    assert problems(one_rule(where="{tag: true}")) == [
        "4:18: tag must be text or a list; got true [$.rules[0].where.tag]"
    ]


def test_sexagesimal_numbers() -> None:
    assert problems(one_rule(extra="    keep_newest: 1:30.5\n")) == [
        "6:18: `1:30.5` is read as the number 90.5 by YAML; quote it: '1:30.5' "
        "[$.rules[0].keep_newest]"
    ]


def test_bare_dates_are_accepted_only_where_a_date_is_meant() -> None:
    text = one_rule(where="{added: {before: 2025-01-01, after: 2024-06-01 10:00:00Z}}")
    config = load_config_text(text)
    assert config.rules[0].where is not None
    loader = MarkedLoader(text)
    document = loader.load_document()
    loader.dispose()
    assert document["rules"][0]["where"]["added"] == {
        "before": "2025-01-01",
        "after": "2024-06-01T10:00:00+00:00",
    }
    assert problems(one_rule(where="{tag: 2025-01-01}")) == [
        "4:18: `2025-01-01` is read as a date by YAML; quote it: '2025-01-01' "
        "[$.rules[0].where.tag]"
    ]


def test_test_times_take_bare_dates() -> None:
    text = one_rule() + (
        "tests:\n  - name: t\n    now: 2026-01-15\n"
        "    items: [{url: u, added: 2025-12-01, read: 3d}]\n    expect: []\n"
    )
    config = load_config_text(text)
    assert config.tests[0].now == "2026-01-15"
    assert config.tests[0].items == [{"url": "u", "added": "2025-12-01", "read": "3d"}]


def test_merge_keys_are_not_duplicates() -> None:
    text = """\
    version: 1
    rules:
      - name: a
        where: &stale {status: unread, added: {older_than: 30d}}
        actions: [archive]
      - name: b
        where:
          <<: *stale
          status: archived
        actions: [delete]
    """
    config = load_config_text(textwrap.dedent(text))
    assert [type(part).__name__ for part in config.rules[1].where.parts] == ["Status", "Added"]
    assert config.rules[1].where.parts[0].wanted == ["archived"]


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("a: &x [*x]\n", "1:4: this alias refers to itself"),
        ("version: !!binary aGk=\nrules: []\n", "YAML tag tag:yaml.org,2002:binary"),
        ("version: 1\nrules: []\n---\nversion: 1\n", "3:1: YAML syntax error"),
        ("version: 1\nrules: [*nope]\n", "found undefined alias"),
        ("version: 1\n? [a]\n: b\nrules: []\n", "a key must be a plain word"),
        ('version: 1\nrules: ["\x07"]\n', "2:10: character '\\x07' is not allowed"),
        (
            "42\n",
            "1:1: the top level must be a mapping (`version: 1`, `rules: ...`), not the value 42",
        ),
    ],
)
def test_odd_yaml_is_reported(text: str, fragment: str) -> None:
    assert fragment in "\n".join(problems(text))


def test_custom_tags_on_collections_are_read_as_plain() -> None:
    # PyYAML's SafeLoader would refuse `!custom []`; the value is what matters here.
    assert problems("version: 1\nrules: !custom []\n") == []


# -- schema layer -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            one_rule(where="{added: {older: 30d}}"),
            "4:21: unknown key 'older' in added; did you mean 'older_than'? "
            "[$.rules[0].where.added.older]",
        ),
        (
            one_rule(where="{all: [{tag: x}, {not: {tagz: z}}]}"),
            "4:36: unknown key 'tagz' in where; did you mean 'tag'? "
            "[$.rules[0].where.all[1].not.tagz]",
        ),
        (
            one_rule(where="{colour: red}"),
            "4:13: unknown key 'colour' in where; conditions are: tag, tags, untagged",
        ),
        (
            one_rule(where="{status: 5}"),
            "4:21: status must be one of unread, archived or a list; got 5",
        ),
        (
            one_rule(where="{added: {}}"),
            "4:20: added is empty; give at least one of: older_than, newer_than, before, after",
        ),
        (
            one_rule(actions_text="[{tags_add: [a], archive: }]"),
            "5:15: one action has 2 keys (tags_add, archive); write each action as its own",
        ),
        (
            one_rule(actions_text="[{tag_rename: {old_tag: a}}]"),
            "5:28: tag_rename is missing `new_tag`; add `new_tag:`",
        ),
        (
            "version: 1\npocket: {base_url: 'example.com'}\nrules: []\n",
            "2:20: base_url 'example.com' is not an http:// or https:// URL",
        ),
        (
            "version: 1\npocket: {page_size: 10}\nrules: []\n",
            "2:9: pocket is missing `base_url`",
        ),
        (
            "version: 1\nlimits:\nrules: []\n",
            "2:8: limits is empty; write a mapping (key: value lines), or remove the line",
        ),
    ],
)
def test_schema_messages(text: str, expected: str) -> None:
    assert any(found.startswith(expected) for found in problems(text)), problems(text)


def test_any_of_noise_is_collapsed() -> None:
    # jsonschema reports both branches of "a word or a list"; only the fitting one shows.
    assert problems(one_rule(where="{domain: [a.example, 3]}")) == [
        "4:33: domain[1] must be text; got 3 [$.rules[0].where.domain[1]]"
    ]


# -- semantic layer -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("0 6 * * 1", None),
        ("*/15 0-6,22 1-7 jan-mar mon-fri", None),
        ("0 0 * * 7", None),
        ("61 6 * * *", "minute field '61' is out of range 0-59"),
        ("0 24 * * *", "hour field '24' is out of range 0-23"),
        ("0 0 0 * *", "day-of-month field '0' is out of range 1-31"),
        ("0 0 * 13 *", "month field '13' is out of range 1-12"),
        ("0 0 * * 8", "day-of-week field '8' is out of range 0-7"),
        ("*/0 * * * *", "minute field '*/0': the step after / must be 1 or more"),
        ("5-1 * * * *", "minute field '5-1' runs backwards; write 1-5"),
        ("0 0 30 2 *", "never runs"),
        ("0 6 * *", "has 4 field(s); write 5"),
        ("@daily", "has 1 field(s); write 5"),
        ("0 0 * * mon#9", "is not a valid cron expression"),
        ("x 0 * * *", "is not a valid cron expression"),
    ],
)
def test_cron(expression: str, message: str | None) -> None:
    found = cron_problem(expression)
    assert found == message if message is None else message in (found or "")


def test_timezone_suggestion() -> None:
    assert problems("version: 1\ntimezone: utc\nrules: []\n") == [
        "2:11: unknown timezone 'utc'; did you mean 'UTC'? [$.timezone]"
    ]
    assert "write an IANA name" in problems("version: 1\ntimezone: Mars/Olympus\nrules: []\n")[0]


def test_vocabulary_error_points_inside_the_value() -> None:
    where = '{any: [{tag: x}, {not: {title: {regex: "a["}}}]}'
    [found] = problems(one_rule(where=where))
    assert found.startswith("4:51: regex 'a[' does not compile")
    assert found.endswith("[$.rules[0].where.any[1].not.title.regex]")


def test_semantics_skip_parts_the_schema_rejected() -> None:
    # The regex is broken too, but the where block already failed the schema.
    found = problems(one_rule(where='{tagz: x, title: {regex: "("}}'))
    assert len(found) == 1 and "unknown key 'tagz'" in found[0]


def test_account_wide_rule_with_limit() -> None:
    text = "version: 1\nrules:\n  - name: a\n    actions: [{tag_delete: x}]\n    limit: 5\n"
    assert problems(text) == [
        "5:12: limit counts items, and an account-wide rule acts on none; remove it "
        "[$.rules[0].limit]"
    ]


def test_duplicate_test_names_and_bad_dates() -> None:
    text = one_rule() + (
        "tests:\n"
        "  - {name: t, now: '2026-02-30', items: [], expect: []}\n"
        "  - {name: t, items: [{url: u, added: '2025-99-01'}], expect: []}\n"
    )
    found = problems(text)
    assert found[0].startswith("7:20: '2026-02-30' is not a date")
    assert found[1].startswith("8:12: test name 't' is used twice")
    assert found[2].startswith("8:39: '2025-99-01' is not a date")


# -- files and the model ------------------------------------------------------------------


def test_validate_file_sorts_by_line(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(
        one_rule(where="{status: x}", extra="    limit: 0\n").replace("version: 1", "version: 3")
    )
    found = validate_file(path)
    assert [(p.line, p.col) for p in found] == [(1, 10), (4, 21), (6, 12)]
    assert all(p.file == str(path) for p in found)


def test_load_config_raises_with_every_problem(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("version: 2\nrules: [{name: A, actions: []}]\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert len(caught.value.problems) == 3
    assert str(caught.value).startswith(f"{path}:1:10: version must be 1")
    with pytest.raises(ConfigError, match="no such file"):
        load_config(tmp_path / "missing.yaml")


def test_example_config_model() -> None:
    path = ROOT / "rules.example.yaml"
    config = load_config(path)
    assert isinstance(config, Config)
    assert config.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert config.version == 1 and config.pocket is None
    assert config.store == ROOT / ".rulebot" / "rulebot.db"
    assert config.timezone == ZoneInfo("UTC") and config.timezone_name == "UTC"
    assert (config.limits.max_actions, config.limits.max_deletes) == (500, 25)
    names = [rule.name for rule in config.rules]
    assert names[:2] == ["archive-stale-read-later", "rename-js"]
    stale = config.rule("archive-stale-read-later")
    assert isinstance(stale.where, conditions.Where)
    assert [a.name for a in stale.actions] == ["archive", "tags_add"]
    assert all(isinstance(a, actions.Action) for a in stale.actions)
    assert stale.line == 18 and stale.enabled and stale.limit is None and stale.keep_newest == 0
    assert config.rule("rename-js").account_wide and not stale.account_wide
    ancient = config.rule("delete-ancient-archive")
    assert ancient.limit == 20 <= config.limits.max_deletes
    assert any(rule.schedule == "0 6 * * 1" for rule in config.rules)
    assert len(config.tests) >= 2 and config.tests[0].now == "2026-01-15T06:00:00Z"


def test_defaults_and_pocket_settings(tmp_path: Path) -> None:
    text = "version: 1\npocket: {base_url: 'http://127.0.0.1:9'}\nrules: []\n"
    config = load_config_text(text, str(tmp_path / "conf" / "rules.yaml"))
    assert config.store == tmp_path / "conf" / ".rulebot" / "rulebot.db"
    assert config.timezone_name == "UTC" and config.timezone == ZoneInfo("UTC")
    pocket = config.pocket
    assert pocket is not None and pocket.base_url == "http://127.0.0.1:9"
    assert (pocket.page_size, pocket.batch_size, pocket.timeout, pocket.max_rate_wait) == (
        30,
        30,
        30,
        300,
    )
    assert (pocket.consumer_key_env, pocket.access_token_env) == (
        "POCKET_CONSUMER_KEY",
        "POCKET_ACCESS_TOKEN",
    )


@pytest.mark.parametrize(
    ("store", "expected"),
    [("db/x.sqlite", "conf/db/x.sqlite"), ("../x.db", "conf/../x.db"), ("/abs/x.db", "/abs/x.db")],
)
def test_store_resolves_from_the_config_directory(
    tmp_path: Path, store: str, expected: str
) -> None:
    config = load_config_text(
        f"version: 1\nstore: {store}\nrules: []\n", str(tmp_path / "conf" / "rules.yaml")
    )
    want = Path(expected) if expected.startswith("/") else tmp_path / expected
    assert config.store == want


def test_timezone_reaches_dates() -> None:
    text = "version: 1\ntimezone: Europe/Berlin\n" + one_rule(
        where="{added: {before: 2025-01-01}}"
    ).removeprefix("version: 1\n")
    config = load_config_text(text)
    [(_, _, instant)] = config.rules[0].where.parts[0].bounds
    berlin_midnight = dt.datetime(2025, 1, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    assert instant == int(berlin_midnight.timestamp())


def test_validate_stays_light() -> None:
    code = (
        "import sys; from rulebot.cli import main; "
        f"rc = main(['validate', '-q', {str(ROOT / 'rules.example.yaml')!r}]); "
        "print(rc, sorted(m for m in ('httpx', 'sqlite3') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "0 []"
