"""Fuzzing the three kinds of bad input: configs, export files, server answers.

Whatever comes in, rulebot exits 0 or 1 with at most one clear
``rulebot: error:`` line, never a traceback or an "internal error" (the CLI's
catch-all for bugs), and a failed import leaves the store as it was.

Profiles: by default (CI) each target runs a small derandomized set
(``RULEBOT_FUZZ_EXAMPLES``, default 150) so the file takes well under a
minute and fails the same way every time. The long run::

    RULEBOT_FUZZ_EXAMPLES=10000 /tmp/venv/bin/pytest tests/test_fuzz.py -p no:cacheprovider

draws that many random cases per target (``docs/testing.md`` records the
last long run).
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rulebot.cli import main
from rulebot.errors import ItemDataError, RulebotError
from rulebot.fakepocket import FakePocket
from rulebot.library.item import Item
from rulebot.library.store import Store
from rulebot.library.tagcase import ascii_lower, unicode_lower
from rulebot.rules import actions, conditions
from rulebot.rules.config import load_config
from tests.conftest import ACCESS_TOKEN, CONSUMER_KEY
from tests.helpers import examples

EXAMPLES = int(os.environ.get("RULEBOT_FUZZ_EXAMPLES", str(examples(150))))
LONG = "RULEBOT_FUZZ_EXAMPLES" in os.environ
FUZZ = settings(
    max_examples=EXAMPLES,
    derandomize=not LONG,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def rb(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["-q", *args])
    return code, out.getvalue(), err.getvalue()


def assert_clean_exit(
    code: int,
    err: str,
    allowed: tuple[int, ...] = (0, 1),
    *,
    error_line: bool = True,
    out: str = "",
) -> None:
    """Exit 0/1, no traceback; on 1 exactly one ``rulebot: error:`` line
    (``validate`` reports problems on stdout instead: ``error_line=False``;
    a run whose actions failed lists them on stdout, ``failed  ...``)."""
    assert code in allowed, err
    assert "Traceback" not in err, err
    assert "internal error" not in err, err
    errors = [line for line in err.splitlines() if line.startswith("rulebot: error:")]
    if not error_line:
        assert not errors, err
    elif code == 1 and not errors and out:
        assert any(line.startswith("failed  ") for line in out.splitlines()), out
    elif code == 1:
        assert len(errors) == 1, err
        assert len(errors[0]) > len("rulebot: error: ") + 10, err  # says something
    else:
        assert not errors, err


# -- shared value strategies ------------------------------------------------------------------

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["0", "1", "2", "3", "", " 7 ", "-1", "1e3", "30d", "read-later", "a,b"]),
)
anything = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


# -- (a) configs ----------------------------------------------------------------------------

TOP_KEYS = ["version", "pocket", "store", "timezone", "limits", "rules", "tests", "extra"]
POCKET_KEYS = [
    "base_url",
    "page_size",
    "batch_size",
    "timeout",
    "max_rate_wait",
    "consumer_key_env",
    "access_token_env",
    "token",
]
RULE_KEYS = [
    "name",
    "description",
    "enabled",
    "schedule",
    "where",
    "actions",
    "limit",
    "keep_newest",
    "bogus",
]
CONDITION_KEYS = [*sorted(conditions.REGISTRY), "all", "any", "not", "nope"]
ACTION_NAMES = [*sorted(actions.REGISTRY), "explode"]
TIME_KEYS = ["older_than", "newer_than", "before", "after", "gt", "lt", "contains", "regex", "glob"]

plausible = st.one_of(
    anything,
    st.sampled_from(
        [1, 0, 30, "30d", "12h", "2025-01-01", "x", "[", "(?P<", "* * * * *", "61 * * * *"]
    ),
    st.dictionaries(st.sampled_from(TIME_KEYS), anything, max_size=3),
    st.lists(st.sampled_from(["a", "b", "read-later", "A", "a,b", ""]), max_size=3),
)
where = st.recursive(
    st.dictionaries(st.sampled_from(CONDITION_KEYS), plausible, max_size=3),
    lambda inner: st.dictionaries(
        st.sampled_from(["all", "any", "not", "tag"]), inner | st.lists(inner, max_size=3)
    ),
    max_leaves=6,
)
action = st.one_of(
    st.sampled_from(ACTION_NAMES),
    st.dictionaries(st.sampled_from(ACTION_NAMES), plausible, min_size=1, max_size=2),
    anything,
)
rule = st.fixed_dictionaries(
    {},
    optional={
        "name": st.one_of(st.sampled_from(["a", "b", "a", "Bad Name", ""]), anything),
        "where": st.one_of(where, anything),
        "actions": st.one_of(st.lists(action, max_size=3), anything),
        "limit": plausible,
        "keep_newest": plausible,
        "schedule": plausible,
        "enabled": plausible,
        "description": plausible,
        "bogus": anything,
    },
)
config_doc = st.fixed_dictionaries(
    {},
    optional={
        "version": st.one_of(st.just(1), anything),
        "pocket": st.one_of(
            st.dictionaries(
                st.sampled_from(POCKET_KEYS),
                st.one_of(plausible, st.just("http://127.0.0.1:1")),
                max_size=4,
            ),
            anything,
        ),
        "store": st.one_of(st.just("x.db"), anything),
        "timezone": st.one_of(st.sampled_from(["UTC", "Europe/Paris", "Mars/Base"]), anything),
        "limits": st.one_of(
            st.dictionaries(st.sampled_from(["max_actions", "max_deletes"]), plausible), anything
        ),
        "rules": st.one_of(st.lists(rule, max_size=3), anything),
        "tests": st.one_of(st.lists(anything, max_size=2), anything),
        "extra": anything,
    },
)


def dump(document: Any) -> str:
    try:
        return yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, ValueError):
        return repr(document)


raw_config_text = st.one_of(
    config_doc.map(dump),
    st.text(max_size=200),
    st.builds(
        lambda a, b: a + b,
        config_doc.map(dump),
        st.sampled_from(
            ["\n  - x", "\nrules: {", "\t", ": :", "\nversion: 1\nversion: 1", "&a *a"]
        ),
    ),
)


@pytest.fixture(scope="module")
def workdir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="rulebot-fuzz-") as name:
        yield Path(name)


@FUZZ
@given(text=raw_config_text)
def test_fuzz_config_validate_and_load(workdir: Path, text: str) -> None:
    path = workdir / "rules.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    code, out, err = rb("validate", str(path), "--format", "json")
    assert_clean_exit(code, err, error_line=False)
    problems = json.loads(out or "[]")  # the JSON report is JSON whatever the input
    assert any(p["severity"] == "error" for p in problems) == (code == 1)  # warnings pass
    code_text, out, err = rb("validate", str(path))
    assert_clean_exit(code_text, err, error_line=False)
    assert code_text == code
    # One problem per line: no message may carry a line break of its own.
    assert not [p for p in problems if "\n" in p["message"]], problems
    lines = [line for line in out.split("\n") if line]
    assert all(line.startswith(str(path)) for line in lines), out
    try:
        load_config(path)
        loaded = True
    except RulebotError:
        loaded = False
    assert loaded == (code == 0), "validate and load_config disagree"


# -- (b) export files -------------------------------------------------------------------------

CSV_COLUMNS = ["title", "url", "time_added", "cursor", "tags", "status", "favorite"]
cell = st.one_of(
    st.text(max_size=12),
    st.sampled_from(
        [
            "https://a.example/1",
            "https://b.example/x?y=1,2",
            "http://[::1/",
            "ftp://x",
            "1600000000",
            "0",
            "-5",
            "1e9",
            "unread",
            "archive",
            "ARCHIVE",
            "deleted",
            "a|b",
            "a,b",
            "|",
            '"',
            "\n",
        ]
    ),
)
header = st.one_of(
    st.just(["title", "url", "time_added", "tags", "status"]),
    st.just(["title", "url", "time_added", "cursor", "tags", "status"]),
    st.lists(st.sampled_from(CSV_COLUMNS), max_size=7),
    st.lists(st.text(max_size=6), max_size=5),
)


def csv_bytes(head: list[str], rows: list[list[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(head)
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8", errors="surrogatepass")


csv_file = st.builds(csv_bytes, header, st.lists(st.lists(cell, max_size=7), max_size=6))
html_attr = st.sampled_from(
    ['href="https://a.example/1"', 'href=""', "href", 'time_added="1600000000"',
     'time_added="x"', 'tags="a,b"', 'tags=""', 'href="javascript:x"']
)  # fmt: skip
html_piece = st.one_of(
    st.sampled_from(
        ["<h1>Unread</h1>", "<h1>Read Archive</h1>", "<h1>Other</h1>", "<ul>", "</ul>",
         "<li>", "</li>", "</a>", "<!DOCTYPE html>", "<html>", "&amp;", "&#xD800;", "<"]
    ),
    st.lists(html_attr, max_size=4).map(lambda attrs: f"<a {' '.join(attrs)}>"),
    st.text(max_size=10),
)  # fmt: skip
html_file = st.lists(html_piece, max_size=25).map(lambda parts: "".join(parts).encode())


def zip_bytes(members: list[tuple[str, bytes]], cut: int | None) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():  # duplicate member names are on purpose
        warnings.simplefilter("ignore", UserWarning)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, data in members:
                archive.writestr(name, data)
    data = buffer.getvalue()
    return data if cut is None else data[: cut % max(len(data), 1)]


zip_file = st.builds(
    zip_bytes,
    st.lists(
        st.tuples(
            st.sampled_from(["part_000000.csv", "part_000001.csv", "x/part_000000.csv",
                             "readme.txt", "../evil.csv", "PART_000000.CSV"]),
            st.one_of(csv_file, st.binary(max_size=40)),
        ),
        max_size=3,
    ),
    st.one_of(st.none(), st.integers(min_value=0, max_value=10_000)),
)  # fmt: skip
export_file = st.tuples(
    st.sampled_from(["export.csv", "export.zip", "ril_export.html", "export.txt"]),
    st.one_of(csv_file, html_file, zip_file, st.binary(max_size=200)),
)

LOCAL_CONFIG = (
    "version: 1\nstore: lib.db\nrules:\n  - name: a\n    where: {tag: x}\n    actions: [archive]\n"
)
SEED_CSV = "title,url,time_added,tags,status\nSeed,https://seed.example/1,1600000000,x,unread\n"


@pytest.fixture(scope="module")
def library(workdir: Path) -> tuple[Path, list[Item]]:
    """A local config and a store template holding one imported item."""
    config = workdir / "local.yaml"
    config.write_text(LOCAL_CONFIG, encoding="utf-8")
    (workdir / "seed.csv").write_text(SEED_CSV, encoding="utf-8")
    code, _out, err = rb("-c", str(config), "import", str(workdir / "seed.csv"))
    assert code == 0, err
    shutil.copy(workdir / "lib.db", workdir / "template.db")
    with Store.open(workdir / "template.db") as store:
        return config, store.items()


@FUZZ
@given(export=export_file)
def test_fuzz_import_any_file(
    workdir: Path, library: tuple[Path, list[Item]], export: tuple[str, bytes]
) -> None:
    config, before = library
    name, data = export
    shutil.copy(workdir / "template.db", workdir / "lib.db")
    for suffix in ("-wal", "-shm"):
        (workdir / f"lib.db{suffix}").unlink(missing_ok=True)
    path = workdir / name
    path.write_bytes(data)
    code, _out, err = rb("-c", str(config), "import", str(path))
    assert_clean_exit(code, err)
    if code == 1:
        with Store.open(workdir / "lib.db") as store:
            assert store.items() == before, "a failed import changed the store"


# -- (c) server answers --------------------------------------------------------------------

ITEM_FIELDS = [
    "item_id", "resolved_id", "given_url", "resolved_url", "given_title", "resolved_title",
    "status", "favorite", "tags", "time_added", "time_updated", "time_read", "time_favorited",
    "word_count", "time_to_read", "lang", "is_article", "has_image", "has_video", "excerpt",
]  # fmt: skip
field_value = st.one_of(
    anything,
    st.sampled_from(["0", "1", "2", "3", "1000000001", "1600000000", "https://x.example/"]),
    st.dictionaries(st.text(max_size=5), st.fixed_dictionaries({"tag": st.text(max_size=5)})),
)
item_dict = st.one_of(
    st.fixed_dictionaries(
        {"item_id": st.one_of(st.sampled_from(["1000000001", "5", 7]), anything)},
        optional={name: field_value for name in ITEM_FIELDS if name != "item_id"},
    ),
    anything,
)
get_answer = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "status": st.one_of(st.sampled_from([0, 1, 2, "1", "2"]), anything),
            "list": st.one_of(
                st.dictionaries(st.text(max_size=10), item_dict, max_size=3),
                st.lists(item_dict, max_size=3),
                anything,
            ),
            "since": st.one_of(st.integers(min_value=0, max_value=2**40), anything),
            "complete": anything,
            "error": anything,
        },
    ),
    anything,
)
send_answer = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "status": anything,
            "action_results": st.one_of(
                st.lists(st.one_of(st.booleans(), item_dict, anything), min_size=0, max_size=4),
                anything,
            ),
            "action_errors": st.one_of(
                st.lists(
                    st.one_of(
                        st.none(),
                        st.fixed_dictionaries(
                            {}, optional={"message": anything, "code": anything, "type": anything}
                        ),
                        anything,
                    ),
                    max_size=4,
                ),
                anything,
            ),
        },
    ),
    anything,
)

SERVER_RULES = """\
rules:
  - name: archive-all
    where: {status: unread}
    actions: [archive]
