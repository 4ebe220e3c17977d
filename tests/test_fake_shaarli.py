"""The fake Shaarli's own contract: what tests/test_shaarli_fake_vs_real.py
cannot compare with the real server (the frozen clock's ``iat`` window, the
fault-injection API of fake/base.py, ``python -m rulebot.fake.shaarli``)."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest

from rulebot.fake.real_shaarli import token
from rulebot.fake.shaarli import DEFAULT_SECRET, FakeShaarli, seed
from rulebot.fake.shaarli.model import small_hash
from rulebot.sources.shaarli.api import ShaarliClient, ShaarliError, make_token
from tests.helpers import stop


def get(server: FakeShaarli, path: str, auth: str | None = None) -> httpx.Response:
    auth = auth or f"Bearer {token(server.secret)}"
    return httpx.get(f"{server.base_url}/api/v1{path}", headers={"Authorization": auth})


def test_the_iat_window_follows_the_fakes_clock() -> None:
    with FakeShaarli(now=1_800_000_000) as server:

        def status(iat: float) -> int:
            signed = make_token(server.secret, iat + 5)  # make_token signs iat - 5
            return get(server, "/info", f"Bearer {signed}").status_code

        assert status(1_800_000_000) == 200
        assert status(1_800_000_000 - 540) == 200
        assert status(1_800_000_000 - 541) == 401
        assert status(1_800_000_001) == 401  # no tolerance for the future
        server.now = 1_800_000_600
        assert status(1_800_000_000) == 401


def test_seeded_links_read_through_rulebots_client() -> None:
    with FakeShaarli() as server:
        ids = seed(server, 30)
        assert ids == list(range(30))  # ids from 0
        client = ShaarliClient(server.base_url, server.secret, page_size=7)
        links = list(client.iter_links())
        assert sorted(link["id"] for link in links) == ids
        first = server.link(0)
        created = server._links[0].created
        assert first["shorturl"] == small_hash(created, 0)


def test_faults_garble_and_clear_faults_work_on_the_fake_shaarli() -> None:
    with FakeShaarli() as server:
        link_id = server.add_link("https://a.example/x", "X", tags=["js"])
        server.inject("status", route="GET /links", status=503)
        assert get(server, "/links").status_code == 503
        assert get(server, "/links").status_code == 200
        server.inject("status", route="/links/{id}", status=429, retry_after=7)
        answer = get(server, f"/links/{link_id}")
        assert (answer.status_code, answer.headers["retry-after"]) == (429, "7")
        server.garble(link_id, created="10000-01-01T00:00:00+00:00")
        assert get(server, f"/links/{link_id}").json()["created"].startswith("10000")
        assert server.exchanges[-1].fault == "garble"
        client = ShaarliClient(server.base_url, server.secret, max_retries=0)
        server.clear_faults()
        server.inject("drop", route="GET /info")
        with pytest.raises(ShaarliError):
            client.info()
        assert client.info()["global_counter"] == 1
        assert server.calls("GET /info") == 2
        server.inject("drop_after", route="DELETE /links/{id}")
        with pytest.raises(httpx.HTTPError):
            httpx.delete(
                f"{server.base_url}/api/v1/links/{link_id}",
                headers={"Authorization": f"Bearer {token(server.secret)}"},
            )
        assert server.links() == []  # the work was done, the answer lost


def test_python_m_rulebot_fake_shaarli_prints_the_export_line() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rulebot.fake.shaarli", "--port", "0", "--seed", "5"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        head = process.stdout.readline()
        export = process.stdout.readline().strip()
        assert head.startswith("fake Shaarli server at http://127.0.0.1:") and "5 links" in head
        assert export == f"export SHAARLI_API_SECRET={DEFAULT_SECRET}"
        base_url = head.split(" at ", 1)[1].split(" ", 1)[0]
        answer = httpx.get(
            f"{base_url}/api/v1/info",
            headers={"Authorization": f"Bearer {token(DEFAULT_SECRET)}"},
        )
        assert answer.json()["global_counter"] == 5
    finally:
        stop(process, timeout=20)
    assert process.returncode == 0


def test_the_history_keeps_31_days_of_events_whatever_order_the_clock_took() -> None:
    """``History::addEvent``: each change drops the events past retention.
    The fake only refilters when its oldest event is past it, which must
    never keep one that the full filter drops, nor drop one it keeps."""
    day = 86_400
    with FakeShaarli(now=1_800_000_000) as server:
        first = server.add_link("https://h.example/1", "One")
        server.now += 20 * day
        second = server.add_link("https://h.example/2", "Two")
        assert [event["id"] for event in server.history()] == [second, first]
        server.now += 12 * day  # the first event is 32 days old now, the second 12
        third = server.add_link("https://h.example/3", "Three")
        assert [event["id"] for event in server.history()] == [third, second]
        server.now -= 40 * day  # a clock set back: an event older than the others
        fourth = server.add_link("https://h.example/4", "Four")
        assert [event["id"] for event in server.history()] == [fourth, third, second]
        server.now += 40 * day  # 40 days after the fourth: it goes, the others stay
        fifth = server.add_link("https://h.example/5", "Five")
        assert [event["id"] for event in server.history()] == [fifth, third, second]
