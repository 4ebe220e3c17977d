"""The fake Raindrop.io answers in shapes a real client accepts: the
third-party ``raindrop-io-py`` (PyPI, a test-only dependency) runs the
operations rulebot uses against it; and rulebot's own client reads the
fake's quirks (errors, rate headers, the HTML 404, ``python -m``)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from collections.abc import Iterator

import pytest

from rulebot.fake.raindrop import TRASH, FakeRaindrop, seed
from rulebot.sources.raindrop.api import NotFound, RaindropAuthError, RaindropClient

TOKEN = "rd-SECRET-fake-0123456789"


@pytest.fixture
def fake() -> Iterator[FakeRaindrop]:
    with FakeRaindrop(token=TOKEN) as server:
        yield server


# raindrop-io-py 0.4.7 (the newest) is written for pydantic 1 and declares
# pydantic<3: under pydantic 2 it runs on the pydantic.v1 shim, in a process
# of its own so the alias touches nothing else
THIRD_PARTY = """
import os
import sys
os.environ["OAUTHLIB_INSECURE_TRANSPORT"] = "1"  # the fake is plain http on 127.0.0.1
import pydantic.v1
sys.modules["pydantic"] = pydantic.v1
import raindropiopy.models as models
from raindropiopy import API, Collection, CollectionRef, Raindrop, Tag, User

base_url, token, archive, user = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
models.URL = base_url + "/rest/v1/{path}"
with API(token) as api:
    assert User.get(api).id == user
    titles = {c.title for c in Collection.get_collections(api)}
    assert {"Archive", "Reading"} <= titles, titles
    listed = list(Raindrop.search(api, collection=CollectionRef.All))
    assert len(listed) == 7, len(listed)
    created = Raindrop.create_link(api, "https://example.com/new", tags=["Py", "x"])
    assert created.link == "https://example.com/new" and created.tags == ["Py", "x"]
    updated = Raindrop.update(
        api, created.id, tags=["Py"], important=True, collection=CollectionRef(**{"$id": archive})
    )
    assert updated.tags == ["Py"] and updated.important is True
    # raindrop-io-py sends the collection as a bare number, which Raindrop.io
    # ignores (developer-site issue 3): the bookmark stays in Unsorted
    assert updated.collection.id == -1, updated.collection
    assert any(tag.tag == "py" for tag in Tag.get(api))  # case variants grouped
    Raindrop.delete(api, created.id)
print(created.id)
"""


def test_raindrop_io_py_reads_and_writes_the_fake(fake: FakeRaindrop) -> None:
    if importlib.util.find_spec("raindropiopy") is None:
        pytest.skip("raindrop-io-py is not installed (pip install -e '.[dev]')")
    archive = fake.add_collection("Archive")
    seed(fake, 7)
    ran = subprocess.run(
        [sys.executable, "-c", THIRD_PARTY, fake.base_url, TOKEN, str(archive), str(fake.user_id)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert ran.returncode == 0, ran.stderr
    assert int(ran.stdout) in fake.trash


def test_rulebot_client_reads_the_fakes_answers(fake: FakeRaindrop) -> None:
    kept = fake.add_raindrop("https://www.example.com/a", tags=["Chinese"])
    fake.add_raindrop("https://example.com/b", tags=["chinese"], important=True)
    with RaindropClient(fake.base_url + "/rest/v1", TOKEN, page_size=1) as client:
        listed = list(client.iter_raindrops())
        assert len(listed) == 2 and "important" not in listed[1]  # left out when false
        assert client.first_count == 2
        assert client.list_tags() == [{"_id": "chinese", "count": 2}]
        assert client.get(str(kept))["domain"] == "example.com"
        assert client.bulk_update(-1, [kept], {"tags": ["more"]}) == 1
        assert client.get(str(kept))["tags"] == ["Chinese", "more"]
        assert client.bulk_remove(-1, [kept]) == 1
        assert client.bulk_remove(-1, [kept]) == 0  # not in that collection any more
        assert client.get(str(kept))["collectionId"] == TRASH
        with pytest.raises(NotFound):
            client.get("999")
    with (
        RaindropClient(fake.base_url, "wrong") as client,
        pytest.raises(RaindropAuthError, match="RAINDROP_TOKEN"),
    ):
        client.me()
    last = fake.exchanges[-1]
    assert last.status == 401 and last.response_body == b"Unauthorized"


def test_the_fake_runs_as_a_module() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "rulebot.fake.raindrop", "--port", "0", "--seed", "5"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert "fake Raindrop.io server at http://127.0.0.1:" in banner and "5 raindrops" in banner
    finally:
        process.terminate()
        process.wait(timeout=10)
