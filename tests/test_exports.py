"""Pocket exports in and out, against real files in tmp_path."""

from __future__ import annotations

import calendar
import csv
import hashlib
import io
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rulebot.library.export_reader as export_reader
from rulebot.errors import ExportFormatError, RulebotError
from rulebot.library.export_reader import item_id_for_url, read_export, tty_progress
from rulebot.library.export_writer import write_export
from rulebot.library.importer import ImportResult, import_export
from rulebot.library.item import ARCHIVED, DELETED, UNREAD, Item
from rulebot.library.store import Store
from rulebot.library.tagcase import unicode_lower
from tests.helpers import examples

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
HEADER = "title,url,time_added,tags,status\n"


@pytest.fixture
def store(tmp_path: Path):
    with Store.open(tmp_path / "store" / "rulebot.db") as opened:
        yield opened


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.write_bytes(text.encode(encoding))
    return path


def make_zip(path: Path, members: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return path


def expected(url: str, title: str, added: int, tags: tuple[str, ...], status: int) -> Item:
    return Item(
        item_id=item_id_for_url(url),
        given_url=url,
        given_title=title,
        status=status,
        tags=tags,
        time_added=added or None,
        time_updated=added or None,
        favorite=None,  # an export has no favourite column: unknown
    )


# -- reading each form ---------------------------------------------------------------
def test_reads_the_current_csv_form(tmp_path: Path) -> None:
    path = write(
        tmp_path / "part.csv",
        HEADER
        + '"Hello, ""world"" — café",https://a.test/1,1698568488,js|read-later,unread\n'
        + "https://b.test/2,https://b.test/2,1698568400,,archive\n"
        + ',https://c.test/3,1698568300," x | |y|x ",unread\n',
    )
    assert read_export(path) == [
        expected("https://a.test/1", 'Hello, "world" — café', 1698568488, ("js", "read-later"), 0),
        expected("https://b.test/2", "", 1698568400, (), ARCHIVED),  # title was the URL
        expected("https://c.test/3", "", 1698568300, ("x", "y"), UNREAD),
    ]
    first = read_export(path)[0]
    assert first.title == 'Hello, "world" — café'
    assert first.item_id.isdigit() and int(first.item_id) > 0


def test_reads_the_older_csv_form_with_a_cursor_column(tmp_path: Path) -> None:
    path = write(
        tmp_path / "old.csv",
        "title,url,time_added,cursor,tags,status\n"
        "Old one,https://a.test/1,1600000000,abc123,a|b,archive\n",
    )
    assert read_export(path) == [expected("https://a.test/1", "Old one", 1600000000, ("a", "b"), 1)]


def test_reads_a_zip_of_parts_in_order_and_the_last_duplicate_wins(tmp_path: Path) -> None:
    path = make_zip(
        tmp_path / "pocket.zip",
        {
            "pocket/part_000001.csv": HEADER + "Second title,https://a.test/1,20,b,archive\n",
            "pocket/part_000000.csv": HEADER
            + "First title,https://a.test/1,10,a,unread\n"
            + "Other,https://a.test/2,15,,unread\n",
            "pocket/readme.txt": "not a part",
        },
    )
    assert read_export(path) == [
        expected("https://a.test/1", "Second title", 20, ("b",), ARCHIVED),
        expected("https://a.test/2", "Other", 15, (), UNREAD),
    ]


def test_reads_ril_export_html(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ril_export.html",
        "\ufeff<!DOCTYPE html>\n<html><head><title>Pocket Export</title></head><body>\n"
        "<h1>Unread</h1>\n<ul>\n"
        '<li><a href="https://a.test/1?x=1&amp;y=2" time_added="1698568488" '
        'tags="js,read-later">Tom &amp; Jerry, &quot;live&quot; — ok</a></li>\n'
        '<li><a href="https://a.test/2" time_added="1698568400" tags="">https://a.test/2</a></li>\n'
        "</ul>\n<h1>Read Archive</h1>\n<ul>\n"
        '<li><a href="https://a.test/3" time_added="1500000000">Line one\nline two</a></li>\n'
        "</ul></body></html>\n",
    )
    assert read_export(path) == [
        expected(
            "https://a.test/1?x=1&y=2",
            'Tom & Jerry, "live" — ok',
            1698568488,
            ("js", "read-later"),
            0,
        ),
        expected("https://a.test/2", "", 1698568400, (), UNREAD),
        expected("https://a.test/3", "Line one\nline two", 1500000000, (), ARCHIVED),
    ]


def test_a_utf8_bom_and_crlf_are_tolerated(tmp_path: Path) -> None:
    path = tmp_path / "bom.csv"
    path.write_bytes(
        b"\xef\xbb\xbf"
        + (HEADER + "Té,https://a.test/1,5,a,unread\n").encode().replace(b"\n", b"\r\n")
    )
    assert read_export(path) == [expected("https://a.test/1", "Té", 5, ("a",), UNREAD)]


def test_ids_are_stable_and_derived_from_the_url(tmp_path: Path) -> None:
    url = "https://a.test/1"
    want = str(int(hashlib.sha256(url.encode()).hexdigest()[:13], 16))
    assert item_id_for_url(url) == want
    path = write(tmp_path / "a.csv", HEADER + f"T,{url},5,,unread\n")
    # The same in a fresh interpreter (no per-process hash seed involved).
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            f"from rulebot.library.export_reader import read_export; print(read_export({str(path)!r})[0].item_id)",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == want == read_export(path)[0].item_id


def test_colliding_ids_are_made_unique(tmp_path: Path, monkeypatch) -> None:
    real = export_reader.item_id_for_url
    monkeypatch.setattr(
        export_reader, "item_id_for_url", lambda url, attempt=0: real("same", attempt)
    )
    path = write(
        tmp_path / "a.csv", HEADER + "A,https://a.test/1,5,,unread\nB,https://a.test/2,6,,unread\n"
    )
    ids = [i.item_id for i in read_export(path)]
    assert ids == [real("same"), real("same", 1)]


def test_large_files_report_progress(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(export_reader, "LARGE_FILE_BYTES", 100)
    rows = "".join(f"T{n},https://a.test/{n},{n + 1},,unread\n" for n in range(25_000))
    path = write(tmp_path / "big.csv", HEADER + rows)
    calls: list[tuple[int, bool]] = []
    assert len(read_export(path, lambda n, done: calls.append((n, done)))) == 25_000
    assert calls == [(10_000, False), (20_000, False), (25_000, True)]
    small = write(tmp_path / "small.csv", HEADER + "T,https://a.test/1,1,,unread\n")
    monkeypatch.setattr(export_reader, "LARGE_FILE_BYTES", 1 << 20)
    calls.clear()
    read_export(small, lambda n, done: calls.append((n, done)))
    assert calls == []


def test_progress_true_counts_on_stderr_only_for_a_terminal(tmp_path: Path, monkeypatch) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(export_reader, "LARGE_FILE_BYTES", 100)
    rows = "".join(f"T{n},https://a.test/{n},{n + 1},,unread\n" for n in range(10_500))
    path = write(tmp_path / "big.csv", HEADER + rows)
    piped = io.StringIO()
    monkeypatch.setattr(sys, "stderr", piped)
    assert tty_progress("importing") is None
    read_export(path, True)
    assert piped.getvalue() == ""
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    read_export(path, True)
    assert terminal.getvalue() == "\rreading big.csv: 10,000 items\rreading big.csv: 10,500 items\n"


# -- broken input: one clear error naming file, member, row ----------------------------------
def _rows(n: int) -> str:
    return "".join(f"T{i},https://a.test/{i},{1600000000 + i},,unread\n" for i in range(n))


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "is empty"),
        ("blank.csv", b"\n\n  \n", "is empty"),
        ("header.csv", b"name,link\nx,y\n", "the header is 'name,link'"),
        (
            "late.csv",
            (HEADER + _rows(5122) + "T,https://a.test/x,yesterday,,unread\n" + _rows(3)).encode(),
            "row 5123 (line 5124): time_added 'yesterday' is not a unix timestamp",
        ),
        ("nourl.csv", (HEADER + "T,,5,,unread\n").encode(), "row 1 (line 2): the url is missing"),
        (
            "status.csv",
            (HEADER + "T,https://a.test/1,5,,starred\n").encode(),
            "unknown status 'starred'",
        ),
        (
            "fields.csv",
            (HEADER + "a, b,https://a.test/1,5,,unread\n").encode(),
            "6 fields, expected 5",
        ),
        (
            "latin1.csv",
            (HEADER + _rows(3)).encode() + "Café,https://a.test/c,5,,unread\n".encode("latin-1"),
            "line 5: not UTF-8 text (byte 0xe9)",
        ),
        ("quote.csv", (HEADER + 'T,https://a.test/1,5,,unread\n"x"y,z\n').encode(), "broken CSV"),
        ("garbage.html", b"<html><body><p>Hello</p></body></html>", "not a Pocket ril_export.html"),
        (
            "section.html",
            b'<h1>Favorites</h1><ul><li><a href="https://a.test/" time_added="1">x</a></li></ul>',
            "line 1: unknown section 'Favorites'",
        ),
        (
            "outside.html",
            b'<p><a href="https://a.test/" time_added="1">x</a></p><h1>Unread</h1>',
            "a link outside the 'Unread' and 'Read Archive' sections",
        ),
        (
            "notime.html",
            b'<h1>Unread</h1>\n<ul>\n<li><a href="https://a.test/">x</a></li></ul>',
            "line 3: the link has no time_added attribute",
        ),
        (
            "badtime.html",
            b'<h1>Read Archive</h1><ul><li><a href="https://a.test/" time_added="-5">x</a></li></ul>',
            "time_added '-5' is not a unix timestamp",
        ),
        ("binary.csv", bytes(range(256)) * 4, "not UTF-8 text"),
        ("bad.zip", b"PK\x03\x04" + b"\x00" * 100, "is not a valid zip file"),
        ("truncated.zip", None, "is not a valid zip file"),
        ("nocsv.zip", None, "the zip holds no CSV files"),
        ("badmember.zip", None, "(member part_000001.csv), row 2 (line 3): unknown status 'read'"),
    ],
)
def test_broken_exports_raise_one_clear_error(
    tmp_path: Path, name: str, content: bytes | None, message: str
) -> None:
    path = tmp_path / name
    if name == "truncated.zip":
        whole = make_zip(tmp_path / "whole.zip", {"part_000000.csv": HEADER + _rows(2000)})
        path.write_bytes(whole.read_bytes()[:3000])
    elif name == "nocsv.zip":
        make_zip(path, {"notes.txt": "hello", "pocket/": ""})
    elif name == "badmember.zip":
        make_zip(
            path,
            {
                "part_000000.csv": HEADER + _rows(3),
                "part_000001.csv": HEADER
                + "T,https://a.test/1,5,,unread\nT,https://a.test/2,5,,read\n",
            },
        )
    else:
        assert content is not None
        path.write_bytes(content)
    with pytest.raises(ExportFormatError) as caught:
        read_export(path)
    assert message in str(caught.value)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value).strip()  # one paragraph


