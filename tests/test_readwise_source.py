"""The Readwise Reader source through the CLI, against the fake: the
location condition, the favourite mapping, pacing and the time budget."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from rulebot.fake.readwise import FakeReadwise
from tests.helpers import clear_rulebot_env, rb

T = 1_795_672_800
DAY = 86400


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Any:
    clear_rulebot_env(monkeypatch)
    monkeypatch.chdir(tmp_path)
    with FakeReadwise(now=T, rate_limits=None) as server:
        monkeypatch.setenv("READWISE_TOKEN", server.token)
        yield server


def config(fake: FakeReadwise, rules: str, block: str = "") -> str:
    Path("rules.yaml").write_text(
        f"version: 1\nreadwise: {{base_url: '{fake.base_url}'{block}}}\nrules:\n{rules}"
    )
    return "rules.yaml"


NOW = ["--now", "2026-11-26T06:00:00Z"]


def test_location_tells_the_unread_lists_apart(fake: FakeReadwise, capsys: Any) -> None:
    old = T - 90 * DAY
    inbox = fake.add_document("https://example.com/inbox", created_at=old, location="new")
    later = fake.add_document("https://example.com/later", created_at=old, location="later")
    fake.add_document("https://example.com/short", created_at=old, location="shortlist")
    fake.add_document("https://example.com/feed", created_at=old, location="feed")
    path = config(
        fake,
        "  - name: inbox\n    where: {location: new, added: {older_than: 30d}}\n"
        "    actions: [archive]\n",
        ", rate_limits: {list: 1000, update: 1000}",
    )
    code, out, err = rb(capsys, "plan", "--config", path, *NOW)
    assert code == 0, err
    assert "Requests: 1 (1 update at 1000/min)" in out
    code, out, err = rb(capsys, "run", "--config", path, *NOW)
    assert code == 0, err
    assert fake.docs[inbox].location == "archive"
    assert fake.docs[later].location == "later"


def test_favorite_is_refused_unless_the_config_maps_it(fake: FakeReadwise, capsys: Any) -> None:
    rules = "  - name: fav\n    where: {tag: python}\n    actions: [favorite]\n"
    code, out, err = rb(capsys, "validate", "--config", config(fake, rules))
    assert code != 0 and "cannot do `favorite`" in out + err
    code, _, err = rb(capsys, "validate", "--config", config(fake, rules, ", favorite: shortlist"))
    assert code != 0
    code, _, err = rb(capsys, "validate", "--config", config(fake, rules, ", favorite: 'tag:fav'"))
    assert code == 0, err
    doc = fake.add_document("https://example.com/a", tags=["python"])
    code, _, err = rb(capsys, "run", "--config", "rules.yaml", *NOW)
    assert code == 0, err
    assert sorted(t["name"] for t in fake.docs[doc].tags.values()) == ["fav", "python"]


def test_the_time_budget_applies_what_fits_and_leaves_the_rest(
    fake: FakeReadwise, capsys: Any
) -> None:
    ids = [fake.add_document(f"https://example.com/{n}", tags=["x"]) for n in range(5)]
    path = config(
        fake,
        "  - name: archive-x\n    where: {tag: x}\n    actions: [archive]\n",
        ", time_budget: 1m, rate_limits: {list: 1000, update: 2}",
    )
    code, out, err = rb(capsys, "plan", "--config", path, "--format", "json", *NOW)
    assert code == 0, err
    pacing = json.loads(out)["pacing"]
    assert pacing["by_class"] == {"update": 5} and pacing["time_budget"] == 60
    assert pacing["fits"] == {"actions": 2, "requests": 2}
    code, out, err = rb(capsys, "run", "--config", path, *NOW)
    archived = [i for i in ids if fake.docs[i].location == "archive"]
    assert len(archived) == 2
    assert "time budget" in out + err


def test_the_token_never_leaves_the_environment(fake: FakeReadwise, tmp_path: Path) -> None:
    from rulebot.fake.readwise import seed
    from tests.helpers import assert_secret_stays_home

    seed(fake, 20)
    config(fake, "  - name: tidy\n    where: {location: later}\n    actions: [archive]\n")
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "READWISE_TOKEN": fake.token}
    assert_secret_stays_home(fake.token, env, fake)
