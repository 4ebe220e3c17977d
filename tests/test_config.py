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

from rulebot.errors import ConfigError
from rulebot.rules import actions, conditions
from rulebot.rules.config import (
    Config,
    Problem,
    load_config,
    load_config_text,
    render_problems,
    validate_file,
    validate_text,
)
from rulebot.rules.marked_yaml import MarkedLoader
from rulebot.rules.semantics import cron_problem

ROOT = Path(__file__).resolve().parent.parent


def problems(text: str) -> list[str]:
    """Errors as ``LINE:COL: message [path]`` (file name dropped; warnings left out)."""
    found = validate_text(textwrap.dedent(text), "f.yaml")
    return [str(p).split(":", 1)[1] for p in found if p.is_error]


def warnings(text: str) -> list[str]:
    """Warnings as ``LINE:COL: warning: message [path]``."""
    found = validate_text(textwrap.dedent(text), "f.yaml")
    return [str(p).split(":", 1)[1] for p in found if not p.is_error]


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
        "severity": "error",
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
    where = config.rules[1].where
    assert where is not None
    assert [type(part).__name__ for part in where.parts] == ["Status", "Added"]
    assert isinstance(where.parts[0], conditions.Status)
    assert where.parts[0].wanted == ["archived"]


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
        (  # each source's own words, never the dead getpocket.com (#26)
            "version: 1\nkarakeep: {base_url: 'karakeep.lan'}\nrules: []\n",
            "2:22: base_url 'karakeep.lan' is not an http:// or https:// URL; write your "
            "Karakeep server's address, e.g. https://karakeep.example.com",
        ),
        (
            "version: 1\nwallabag: {client_id_env: W}\nrules: []\n",
            "2:11: wallabag is missing `base_url`; add `base_url: https://wallabag.example.com` "
            "(the address of your Wallabag server)",
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
    # every problem, one a line, as `validate` prints them (#10.7)
    message = str(caught.value)
    assert message.splitlines()[0] == "the config has 3 problems:"
    assert message.splitlines()[1:] == [str(p) for p in caught.value.problems]
    assert message.splitlines()[1].startswith(f"{path}:1:10: version must be 1")
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
    assert names[:3] == ["delete-ancient-archive", "archive-stale-read-later", "rename-js"]
    stale = config.rule("archive-stale-read-later")
    assert stale is not None
    assert isinstance(stale.where, conditions.Where)
    assert [a.name for a in stale.actions] == ["archive", "tags_add"]
    assert all(isinstance(a, actions.Action) for a in stale.actions)
    assert stale.line == 34 and stale.enabled and stale.limit is None and stale.keep_newest == 0
    rename = config.rule("rename-js")
    assert rename is not None and rename.account_wide and not stale.account_wide
    ancient = config.rule("delete-ancient-archive")
    assert ancient is not None
    assert ancient.limit == 20 <= config.limits.max_deletes
    assert ancient.schedule == "0 3 * * *"  # 20 a night, not 20 a run
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
    where = config.rules[0].where
    assert where is not None and isinstance(where.parts[0], conditions.TimeCondition)
    [(_, _, instant)] = where.parts[0].bounds
    berlin_midnight = dt.datetime(2025, 1, 1, tzinfo=ZoneInfo("Europe/Berlin"))
    assert instant == int(berlin_midnight.timestamp())


def test_validate_stays_light() -> None:
    code = (
        "import sys; from rulebot.cli import main; "
        f"rc = main(['validate', '-q', {str(ROOT / 'rules.example.yaml')!r}]); "
        "print(rc, sorted(m for m in ('httpx', 'sqlite3') if m in sys.modules))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip().splitlines()[-1] == "0 []"


# -- A4: where: {}, all problems, warnings, capabilities, hints, limits -------------------

POCKET = "pocket: {base_url: 'http://127.0.0.1:9'}\n"


def test_item_actions_without_where_are_an_error_that_names_where_braces() -> None:
    text = "version: 1\nrules:\n  - name: a\n    actions: [archive, {tags_add: [x]}]\n"
    assert problems(text) == [
        "4:5: archive, tags_add acts on matching items, but this rule has no `where`; write "
        "`where: {}` for every item (the explicit 'every item'), or add conditions "
        "[$.rules[0].actions]"
    ]
    with pytest.raises(ConfigError, match=r"where: \{\}"):
        load_config_text(text)


def test_where_braces_is_every_item() -> None:
    from .helpers import NOW, item

    config = load_config_text(one_rule(where="{}"))
    rule = config.rules[0]
    assert rule.where is not None and not rule.account_wide
    library = [item(1, tags=None), item(2, favorite=None)]
    assert [i.item_id for i in rule.where.select(library, NOW)] == ["1", "2"]


def test_nested_empty_block_is_still_an_error() -> None:
    assert problems(one_rule(where="{not: {}}")) == [
        "4:18: not is empty; give at least one condition, e.g. `tag: read-later` "
        "[$.rules[0].where.not]"
    ]
    assert problems(one_rule(where="{any: [{}]}"))[0].endswith("[$.rules[0].where.any[0]]")


def test_warning_is_reported_but_config_loads() -> None:
    text = one_rule(where="{favorite: true}")
    assert problems(text) == []
    assert warnings(text) == [
        "4:13: warning: rule a: `favorite` is never known in the local library (a Pocket export "
        "has no favourite column), so this condition never matches [$.rules[0].where.favorite]"
    ]
    config = load_config_text(text)
    assert [p.severity for p in config.warnings] == ["warning"]
    assert config.warnings[0].path == "$.rules[0].where.favorite"


def test_warning_renderings() -> None:
    found = [
        Problem("f", 1, 2, "x", "$.a", "warning"),
        Problem("f", 3, 4, "y", "$.b"),
    ]
    assert render_problems(found, "text") == "f:1:2: warning: x [$.a]\nf:3:4: y [$.b]"
    assert [p["severity"] for p in json.loads(render_problems(found, "json"))] == [
        "warning",
        "error",
    ]
    assert render_problems(found, "github") == (
        "::warning file=f,line=1,col=2::x\n::error file=f,line=3,col=4::y"
    )


@pytest.mark.parametrize(
    ("where", "key"),
    [
        ("{not: {favorite: true}}", "favorite"),
        ("{any: [{tag: x}, {word_count: {gt: 10}}]}", "word_count"),
        ("{reading_time: {gt: 5}}", "reading_time"),
        ("{read: {older_than: 3d}}", "read"),
        ("{favorited: {newer_than: 3d}}", "favorited"),
        ("{type: video}", "type"),
        ("{lang: en}", "lang"),
    ],
)
def test_local_library_warns_about_fields_an_export_never_has(where: str, key: str) -> None:
    found = warnings(one_rule(where=where))
    assert len(found) == 1
    assert f"rule a: `{key}` is never known in the local library" in found[0]
    assert found[0].split(" [")[-1].endswith(f".{key}]")
    # the same rule on Pocket: every field is known
    assert warnings(one_rule(where=where).replace("rules:", POCKET + "rules:")) == []


def test_fields_an_export_has_do_not_warn() -> None:
    where = "{tag: x, status: unread, added: {older_than: 3d}, domain: a.com, title: {contains: b}}"
    assert warnings(one_rule(where=where)) == []


def test_an_action_the_source_cannot_do_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from rulebot.rules import capabilities

    tags_only = capabilities.Capabilities(
        kind="local",
        fields=capabilities.ALL_FIELDS,
        actions=frozenset({"tags_add", "tags_remove"}),
        batches=False,
        label="a tags-only test source",
    )
    monkeypatch.setitem(capabilities.SOURCES, "local", tags_only)
    found = problems(one_rule(actions_text="[archive, {tags_add: [x]}]"))
    assert found == [
        "5:15: rule a: a tags-only test source cannot do `archive`; it can do: tags_add, "
        "tags_remove [$.rules[0].actions[0]]"
    ]


@pytest.mark.parametrize(
    ("value", "hint"),
    [("30", "did you mean '30d' (30 days)?"), ("'30'", "did you mean '30d' (30 days)?")],
)
def test_duration_without_unit_suggests_days(value: str, hint: str) -> None:
    found = problems(one_rule(where="{added: {older_than: " + value + "}}"))
    assert len(found) == 1 and found[0].endswith(hint + " [$.rules[0].where.added.older_than]")


def test_domain_given_as_url_suggests_the_host() -> None:
    found = problems(one_rule(where="{domain: 'https://youtube.com/'}"))
    assert found == [
        "4:21: domain takes a host such as example.com, not a URL or a path: "
        "'https://youtube.com/'; write `domain: youtube.com` [$.rules[0].where.domain]"
    ]


@pytest.mark.parametrize("kind", ["not", "all", "any"])
def test_where_nested_100_deep_is_refused_cleanly(kind: str) -> None:
    where = "{tag: x}"
    for _ in range(100):
        where = {
            "not": f"{{not: {where}}}",
            "all": f"{{all: [{where}]}}",
            "any": f"{{any: [{where}, {{tag: z}}]}}",
        }[kind]
    found = problems(one_rule(where=where))
    assert len(found) == 1
    assert "where is nested more than 20 blocks deep" in found[0]
    shallow = one_rule(where="{not: {all: [{any: [{tag: x}]}]}}")
    assert problems(shallow) == []


@pytest.mark.parametrize(
    "cron", ["0 0 31 2 *", "0 0 30 2 *", "0 0 31 2 ?", "0 0 31 2 mon#5", "0 0 31 4,6 *"]
)
def test_cron_that_never_fires_is_refused(cron: str) -> None:
    assert "never runs" in (cron_problem(cron) or "")


@pytest.mark.parametrize("cron", ["0 0 29 2 *", "0 0 L 2 *", "0 0 31 2 1", "*/5 * * * *"])
def test_rare_but_real_cron_is_accepted(cron: str) -> None:
    assert cron_problem(cron) is None


def test_duration_with_thousands_of_digits_is_a_clean_error() -> None:
    huge = "9" * 5000
    found = problems(one_rule(where="{added: {older_than: " + huge + "d}}"))
    assert len(found) == 1 and "longer than 1000 years" in found[0]
    test_item = (
        "tests:\n  - name: t\n    now: 2026-01-01\n    items: [{url: 'https://a.b/', added: "
        + huge
        + "d}]\n    expect: []\n"
    )
    found = problems(one_rule(where="{}") + test_item)
    assert len(found) == 1 and "longer than 1000 years" in found[0]


def test_catastrophic_regex_is_refused_at_validate() -> None:
    found = problems(one_rule(where="{title: {regex: '^(a+)+$'}}"))
    assert len(found) == 1
    assert "exponential time" in found[0] and found[0].startswith("4:28:")


def test_config_file_size_is_capped_before_parsing(tmp_path: Path) -> None:
    import time

    path = tmp_path / "rules.yaml"
    path.write_text(one_rule() + "# " + "x" * (2 * 1024 * 1024) + "\n")
    started = time.perf_counter()
    found = validate_file(path)
    assert time.perf_counter() - started < 1
    assert [p.message for p in found] == [
        "the file is 2.0 MiB; a rules file may be at most 1024 KiB (is this the right file?)"
    ]
    with pytest.raises(ConfigError, match="at most 1024 KiB"):
        load_config(path)


def test_batch_size_must_hold_one_rules_actions_per_item() -> None:
    text = one_rule(actions_text="[archive, {tags_add: [x]}, {tags_remove: [z]}]").replace(
        "rules:", "pocket: {base_url: 'http://127.0.0.1:9', batch_size: 2}\nrules:"
    )
    assert problems(text) == [
        "6:14: rule a sends up to 3 actions per item, but pocket.batch_size is 2; one item's "
        "actions must travel in one request: set batch_size to at least 3 [$.rules[0].actions]"
    ]
    assert problems(text.replace("batch_size: 2", "batch_size: 3")) == []


def test_long_tags_warn_on_pocket_only() -> None:
    long_tag = "a-very-long-tag-name-over-25"
    actions_text = f"[{{tags_add: [ok, {long_tag}]}}, {{tags_replace: '{long_tag}'}}]"
    text = one_rule(actions_text=actions_text).replace("rules:", POCKET + "rules:")
    found = warnings(text)
    assert len(found) == 2
    assert "Pocket keeps the first 25 characters ('a-very-long-tag-name-over')" in found[0]
    assert found[0].endswith("[$.rules[0].actions[0].tags_add[1]]")
    assert found[1].endswith("[$.rules[0].actions[1].tags_replace]")
    wide = (
        "version: 1\n" + POCKET + "rules:\n  - name: w\n    actions:\n"
        f"      - tag_rename: {{old_tag: a, new_tag: {long_tag}}}\n"
        f"      - add: {{url: 'https://a.b/', tags: [{long_tag}]}}\n"
    )
    assert len(warnings(wide)) == 2
    assert warnings(one_rule(actions_text=actions_text)) == []  # the local library keeps it


def test_add_url_must_be_http() -> None:
    text = "version: 1\nrules:\n  - name: a\n    actions: [{add: {url: 'javascript:alert(1)'}}]\n"
    found = problems(text)
    assert len(found) == 1 and "starting with http:// or https://" in found[0]


def test_control_characters_in_quoted_user_text_stay_on_one_line() -> None:
    text = one_rule(actions_text='[{archive: 1, "b\\ec\\nd": 2}]')
    found = validate_text(text)
    assert found and all("\n" not in str(p) and "\x1b" not in str(p) for p in found)
    assert Problem("a\nb", 1, 1, "x\x1b[2Jy\u2028z").message == "x\\x1b[2Jy\\u2028z"
    assert Problem("a\nb", 1, 1, "m").file == "a\\nb"


def test_a_pattern_ending_in_dollar_refuses_a_trailing_newline() -> None:
    """JSON Schema reads `$` as ECMA-262 does, the end of the text; Python's
    `$` took "purge\\n" as a rule name (then a journal key and a grace mark),
    an env name, a duration and an `add` URL that would be sent with it."""
    text = """\
        version: 1
        karakeep: {base_url: "http://k.example", api_key_env: "KEY\\n"}
        rules:
          - name: "purge\\n"
            where: {added: {older_than: "30d\\n"}}
            actions: [delete]
          - name: add-one
            actions: [{add: {url: "https://a.example/x\\n"}}]
        """
    found = problems(text)
    paths = [p[p.rindex(" [") + 2 : -1] for p in found]
    assert paths == [
        "$.karakeep.api_key_env",
        "$.rules[0].name",
        "$.rules[0].where.added.older_than",
        "$.rules[1].actions[0].add.url",
    ], found
    assert all("\n" not in p for p in found)  # each problem one line, the newline shown
    assert "try 'purge'" in found[1]
    assert problems(text.replace("\\n", "")) == []


def test_a_grace_or_full_scan_every_beyond_1000_years_is_a_validate_error() -> None:
    """`grace: 3650000d` matched the schema's pattern, passed `validate` and
    then failed every command that loads the config as an internal error."""
    found = problems(
        """\
        version: 1
        wallabag: {base_url: "http://w.example", full_scan_every: 9999999999d}
        rules:
          - name: later
            grace: 3650000d
            where: {tag: x}
            actions: [archive]
        """
    )
    assert found == [
        "2:59: duration '9999999999d' is longer than 1000 years; write a shorter one, "
        "e.g. 3650d [$.wallabag.full_scan_every]",
        "5:12: duration '3650000d' is longer than 1000 years; write a shorter one, "
        "e.g. 3650d [$.rules[0].grace]",
    ]