def test_a_missing_file_is_an_export_error(tmp_path: Path) -> None:
    with pytest.raises(ExportFormatError, match=r"cannot read export .*nope\.csv"):
        read_export(tmp_path / "nope.csv")


# -- importing into a store ----------------------------------------------------------------------
def test_import_then_reimport_changes_nothing(tmp_path: Path, store: Store) -> None:
    path = write(tmp_path / "a.csv", HEADER + _rows(50))
    assert import_export(store, path, now=2_000_000_000) == ImportResult(50, 0, 0)
    before = store.items()
    assert before == read_export(path)
    assert import_export(store, path, now=2_000_000_001) == ImportResult(0, 0, 50)
    assert store.items() == before


def test_a_newer_export_updates_in_place_keyed_by_url(tmp_path: Path, store: Store) -> None:
    # An item that came from somewhere else (a sync) with its own id and a resolved URL.
    synced = Item(
        item_id="229279689",
        given_url="https://short.test/x",
        resolved_url="https://a.test/article",
        resolved_title="Resolved title",
        status=UNREAD,
        favorite=True,
        tags=("js",),
        time_added=100,
        time_updated=150,
        word_count=1200,
    )
    store.upsert([synced])
    old = write(tmp_path / "old.csv", HEADER + "T1,https://a.test/1,10,a,unread\n")
    import_export(store, old, now=1000)
    first_id = store.find_by_url("https://a.test/1").item_id  # type: ignore[union-attr]

    newer = write(
        tmp_path / "newer.csv",
        HEADER
        + "T1 renamed,https://a.test/1,10,a|b,archive\n"  # changed
        + "Resolved title,https://a.test/article,100,js,unread\n"  # the synced item, same
        + "New,https://a.test/new,30,,unread\n",  # added
    )
    assert import_export(store, newer, now=2000) == ImportResult(added=1, updated=1, unchanged=1)
    one = store.find_by_url("https://a.test/1")
    assert one is not None and one.item_id == first_id
    assert (one.given_title, one.tags, one.status, one.time_updated) == (
        "T1 renamed",
        ("a", "b"),
        ARCHIVED,
        2000,
    )
    assert store.get("229279689") == synced  # untouched, other fields kept
    assert store.count() == 3

    retitled = write(
        tmp_path / "retitled.csv", HEADER + "Mine,https://a.test/article,100,js|x,archive\n"
    )
    assert import_export(store, retitled, now=3000) == ImportResult(0, 1, 0)
    updated = store.get("229279689")
    assert updated is not None
    assert (updated.title, updated.tags, updated.status) == ("Mine", ("js", "x"), ARCHIVED)
    assert (updated.favorite, updated.word_count, updated.given_url) == (
        True,
        1200,
        "https://short.test/x",
    )


