"""A rule's `limit` and the `max_deletes` belt hold per schedule period (#11.2).

Re-runs within one period (a failed rule is due again; the daemon backs off
and retries; a crash and a re-run) must not get a fresh budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from rulebot.fakepocket import FakePocket
from rulebot.library.store import Store

from .helpers import clear_rulebot_env, rb

T = 1795672800  # 2026-11-26T06:00:00Z, a 06:00 cron fire
DAY = 86400
AT = {
    "fire": "2026-11-26T06:00:00Z",
    "later": "2026-11-26T09:00:00Z",
    "evening": "2026-11-26T21:00:00Z",
    "next": "2026-11-27T06:05:00Z",
}

PURGE = """\
version: 1
limits: {{max_actions: 100, max_deletes: {max_deletes}}}
{source}rules:
  - name: purge
    schedule: "0 6 * * *"
    where: {{status: archived}}
    actions: [delete]
    limit: {limit}
"""


def export_with(path: Path, n: int) -> None:
    rows = ["title,url,time_added,tags,status"]
    rows += [f"Old {i},https://a.org/{i},{T - (900 - i) * DAY},,archive" for i in range(n)]
    path.write_text("\n".join(rows) + "\n")


@pytest.fixture
def local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    export_with(tmp_path / "export.csv", 10)
    return tmp_path


def count(workspace: Path) -> int:
    with Store.open(workspace / ".rulebot" / "rulebot.db") as store:
        return store.count()


def test_limit_holds_per_period_across_runs(local: Path, capsys: pytest.CaptureFixture) -> None:
    (local / "rules.yaml").write_text(PURGE.format(max_deletes=25, source="", limit=3))
    assert rb(capsys, "import", "export.csv")[0] == 0
    assert rb(capsys, "run", "--now", AT["fire"])[0] == 0
    assert count(local) == 7
    # the same period: `run`, `run --due` and the evening all find the budget spent
    for when in ("later", "evening"):
        code, out, _ = rb(capsys, "run", "--now", AT[when])
        assert code == 0 and out.startswith("Applied: 0 succeeded")
    assert count(local) == 7
    # the next period has a fresh budget
    assert rb(capsys, "run", "--due", "--now", AT["next"])[0] == 0
    assert count(local) == 4


def test_max_deletes_counts_the_period(local: Path, capsys: pytest.CaptureFixture) -> None:
    (local / "rules.yaml").write_text(PURGE.format(max_deletes=4, source="", limit=3))
    assert rb(capsys, "import", "export.csv")[0] == 0
    assert rb(capsys, "run", "--now", AT["fire"])[0] == 0
    # raise the rule's limit mid-period: the belt still counts the 3 done today
    (local / "rules.yaml").write_text(PURGE.format(max_deletes=4, source="", limit=10))
    code, _, err = rb(capsys, "run", "--now", AT["later"])
    assert code == 3 and count(local) == 7
    assert "10 deletions (3 already this schedule period) exceed max_deletes 4" in err


def test_a_failing_item_does_not_buy_the_rule_a_fresh_budget(
    fake_pocket: FakePocket, capsys: pytest.CaptureFixture
) -> None:
    ids = [
        fake_pocket.add_item(
            f"https://a.org/{n}", f"Old {n}", status=1, time_added=T - (900 - n) * DAY
        )
        for n in range(10)
    ]
    fake_pocket.fail_actions[ids[1]] = (422, "item is locked")
    source = f"pocket:\n  base_url: {fake_pocket.base_url}\n"
    Path("rules.yaml").write_text(PURGE.format(max_deletes=25, source=source, limit=3))
    code, _, _ = rb(capsys, "run", "--due", "--now", AT["fire"])
    assert code == 1  # one failed, so the rule is not recorded as run: due again
    for minute in range(15, 60, 15):  # cron every 15 minutes, as users run it
        rb(capsys, "run", "--due", "--now", f"2026-11-26T06:{minute}:00Z")
    live = [i for i in ids if fake_pocket.item(i)["status"] not in ("2", 2)]
    assert len(ids) - len(live) == 2  # 2 deleted, the locked one retried, never more than 3
    fake_pocket.fail_actions.clear()
    assert rb(capsys, "run", "--due", "--now", "2026-11-26T07:00:00Z")[0] == 0
    live = [i for i in ids if fake_pocket.item(i)["status"] not in ("2", 2)]
    assert len(ids) - len(live) == 3