"""


@pytest.fixture(scope="module")
def pocket(workdir: Path) -> Iterator[tuple[FakePocket, Path]]:
    """A fake server with 3 items; a config; a store template synced from it."""
    with (
        pytest.MonkeyPatch.context() as patch,
        FakePocket(
            consumer_key=CONSUMER_KEY, access_token=ACCESS_TOKEN, user_limit=10**9, key_limit=10**9
        ) as server,
    ):
        patch.setenv("POCKET_CONSUMER_KEY", CONSUMER_KEY)
        patch.setenv("POCKET_ACCESS_TOKEN", ACCESS_TOKEN)
        patch.setattr("rulebot.sources.pocket.api.MAX_BACKOFF", 0.0)
        for i in range(3):
            server.add_item(url=f"https://x.example/{i}", title=f"Item {i}")
        config = workdir / "pocket.yaml"
        config.write_text(
            f"version: 1\nstore: mirror.db\npocket: {{base_url: '{server.base_url}', "
            "page_size: 2, batch_size: 10}\n" + SERVER_RULES,
            encoding="utf-8",
        )
        code, _out, err = rb("-c", str(config), "sync")
        assert code == 0, err
        shutil.copy(workdir / "mirror.db", workdir / "mirror-template.db")
        yield server, config


def fresh_mirror(workdir: Path) -> None:
    for suffix in ("-wal", "-shm"):
        (workdir / f"mirror.db{suffix}").unlink(missing_ok=True)
    shutil.copy(workdir / "mirror-template.db", workdir / "mirror.db")


@FUZZ
@given(answer=get_answer, full=st.booleans())
def test_fuzz_get_answers(
    workdir: Path, pocket: tuple[FakePocket, Path], answer: Any, full: bool
) -> None:
    server, config = pocket
    fresh_mirror(workdir)
    server.clear_faults()
    server.inject("answer", 1, "/v3/get", answer=answer)
    code, _out, err = rb("-c", str(config), "sync", *(["--full"] if full else []))
    assert_clean_exit(code, err)
    # Whatever the answer was, the store still works: the next sync is clean.
    code, _out, err = rb("-c", str(config), "sync")
    assert_clean_exit(code, err, allowed=(0,))


@FUZZ
@given(answer=send_answer)
def test_fuzz_send_answers(workdir: Path, pocket: tuple[FakePocket, Path], answer: Any) -> None:
    server, config = pocket
    fresh_mirror(workdir)
    server.clear_faults()
    server.inject("answer", 1, "/v3/send", answer=answer)
    before = server.items
    code, out, err = rb("-c", str(config), "run")
    assert_clean_exit(code, err, out=out)
    # One batch, answered by the fault instead of the server: nothing ran.
    assert server.items == before


@FUZZ
@given(raw=item_dict, tags_known=st.booleans())
def test_fuzz_item_from_pocket(raw: Any, tags_known: bool) -> None:
    try:
        item = Item.from_pocket(raw, tags_known=tags_known)
    except RulebotError as err:
        assert str(err) and "\n" not in str(err)
        return
    # A readable item has the types everything downstream relies on.
    assert item.item_id.isdigit() and item.item_id.isascii()
    assert isinstance(item.url, str) and isinstance(item.title, str)
    assert item.tags is None or all(isinstance(t, str) for t in item.tags)
    for name in ("time_added", "time_updated", "time_read", "word_count", "has_image"):
        assert getattr(item, name) is None or isinstance(getattr(item, name), int)
    item.domain  # noqa: B018 -- must not raise
    item.tag_set(unicode_lower)
    item.tag_set(ascii_lower)


@pytest.mark.parametrize("item_id", ["\u0661\u0662", "12\u00b2", "\uff11", "", "1.5", "-3"])
def test_an_item_id_of_anything_but_ascii_digits_is_refused_by_name(item_id: str) -> None:
    # Python's isdigit takes Arabic-Indic, superscript and full-width digits
    with pytest.raises(ItemDataError, match="expected a string of digits 0-9"):
        Item.from_pocket({"item_id": item_id, "status": "0", "given_url": "https://a.org/"})