def test_an_imported_favourite_is_unknown_to_conditions_and_actions(
    tmp_path: Path, store: Store
) -> None:
    from rulebot.planning.planner import make_plan
    from rulebot.rules.actions import compile_action
    from rulebot.rules.conditions import Env, compile_where
    from tests.helpers import rule

    path = write(tmp_path / "a.csv", HEADER + "T,https://a.test/1,5,,unread\n")
    import_export(store, path, now=9)
    (imported,) = store.items()
    assert imported.favorite is None
    raw = store._conn.execute("SELECT favorite FROM items").fetchone()
    assert raw == (None,)  # NULL, not 0
    for where in ({"favorite": False}, {"favorite": True}, {"not": {"favorite": True}}):
        compiled = compile_where(where)
        assert compiled.test(imported, 10).matched is None, where
        assert Env().selector(compiled)([imported], 10) == [], where  # generated code agrees
    # unfavorite cannot tell a change from a no-op, so it is planned; the
    # simulated state then knows the value, and a later favorite: false matches
    rules = [
        rule("unfav", {"status": "unread"}, ["unfavorite"]),
        rule("after", {"favorite": False}, ["archive"]),
    ]
    plan = make_plan(rules, [imported], 10)
    assert [(a.rule, a.send["action"]) for a in plan.actions] == [
        ("unfav", "unfavorite"),
        ("after", "archive"),
    ]
    effect = compile_action("favorite").on_item(imported, 10)
    assert effect is not None and effect.changed[0].favorite is True


