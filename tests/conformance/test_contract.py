"""The contract, asked of every source in the same words (design.md, "One
contract, checked the same way for every source"). Each test runs once per
``backend`` (tests/conformance/backends.py): the local library, the fake
Pocket server in both generations, the fake Karakeep, Wallabag and Readeck,
and Debian's real Shaarli."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rulebot.library.store import Store

from .backends import DAY, STORE, Backend, Held, Seed
from .model import (
    RuleText,
    assert_holds,
    folded,
    held_of,
    intended,
    mirror,
    plan_sends,
    rules_file,
)

TAGS = frozenset({"tags"})
STATUS = frozenset({"status"})
FAVORITE = frozenset({"favorite"})

# one rule per kind of change, each written so it can fire on every source
# that has what it needs (a rule a source cannot do is left out for it)
RULES = [
    RuleText("  - name: purge\n    where: {tag: junk}\n    actions: [delete]\n"),
    RuleText(
        "  - name: archive-stale\n"
        "    where: {tag: read-later, status: unread, added: {older_than: 30d}}\n"
        "    actions: [archive, {tags_add: [Auto-Archived]}]\n",
        STATUS,
        frozenset({"archive"}),
    ),
    RuleText(
        "  - name: fav-rust\n    where: {tag: rust, favorite: false}\n    actions: [favorite]\n",
        FAVORITE,
        frozenset({"favorite"}),
    ),
    RuleText(
        "  - name: stale-tag\n    where: {tag: read-later, added: {older_than: 30d}}\n"
        "    actions: [{tags_add: [stale]}]\n"
    ),
    RuleText(
        "  - name: tidy\n    where: {tag: to-sort}\n    actions: [{tags_remove: [TO-SORT]}]\n"
    ),
    RuleText(
        "  - name: replace\n    where: {tag: replace-me}\n"
        "    actions: [{tags_replace: [alpha, Beta]}]\n"
    ),
    RuleText("  - name: clear\n    where: {tag: clear-me}\n    actions: [tags_clear]\n"),
    RuleText(
        "  - name: rename-js\n    actions: [{tag_rename: {old_tag: js, new_tag: javascript}}]\n"
    ),
    # a rename onto a case variant the library already holds (#22, defect 1)
    RuleText("  - name: rename-case\n    actions: [{tag_rename: {old_tag: Dev, new_tag: dev}}]\n"),
    RuleText("  - name: drop-tmp\n    actions: [{tag_delete: tmp}]\n"),
    RuleText(
        "  - name: add-docs\n"
        '    actions: [{add: {url: "https://docs.example/new", title: New docs, tags: [docs]}}]\n'
    ),
]

LIBRARY = [
    Seed("https://a.example/junk", "Junk", ("junk",)),
    Seed("https://a.example/stale", "Stale", ("Read-Later",), age_days=60),
    Seed("https://a.example/fresh", "Fresh", ("read-later",), age_days=1),
    Seed("https://a.example/rust", "Rust", ("rust",), age_days=60),
    Seed("https://a.example/sorted", "Sorted", ("To-Sort", "keep"), archived=True),
    Seed("https://a.example/replace", "Replace", ("replace-me", "Alpha")),
    Seed("https://a.example/clear", "Clear", ("clear-me", "x")),
    Seed("https://a.example/js", "JS", ("js", "web")),
    Seed("https://a.example/dev", "Dev", ("Dev", "dev", "python")),
    Seed("https://a.example/devonly", "Dev only", ("Dev", "go")),
    Seed("https://a.example/tmp", "Tmp", ("tmp", "keep"), favorite=True),
]


def prepared(backend: Backend, rules: list[RuleText] = RULES) -> Path:
    """The library seeded, the rules written, the mirror synced."""
    backend.seed(LIBRARY)
    path = backend.configure(rules_file(rules, backend.caps))
    backend.sync()
    return path


def held_mirror(backend: Backend) -> dict[str, Held]:
    """rulebot's mirror, in the terms of ``Backend.held`` (by URL)."""
    return {item.url: held_of(item, backend.caps) for item in mirror().values()}