def test_import_revives_a_deleted_item_with_its_id(tmp_path: Path, store: Store) -> None:
    store.upsert([Item("7", given_url="https://a.test/1", status=DELETED, tags=None)])
    path = write(tmp_path / "a.csv", HEADER + "T,https://a.test/1,5,,unread\n")
    assert import_export(store, path, now=9) == ImportResult(0, 1, 0)
    assert [(i.item_id, i.status) for i in store.items()] == [("7", UNREAD)]


def test_an_export_id_taken_by_another_url_gets_a_new_id(tmp_path: Path, store: Store) -> None:
    taken = item_id_for_url("https://a.test/1")
    store.upsert([Item(taken, given_url="https://other.test/")])
    path = write(tmp_path / "a.csv", HEADER + "T,https://a.test/1,5,,unread\n")
    assert import_export(store, path) == ImportResult(1, 0, 0)
    imported = store.find_by_url("https://a.test/1")
    assert imported is not None and imported.item_id == item_id_for_url("https://a.test/1", 1)
    assert store.get(taken).given_url == "https://other.test/"  # type: ignore[union-attr]


@pytest.mark.parametrize("kind", ["zip", "csv", "html"])
def test_a_broken_file_leaves_the_store_untouched(tmp_path: Path, store: Store, kind: str) -> None:
    good = write(tmp_path / "good.csv", HEADER + _rows(20))
    import_export(store, good)
    before = store.items()
    path = tmp_path / f"broken.{kind}"
    if kind == "zip":
        # Valid rows in the first part (they must not be written), garbage in the second.
        make_zip(path, {"part_000000.csv": HEADER + _rows(40), "part_000001.csv": "nope\n"})
    elif kind == "csv":
        path.write_text(
            HEADER + _rows(30) + "T,https://a.test/z,5,,unread\nT,https://a.test/y,bad,,unread\n"
        )
    else:
        path.write_text(
            '<h1>Unread</h1><ul><li><a href="https://a.test/new" time_added="1">x</a></li>'
            "<h1>Oops</h1>"
        )
    with pytest.raises(ExportFormatError):
        import_export(store, path)
    assert store.items() == before
    assert store.find_by_url("https://a.test/z") is None


# -- writing and round trips ------------------------------------------------------------------------
def _library() -> list[Item]:
    return [
        expected(
            "https://a.test/1", 'Comma, "quote"\r\nnewline\r — ü & <b>', 100, ("a", "B"), UNREAD
        ),
        expected("https://a.test/2", "", 200, (), ARCHIVED),
        Item("3", given_url="https://a.test/3", status=DELETED, tags=None),
        Item(
            "4",
            given_url="https://short.test/4",
            resolved_url="https://a.test/4",
            given_title="given",
            resolved_title="resolved\rtitle",
            tags=None,
            time_added=300,
        ),
    ]


def test_write_csv_form(tmp_path: Path) -> None:
    path = tmp_path / "out.csv"
    assert write_export(_library(), path) == 3
    rows = list(csv.reader(io.StringIO(path.read_bytes().decode("utf-8"), newline="")))
    assert rows == [
        ["title", "url", "time_added", "tags", "status"],
        ['Comma, "quote"\r\nnewline\r — ü & <b>', "https://a.test/1", "100", "a|B", "unread"],
        ["https://a.test/2", "https://a.test/2", "200", "", "archive"],  # Pocket's title fallback
        ["resolved\rtitle", "https://a.test/4", "300", "", "unread"],
    ]


def test_write_zip_splits_into_parts_of_10000(tmp_path: Path) -> None:
    items = [expected(f"https://a.test/{n}", f"T{n}", n + 1, (), UNREAD) for n in range(10_001)]
    path = tmp_path / "pocket.zip"
    write_export(items, path)
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["part_000000.csv", "part_000001.csv"]
        assert archive.read("part_000000.csv").decode().count("\n") == 10_001
        assert archive.read("part_000001.csv").decode().startswith(HEADER.strip())
    assert read_export(path) == items


def test_write_html_form(tmp_path: Path) -> None:
    path = tmp_path / "ril_export.html"
    write_export(_library(), path)
    text = path.read_text(encoding="utf-8")
    assert (
        text.index("<h1>Unread</h1>")
        < text.index("https://a.test/1")
        < text.index("<h1>Read Archive</h1>")
    )
    assert text.index("<h1>Read Archive</h1>") < text.index("https://a.test/2")
    assert 'tags="a,B"' in text


@pytest.mark.parametrize("suffix", [".csv", ".zip", ".html"])
def test_export_then_import_gives_the_same_library(
    tmp_path: Path, store: Store, suffix: str
) -> None:
    library = _library()
    path = tmp_path / f"out{suffix}"
    write_export(library, path)
    back = {i.given_url: i for i in read_export(path)}
    assert set(back) == {"https://a.test/1", "https://a.test/2", "https://a.test/4"}
    assert back["https://a.test/1"] == library[0]
    assert back["https://a.test/2"] == library[1]
    assert back["https://a.test/4"].title == "resolved\rtitle"
    # Importing the export into the library it came from changes nothing that
    # the export shows, except unknown tags which become known-empty.
    store.upsert(library)
    assert import_export(store, path) == ImportResult(added=0, updated=1, unchanged=2)
    assert import_export(store, path) == ImportResult(added=0, updated=0, unchanged=3)


def test_unknown_suffix_and_unexportable_tags_are_errors(tmp_path: Path) -> None:
    with pytest.raises(RulebotError, match=r"unknown file type '\.json'.*\.csv, \.zip or \.html"):
        write_export(_library(), tmp_path / "out.json")
    piped = [expected("https://a.test/1", "T", 1, ("a|b",), UNREAD)]
    with pytest.raises(RulebotError, match="contains '\\|'"):
        write_export(piped, tmp_path / "out.csv")
    write_export(piped, tmp_path / "out.html")  # a pipe is fine between commas
    assert not (tmp_path / "out.csv").exists()
    assert not (tmp_path / "out.json").exists()


_printable = st.characters(blacklist_categories=("Cs", "Cc")) | st.sampled_from(
    list(",\"\n\r\t'<>&|;#=%")
)
_titles = st.text(_printable, max_size=40)
_tags = st.text(st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12).filter(
    lambda t: t == t.strip() and "," not in t and "|" not in t
)
_paths = st.text(
    st.characters(whitelist_categories=("L", "N")) | st.sampled_from(list("-_.~%&=?#\"'<>")),
    max_size=20,
)
_entries = st.lists(
    st.tuples(
        _paths,
        _titles,
        st.integers(0, 2**40),
        st.lists(_tags, max_size=4, unique=True),
        st.booleans(),
    ),
    max_size=12,
)