def test_the_dry_run_is_what_the_service_ends_up_holding(backend: Backend) -> None:
    config = prepared(backend)
    expected = intended(config, backend.now, backend.caps)
    code, shown, err = backend.cli("plan", "--format", "json")
    assert code == 0, err
    code, out, err = backend.cli("run", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["summary"]["failed"] == result["summary"]["skipped"] == 0, out
    assert plan_sends(out) == plan_sends(shown)  # the dry run is the exact list sent
    assert_holds(backend, expected, what="after run")
    # the mirror, updated only from confirmed answers, holds what the service holds
    assert folded(held_mirror(backend)) == folded(backend.by_url())


def test_a_second_run_plans_nothing(backend: Backend) -> None:
    prepared(backend)
    code, _, err = backend.cli("run")
    assert code == 0, err
    code, out, err = backend.cli("plan", "--detailed-exitcode", "--format", "json")
    assert code == 0, f"the second run planned: {out}"
    assert json.loads(out)["actions"] == []


def test_a_limit_holds_back_only_what_it_limits(backend: Backend) -> None:
    backend.seed(
        [Seed(f"https://l.example/{n}", f"L{n}", ("later",), age_days=40 - n) for n in range(5)]
    )
    backend.configure(
        "rules:\n  - name: tag-some\n    where: {tag: later}\n    limit: 2\n"
        "    actions: [{tags_add: [done]}, {tags_remove: [later]}]\n"
    )
    for left in (3, 1, 0):
        code, _, err = backend.cli("run")
        assert code == 0, err
        code, out, _ = backend.cli("plan", "--format", "json")
        planned = {a["send"].get("item_id") for a in json.loads(out)["actions"]}
        assert len(planned) == min(left, 2), out
    assert all(h.tags == ("done",) for h in backend.held().values())


def test_a_reviewed_plan_is_what_apply_sends(backend: Backend) -> None:
    config = prepared(backend)
    expected = intended(config, backend.now, backend.caps)
    code, _, err = backend.cli("plan", "--out", "plan.json")
    assert code == 0, err
    code, out, err = backend.cli("apply", "plan.json", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    assert result["summary"]["skipped"] == 0, result["skipped"]  # nothing "stale" by rulebot
    assert result["summary"]["failed"] == 0, result["failed"]
    assert_holds(backend, expected, what="after apply")


def test_undo_restores_what_the_run_changed(backend: Backend) -> None:
    """Every field the source can write comes back as it was, tag spelling
    included; where one cannot (two spellings of one tag, a service that
    lower-cases tags), undo says so for that item."""
    prepared(backend)
    before = backend.held()
    code, _, err = backend.cli("run")
    assert code == 0, err
    assert backend.by_url() != {h.url: h for h in before.values()}
    code, out, err = backend.cli("undo", "--format", "json")
    assert code == 0, err + out
    said = [line for line in err.splitlines() if "not restored exactly" in line]
    after = backend.by_url()
    assert sorted(after) == sorted(h.url for h in before.values())
    for item_id, held in before.items():
        if after[held.url] == held:
            continue
        assert after[held.url].folded() == held.folded(), f"undo left {after[held.url]}, was {held}"
        named = (f" {item_id})", f" on item {item_id}:")
        assert any(name in line for line in said for name in named), (
            f"undo left {after[held.url]}, was {held}, and did not say why: {said}"
        )


def test_a_rename_onto_a_tag_an_undone_run_created_works(backend: Backend) -> None:
    """A run adds a new tag, undo takes it away again, and a rename onto that
    name still works: no empty tag left on the server blocks it for good
    (#22, defect 2: Karakeep refused such a rename on every run)."""
    ids = backend.seed(
        [
            Seed("https://r.example/1", "One", ("js",)),
            Seed("https://r.example/2", "Two", ("other",)),
        ]
    )
    backend.configure(
        "rules:\n  - name: tag\n    where: {tag: other}\n    actions: [{tags_add: [javascript]}]\n"
    )
    code, _, err = backend.cli("run")
    assert code == 0, err
    code, out, err = backend.cli("undo")
    assert code == 0, err + out
    backend.configure(
        "rules:\n  - name: rename\n    actions: [{tag_rename: {old_tag: js, new_tag: javascript}}]\n"
    )
    code, out, err = backend.cli("run")
    assert code == 0, err + out
    held = backend.held()
    assert [t.lower() for t in held[ids[0]].tags] == ["javascript"]
    assert [t.lower() for t in held[ids[1]].tags] == ["other"]
    code, out, _ = backend.cli("plan", "--detailed-exitcode")
    assert code == 0, out


def test_an_incremental_sync_sees_what_a_full_sync_sees(backend: Backend) -> None:
    prepared(backend)
    ids = {held.url: item_id for item_id, held in backend.held().items()}
    backend.advance(3600)
    if "tags" in backend.caps.fields:
        backend.set_tags(ids["https://a.example/fresh"], ["Read-Later", "read-later", "NEW"])
    if "status" not in backend.caps.refuses:
        backend.set_archived(ids["https://a.example/rust"], True)
    if "favorite" not in backend.caps.refuses:
        backend.set_favorite(ids["https://a.example/tmp"], False)
    backend.rename_tag("web", "www")
    backend.remove(ids["https://a.example/junk"])
    backend.add(Seed("https://a.example/late", "Late", ("late",)))
    backend.sync()
    incremental = held_mirror(backend)
    if backend.caps.deletions_found_by is not None:
        # the source says its change feed never reports a deletion: exactly the
        # deleted item lingers until the full scan it names, which then drops it
        assert incremental.pop("https://a.example/junk", None) is not None
        backend.full_scan_due()
        backend.sync()
        assert held_mirror(backend) == backend.by_url()
    backend.sync("--full")
    assert incremental == held_mirror(backend) == backend.by_url()


# Only where the test can move the server's clock (the fakes, the local library):
# the real Shaarli and Linkding run on this machine's clock.
@pytest.mark.sources(lambda backend: backend.clock)
def test_item_times_ahead_of_the_server_clock_hide_no_edit(backend: Backend) -> None:
    """Items stamped ahead of the time the server answers (clock skew, a
    restore, seed data from the future): an edit the server makes now is
    still seen by the next incremental sync (#22, defect 3)."""
    ids = backend.seed(LIBRARY[:4])
    backend.configure(rules_file(RULES[:1], backend.caps))
    backend.sync()
    backend.advance(2 * 3600)
    backend.add(Seed("https://a.example/ahead", "From the future", ("x",)))
    backend.advance(-2 * 3600 + 60)  # the server answers two hours before that item's time
    backend.sync()  # an incremental sync that sees the item from the future
    backend.advance(60)
    backend.set_tags(ids[3], ["rust", "keep"])
    backend.sync()
    seen = {item.url: item for item in mirror().values()}
    assert sorted(seen[LIBRARY[3].url].tags or ()) == ["keep", "rust"]


def test_nothing_due_costs_no_request(backend: Backend) -> None:
    backend.seed(LIBRARY[:3])
    backend.configure(
        "rules:\n  - name: yearly\n    schedule: '0 6 1 1 *'\n    where: {tag: junk}\n"
        "    actions: [delete]\n"
    )
    code, _, err = backend.cli("run", "--due")
    assert code == 0, err
    backend.advance(DAY)
    before = backend.requests()
    code, _, err = backend.cli("run", "--due")
    assert code == 0, err
    assert backend.requests() == before


def test_store_is_a_real_file(backend: Backend) -> None:
    prepared(backend)
    with Store.open(STORE) as store:
        assert store.items(), "the sync filled the mirror"