@settings(
    max_examples=examples(40),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(entries=_entries, suffix=st.sampled_from([".csv", ".zip", ".html"]))
def test_property_export_import_round_trips(tmp_path: Path, entries: list, suffix: str) -> None:
    items = []
    for n, (tail, title, added, tags, archived) in enumerate(entries):
        url = f"https://site{n}.test/{tail}"
        items.append(
            expected(url, "" if title == url else title, added, tuple(tags), int(archived))
        )
    first = tmp_path / f"first{suffix}"
    write_export(items, first)
    if suffix == ".html":  # the HTML form groups unread before archived
        items.sort(key=lambda i: i.status)
    assert read_export(first) == items
    # import → export → import through a real store.
    with Store.open(tmp_path / f"prop{suffix}.db") as fresh:
        fresh.replace_all([])
        assert import_export(fresh, first).added == len(items)
        second = tmp_path / f"second{suffix}"
        write_export(fresh.items(), second)
        assert sorted(read_export(second), key=lambda i: i.sort_key) == sorted(
            items, key=lambda i: i.sort_key
        )
        assert import_export(fresh, second) == ImportResult(0, 0, len(items))


# -- the sample library --------------------------------------------------------------------------------
def test_sample_library_is_generated_deterministically(tmp_path: Path) -> None:
    out = tmp_path / "sample.csv"
    subprocess.run(
        [sys.executable, str(EXAMPLES / "make_sample_library.py"), str(out)],
        check=True,
        capture_output=True,
    )
    assert out.read_bytes() == (EXAMPLES / "sample-library.csv").read_bytes()


def test_sample_library_has_material_for_typical_rules() -> None:
    items = read_export(EXAMPLES / "sample-library.csv")
    reference = calendar.timegm((2026, 11, 20, 0, 0, 0))
    day = 86_400
    assert 700 <= len(items) <= 900
    unread = [i for i in items if i.status == UNREAD]
    assert 0.5 <= len(unread) / len(items) <= 0.7
    stale_read_later = [
        i
        for i in unread
        if i.has_tag("read-later", unicode_lower) and i.time_added < reference - 30 * day  # type: ignore[operator]
    ]
    assert len(stale_read_later) >= 30
    assert len([i for i in items if i.has_tag("js", unicode_lower)]) >= 15
    old_archived = [
        i
        for i in items
        if i.status == ARCHIVED and i.time_added < reference - 730 * day  # type: ignore[operator]
    ]
    assert len(old_archived) >= 30
    assert sum(1 for i in items if not i.tags) >= 50
    tags = {t for i in items for t in i.tags or ()}
    assert {"python", "Python", "js", "javascript", "rust", "recipes", "longread", "video"} <= tags
    ages = [(reference - i.time_added) // day for i in items]  # type: ignore[operator]
    assert min(ages) >= 1 and max(ages) <= 4 * 366
    assert len({i.domain for i in items}) >= 15


# -- hostile exports ---------------------------------------------------------------------
def _patch_zip_headers(path: Path, *, flag: int | None = None, method: int | None = None) -> None:
    """Rewrite every local and central header (zipfile cannot write these itself)."""
    data = bytearray(path.read_bytes())
    for signature, flag_at, method_at in ((b"PK\x03\x04", 6, 8), (b"PK\x01\x02", 8, 10)):
        at = data.find(signature)
        while at >= 0:
            if flag is not None:
                data[at + flag_at : at + flag_at + 2] = (
                    int.from_bytes(data[at + flag_at : at + flag_at + 2], "little") | flag
                ).to_bytes(2, "little")
            if method is not None:
                data[at + method_at : at + method_at + 2] = method.to_bytes(2, "little")
            at = data.find(signature, at + 4)
    path.write_bytes(bytes(data))


def test_a_zip_bomb_is_refused_before_it_is_inflated(tmp_path: Path) -> None:
    path = tmp_path / "bomb.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("part_000000.csv", HEADER + "a" * (40 << 20))  # 40 MiB -> ~40 KB
    assert path.stat().st_size < 1 << 20
    with pytest.raises(ExportFormatError, match=r"expands [\d,]+ times .* zip bomb") as caught:
        read_export(path)
    assert "(member part_000000.csv)" in str(caught.value)


def test_a_zip_expanding_beyond_the_total_cap_is_refused(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(export_reader, "MAX_UNZIPPED_BYTES", 1 << 30)
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        archive.writestr("part_000000.csv", HEADER + _rows(10))
    # declare 2 GiB in both headers: the cap is checked on what the zip claims
    data = bytearray(path.read_bytes())
    for signature, size_at in ((b"PK\x03\x04", 22), (b"PK\x01\x02", 24)):
        at = data.find(signature)
        data[at + size_at : at + size_at + 4] = (2 << 30).to_bytes(4, "little")
    path.write_bytes(bytes(data))
    with pytest.raises(ExportFormatError, match=r"expands to more than 1 GiB"):
        read_export(path)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ({"flag": 0x1}, r"\(member part_000000.csv\) is encrypted"),
        ({"method": 98}, r"\(member part_000000.csv\) uses compression method 98"),
    ],
)
def test_encrypted_or_unknown_compression_members_are_clean_errors(
    tmp_path: Path, patch: dict, message: str
) -> None:
    path = make_zip(tmp_path / "odd.zip", {"part_000000.csv": HEADER + _rows(3)})
    _patch_zip_headers(path, **patch)
    with pytest.raises(ExportFormatError, match=message):
        read_export(path)


def test_zip_progress_is_decided_by_the_uncompressed_size(tmp_path: Path, monkeypatch) -> None:
    rows = "".join(f"T{n},https://a.test/{n},{n + 1},,unread\n" for n in range(12_000))
    path = tmp_path / "pocket.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("part_000000.csv", HEADER + rows)
    unzipped = len(HEADER + rows)
    # compressed below the threshold, uncompressed above it
    monkeypatch.setattr(export_reader, "LARGE_FILE_BYTES", (path.stat().st_size + unzipped) // 2)
    calls: list[tuple[int, bool]] = []
    read_export(path, lambda n, done: calls.append((n, done)))
    assert calls == [(10_000, False), (12_000, True)]


def test_an_unterminated_html_tag_fed_in_chunks_is_bounded(tmp_path: Path) -> None:
    import time as clock

    path = write(
        tmp_path / "ril_export.html",
        "<h1>Unread</h1><ul><li><a " + 'x="1" ' * ((4 << 20) // 6 + 1),
    )
    assert path.stat().st_size >= 4 << 20
    started = clock.perf_counter()
    with pytest.raises(ExportFormatError, match=r"line 1: a tag or text longer than 256 KiB"):
        read_export(path)
    assert clock.perf_counter() - started < 1.0


@pytest.mark.parametrize(
    ("cut_before", "message"),
    [
        ('time_added="200"', "inside a tag"),  # mid-tag
        (
            "</a></li>\n\t\t</ul>\n\t\t<h1>Read",
            "inside the link that starts on line 11",
        ),  # mid-title
        ("\t\t</ul>\n\t</body>", "before a list is closed"),
        ("</html>", "before </html>"),
    ],
)
def test_a_truncated_html_export_says_so(tmp_path: Path, cut_before: str, message: str) -> None:
    items = [
        expected("https://a.test/1", "One", 100, ("a",), UNREAD),
        expected("https://a.test/2", "Two", 200, (), UNREAD),
        expected("https://a.test/3", "Three", 300, (), ARCHIVED),
    ]
    whole = tmp_path / "whole.html"
    write_export(items, whole)
    text = whole.read_text()
    assert read_export(whole) == items
    cut = write(tmp_path / "cut.html", text[: text.index(cut_before)])
    with pytest.raises(ExportFormatError, match="truncated") as caught:
        read_export(cut)
    assert message in str(caught.value) and str(cut) in str(caught.value)


def test_time_added_above_int64_is_a_bad_row_naming_its_line(tmp_path: Path, store: Store) -> None:
    path = write(tmp_path / "a.csv", HEADER + _rows(2) + f"T,https://a.test/x,{2**63},,unread\n")
    with pytest.raises(ExportFormatError, match=r"row 3 \(line 4\): time_added .* beyond any date"):
        import_export(store, path)
    assert store.count() == 0
    assert import_export(store, path, skip_bad=True).added == 2  # and SQLite is never asked
    assert store.count() == 2


def test_a_huge_csv_line_fails_early_without_holding_it(tmp_path: Path) -> None:
    import tracemalloc

    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.write(HEADER.encode() + b'"' + b"x" * (40 << 20))
    tracemalloc.start()
    try:
        with pytest.raises(ExportFormatError, match=r"line 2: longer than 1,048,576 characters"):
            read_export(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, peak  # reading the 40 MB line whole would hold 80 MB+


# -- CSV injection and non-web links ----------------------------------------------------------
_FORMULAS = [
    '=HYPERLINK("http://evil.test","x")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\tTab",
    "\rCR",
    "'=already quoted",
    "''+twice",
    "'plain quote",
    "'",
    "=",
]


def test_csv_export_neutralises_formulas_and_reads_back_exactly(tmp_path: Path) -> None:
    items = [
        expected(f"https://a.test/{n}", title, n + 1, (f"={n}", "b") if n % 2 else ("-x",), 0)
        for n, title in enumerate(_FORMULAS)
    ]
    path = tmp_path / "out.csv"
    write_export(items, path)
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline="")))[1:]
    for row in rows:
        for cell in (row[0], row[3]):  # title, tags: nothing a spreadsheet would run
            assert cell[:1] not in ("=", "+", "-", "@", "\t", "\r"), row
    assert rows[0][0] == '\'=HYPERLINK("http://evil.test","x")'
    assert rows[6][0] == "''=already quoted"  # one more quote, so the import removes just one
    assert rows[8][0] == "'plain quote"  # nothing to neutralise: as is
    assert read_export(path) == items  # lossless
    zipped = tmp_path / "out.zip"
    write_export(items, zipped)
    assert read_export(zipped) == items


def test_non_web_urls_are_bad_rows_and_never_html_links(tmp_path: Path, store: Store) -> None:
    path = write(
        tmp_path / "a.csv",
        HEADER
        + "ok,https://a.test/1,5,,unread\n"
        + "x,javascript:alert(document.cookie),5,,unread\n"
        + "y,data:text/html;base64,PHNjcmlwdD4=,5,,unread\n",
    )
    with pytest.raises(ExportFormatError) as caught:
        import_export(store, path)
    message = str(caught.value)
    assert "2 bad rows, nothing imported" in message
    assert "row 2 (line 3): the url 'javascript:alert(document.cookie)' is not an http(s) URL" in (
        message
    )
    assert "row 3 (line 4)" in message
    # a mirror can hold such a URL (a server sent it): the HTML export shows it as text
    hostile = Item("9", given_url="javascript:alert(1)", given_title="<b>x</b>", time_added=5)
    out = tmp_path / "out.html"
    write_export([hostile, expected("https://a.test/1", "ok", 5, (), UNREAD)], out)
    text = out.read_text()
    assert "javascript:alert(1)" in text and 'href="javascript' not in text.lower()
    assert read_export(out) == [expected("https://a.test/1", "ok", 5, (), UNREAD)]


# -- writing files safely -----------------------------------------------------------------------
def test_export_never_writes_through_a_symlink(tmp_path: Path) -> None:
    import os

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    target = tmp_path / "out.csv"
    # the old temp name was predictable: a link planted there must not be followed
    (tmp_path / f".out.csv.{os.getpid()}.partial").symlink_to(victim)
    assert write_export(_library(), target) == 3
    assert victim.read_text() == "precious\n"
    assert target.stat().st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".partial")) == [
        f".out.csv.{os.getpid()}.partial"  # only the planted link; our temp file is gone
    ]
    link = tmp_path / "link.csv"
    link.symlink_to(victim)
    with pytest.raises(RulebotError, match=r"link\.csv: it is a symbolic link"):
        write_export(_library(), link)
    assert victim.read_text() == "precious\n" and link.is_symlink()


# -- import reporting: bad rows, duplicates, dry run, reverts --------------------------------------
def _cli_config(tmp_path: Path) -> list[str]:
    config = tmp_path / "rules.yaml"
    config.write_text("version: 1\nrules: []\n")
    return ["-c", str(config), "--store", str(tmp_path / "store" / "rulebot.db")]


def test_every_bad_row_is_reported_and_skip_bad_imports_the_rest(tmp_path: Path, capsys) -> None:
    from tests.helpers import rb

    bad = "".join(f"T,https://a.test/b{n},when,,unread\n" for n in range(25))
    path = write(tmp_path / "a.csv", HEADER + _rows(3) + bad + "T,https://a.test/z,5,,read\n")
    options = _cli_config(tmp_path)
    code, out, err = rb(capsys, *options, "import", str(path))
    assert code == 1 and out == ""
    assert "26 bad rows, nothing imported" in err
    assert "row 4 (line 5): time_added 'when'" in err and "row 23 (line 24)" in err
    assert "row 24 (line 25)" not in err and "… and 6 more" in err
    assert "--skip-bad" in err and "Traceback" not in err
    store_file = tmp_path / "store" / "rulebot.db"
    with Store.open(store_file) as opened:
        assert opened.count() == 0
    code, out, err = rb(capsys, *options, "import", "--skip-bad", str(path))
    assert code == 0
    assert out.strip() == f"{path}: 3 added, 0 updated, 0 unchanged"
    assert "skipped 26 bad rows" in err and "row 29 (line 30): unknown status 'read'" not in err
    with Store.open(store_file) as opened:
        assert opened.count() == 3


def test_duplicate_urls_within_an_export_are_reported(tmp_path: Path, store: Store, capsys) -> None:
    from tests.helpers import rb

    path = write(
        tmp_path / "a.csv",
        HEADER
        + "One,https://a.test/1,5,,unread\n"
        + "Two,https://a.test/2,5,,unread\n"
        + "One again,https://a.test/1,6,,archive\n"
        + "One more,https://a.test/1,7,,archive\n",
    )
    result = import_export(store, path)
    assert (result.added, result.duplicates, result.duplicate_urls) == (
        2,
        2,
        ("https://a.test/1", "https://a.test/1"),
    )
    assert store.find_by_url("https://a.test/1").given_title == "One more"  # type: ignore[union-attr]
    code, _, err = rb(capsys, *_cli_config(tmp_path), "import", str(path))
    assert code == 0 and "2 rows repeat the URL of an earlier row" in err


def test_dry_run_shows_changes_and_writes_nothing(tmp_path: Path, capsys) -> None:
    from tests.helpers import rb

    options = _cli_config(tmp_path)
    first = write(tmp_path / "first.csv", HEADER + _rows(3))
    assert rb(capsys, *options, "import", str(first))[0] == 0
    store_file = tmp_path / "store" / "rulebot.db"
    before = store_file.read_bytes()
    second = write(
        tmp_path / "second.csv",
        HEADER
        + "T0,https://a.test/0,1600000000,,unread\n"  # unchanged
        + "Renamed,https://a.test/1,1600000001,x,unread\n"  # title and tags
        + "New,https://a.test/new,5,,unread\n",
    )
    code, out, err = rb(capsys, *options, "import", "--dry-run", str(second))
    assert code == 0, err
    assert out.splitlines() == [
        f"{second} (dry run, nothing written): 1 added, 1 updated, 1 unchanged",
        "  updated  https://a.test/1 (title, tags)",
        "  added    https://a.test/new",
    ]
    assert store_file.read_bytes() == before
    with Store.open(store_file) as opened:
        assert opened.find_by_url("https://a.test/new") is None


def test_a_first_import_dry_run_lists_every_row_as_added_and_writes_no_item(
    tmp_path: Path, capsys
) -> None:
    """An empty library takes the first import's fast path (no merge by URL):
    the dry run must still list every item, in file order, and write none."""
    from tests.helpers import rb

    options = _cli_config(tmp_path)
    first = write(tmp_path / "first.csv", HEADER + _rows(3))
    code, out, err = rb(capsys, *options, "import", "--dry-run", str(first))
    assert code == 0, err
    assert out.splitlines() == [
        f"{first} (dry run, nothing written): 3 added, 0 updated, 0 unchanged",
        *(f"  added    https://a.test/{n}" for n in range(3)),
    ]
    with Store.open(tmp_path / "store" / "rulebot.db") as opened:
        assert opened.items(include_deleted=True) == []
    assert rb(capsys, *options, "import", str(first))[0] == 0
    with Store.open(tmp_path / "store" / "rulebot.db") as opened:
        assert [item.given_url for item in opened.items()] == [
            f"https://a.test/{n}" for n in range(3)
        ]


def test_reimporting_an_older_export_warns_about_reverted_changes(tmp_path: Path, capsys) -> None:
    from tests.helpers import rb

    options = _cli_config(tmp_path)
    old = write(tmp_path / "old.csv", HEADER + _rows(3))
    assert rb(capsys, *options, "import", str(old))[0] == 0
    store_file = tmp_path / "store" / "rulebot.db"
    with Store.open(store_file) as opened:  # a later rulebot run archived one and tagged it
        one = opened.find_by_url("https://a.test/1")
        assert one is not None
        opened.upsert([one.replace(status=ARCHIVED, tags=("done",), time_updated=1_800_000_000)])
    code, out, err = rb(capsys, *options, "import", "--dry-run", str(old))
    assert code == 0
    assert "  updated  https://a.test/1 (tags, status)  <- reverts a later change" in out
    assert "1 items were changed after this export was made" in err
    code, out, err = rb(capsys, *options, "import", str(old))
    assert code == 0 and "0 added, 1 updated, 2 unchanged" in out
    assert "1 items were changed after this export was made" in err
    assert f"rulebot import --dry-run {old}` lists such items" in err


def test_an_export_tagged_row_by_row_reads_every_rows_tags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reader keeps at most ``_TAG_FIELDS_KEPT`` tags fields split (an
    export whose rows each have their own tags would keep them all);
    forgetting them must give each row its own tags still."""
    monkeypatch.setattr(export_reader, "_TAG_FIELDS_KEPT", 2)
    lines = [
        f"T{n},https://a.test/{n},{n},{'x|y' if n % 3 == 0 else f'own-{n}|x'},unread"
        for n in range(1, 30)
    ]
    path = write(tmp_path / "e.csv", HEADER + "\n".join(lines) + "\n")
    assert [item.tags for item in read_export(path)] == [
        ("x", "y") if n % 3 == 0 else (f"own-{n}", "x") for n in range(1, 30)
    ]
