"""The fake Readwise Reader as its users' own clients see it: two
third-party clients from PyPI drive it over a real socket, doing the
operations rulebot uses (list with paging, ``updatedAfter`` and a location,
get one, save a URL, update the location and tags, delete, list the tags),
and their answers must parse in the clients' own models.

Neither client installs beside rulebot's ``dev`` extra (README,
"Dependencies"): ``readwise-api`` pins pydantic<2 (raindrop-io-py and
openapi-core need pydantic 2) and ``readwise-plus`` needs Python 3.12. So
each runs in a venv of its own, made once and kept under the user's cache
(``RULEBOT_CLIENT_VENVS`` overrides where), in a subprocess that prints what
it saw as JSON; the checks are made here against the fake's own state.
Where a venv cannot be made (no network, no Python 3.12) the test skips,
saying why.
"""

from __future__ import annotations

import fcntl
import glob
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from rulebot.fake.readwise import FakeReadwise, seed

NOW = 1_795_672_800  # 2026-11-26T06:00:00Z
READWISE_API = "readwise-api>=0.3,<0.4"
READWISE_PLUS = "readwise-plus>=0.3,<0.4"


def venvs_root() -> Path:
    if os.environ.get("RULEBOT_CLIENT_VENVS"):
        return Path(os.environ["RULEBOT_CLIENT_VENVS"])
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "rulebot" / "client-venvs"


def python_at_least(python: str, minor: int) -> bool:
    try:
        ran = subprocess.run(
            [python, "-c", f"import sys; print(sys.version_info >= (3, {minor}))"],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except OSError:
        return False
    return ran.returncode == 0 and ran.stdout.strip() == "True"


def newer_python(minor: int) -> str | None:
    """A Python 3.<minor> or later: this one, one on PATH, or one of pyenv's."""
    candidates = [sys.executable]
    candidates += [found for n in (14, 13, 12) if (found := shutil.which(f"python3.{n}"))]
    pyenv = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    candidates += sorted(glob.glob(f"{pyenv}/versions/3.1[2-9]*/bin/python3"), reverse=True)
    return next((c for c in candidates if python_at_least(c, minor)), None)


def client_venv(name: str, requirement: str, module: str, python: str) -> Path:
    """The venv's python with ``requirement`` importable, made on first use.

    The check imports ``module`` with a token in the environment, as the
    tests run it: readwise-api reads ``READWISE_TOKEN`` as it is imported,
    and a check without it took a good venv for a broken one and rebuilt it
    on every run. A lock beside the venv keeps two test sessions (or two
    pytest-xdist workers) from building it at once."""
    venv = venvs_root() / name
    binary = venv / "bin" / "python"
    check = [str(binary), "-c", f"import {module}"]
    env = {**os.environ, "READWISE_TOKEN": "check"}
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists() and subprocess.run(check, capture_output=True, env=env).returncode == 0:
            return binary
        shutil.rmtree(venv, ignore_errors=True)
        steps = (
            [python, "-m", "venv", str(venv)],
            [str(binary), "-m", "pip", "install", "-q", requirement],
            check,
        )
        for step in steps:
            ran = subprocess.run(step, capture_output=True, text=True, timeout=600, env=env)
            if ran.returncode != 0:
                shutil.rmtree(venv, ignore_errors=True)
                pytest.skip(f"could not install {requirement} into {venv}: {ran.stderr[-500:]}")
    return binary


def drive(python: Path, script: str, fake: FakeReadwise, cwd: Path, stdin: str = "") -> Any:
    """Run ``script`` with the fake's API root and token; what it printed, as JSON."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(cwd), "READWISE_TOKEN": fake.token}
    ran = subprocess.run(
        [str(python), "-c", script, f"{fake.base_url}/api/v3", fake.token],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=cwd,  # readwise-api reads a .env from here: there is none
    )
    assert ran.returncode == 0, ran.stderr
    return json.loads(ran.stdout)


@pytest.fixture
def fake() -> Iterator[FakeReadwise]:
    # no rate limits: readwise-api sleeps out a 429's Retry-After in whole seconds
    with FakeReadwise(now=NOW, rate_limits=None) as server:
        yield server


def ids_at(fake: FakeReadwise, location: str, category: str | None = None) -> set[str]:
    return {
        d.id
        for d in fake.docs.values()
        if d.location == location and category in (None, d.category)
    }


# -- readwise-api (floscha): list by location, get one, save ---------------------------------

# Its one setting for the server is the module's URL_BASE (read on every
# call); the token comes from READWISE_TOKEN. It has no update, delete, tag
# list or updatedAfter: those are driven with readwise-plus below.
READWISE_API_SCRIPT = """
import json
import sys
import readwise
import readwise.api
from readwise.model import Document

readwise.api.URL_BASE = sys.argv[1]
later = readwise.get_documents("later")  # pages on nextPageCursor, 100 a page
assert all(isinstance(d, Document) for d in later)
archived_pdfs = readwise.get_documents("archive", category="pdf")
one = readwise.get_document_by_id(later[0].id)
created = readwise.save_document("https://n.example/read")
again = readwise.save_document("https://n.example/read")
print(json.dumps({
    "later": [d.id for d in later],
    "archived_pdfs": [d.id for d in archived_pdfs],
    "one": json.loads(one.json()),
    "created": [created[0], created[1].id, created[1].url],
    "again": [again[0], again[1].id],
    "missing": readwise.get_document_by_id("01nosuchdocument00000000000") is None,
}))
"""


def test_readwise_api_lists_pages_gets_and_saves(fake: FakeReadwise, tmp_path: Path) -> None:
    python = client_venv("readwise-api", READWISE_API, "readwise", sys.executable)
    seed(fake, 450)
    later = ids_at(fake, "later")
    assert len(later) > 100  # more than one page
    seen = drive(python, READWISE_API_SCRIPT, fake, tmp_path)

    assert len(seen["later"]) == len(set(seen["later"])) and set(seen["later"]) == later
    assert set(seen["archived_pdfs"]) == ids_at(fake, "archive", "pdf")
    cursors = [e.query.get("pageCursor") for e in fake.exchanges if e.route == "GET /list"]
    assert any(cursors)
    one = seen["one"]
    doc = fake.docs[one["id"]]
    assert (one["source_url"], one["location"], one["title"]) == (
        doc.source_url,
        "later",
        doc.title,
    )
    assert set(one["tags"] or {}) == set(doc.tags)  # the key -> {name, type, created} map
    assert all(isinstance(tag["created"], int) for tag in (one["tags"] or {}).values())

    # its first element is "the status was 200": false when created (201), true when known
    created_flag, created_id, reader_url = seen["created"]
    assert created_flag is False and created_id in reader_url
    assert seen["again"] == [True, created_id]
    assert fake.docs[created_id].source_url == "https://n.example/read"
    assert seen["missing"] is True


# -- readwise-plus: every operation rulebot uses ---------------------------------------------

# readwise-plus has no public setting for the server: its ClientConfig has a
# v3_base_url field that the constructor does not take, so the script puts
# the fake's root in with dataclasses.replace on the client's config.
READWISE_PLUS_SCRIPT = """
import dataclasses
import json
import sys
from datetime import datetime, timezone
from readwise_sdk import ReadwiseClient
from readwise_sdk.v3.client import ReadwiseV3Client
from readwise_sdk.v3.models import Document, DocumentLocation, DocumentUpdate

root, token = sys.argv[1], sys.argv[2]
client = ReadwiseClient(api_key=token, max_retries=0)
client._config = dataclasses.replace(client._config, v3_base_url=root)
v3 = ReadwiseV3Client(client)

every = list(v3.list_documents())  # pages on nextPageCursor
assert all(isinstance(d, Document) and d.created_at.tzinfo for d in every)
later = list(v3.list_documents(location=DocumentLocation.LATER))
since = datetime.fromtimestamp(int(sys.stdin.readline()), tz=timezone.utc)
changed = list(v3.list_documents(updated_after=since))
one = v3.get_document(every[0].id)
made = v3.save_url("https://n.example/read", location=DocumentLocation.LATER, tags=["Later", "work"])
saved = v3.get_document(made.id)
moved = v3.update_document(made.id, DocumentUpdate(location=DocumentLocation.ARCHIVE, tags=["done"]))
updated = v3.get_document(made.id)
tags = list(v3.list_tags())
v3.delete_document(made.id)
print(json.dumps({
    "every": [d.id for d in every],
    "later": [d.id for d in later],
    "changed": [d.id for d in changed],
    "one": [one.id, one.source_url, one.reading_time, one.tags],
    "made": [made.id, made.url, saved.location.value, saved.source_url],
    "moved": moved.id,
    "updated": [updated.location.value, updated.tags],
    "tags": sorted((t.key, t.name) for t in tags),
    "gone": v3.get_document(made.id) is None,
}))
"""


def test_readwise_plus_lists_saves_updates_tags_and_deletes(
    fake: FakeReadwise, tmp_path: Path
) -> None:
    python = newer_python(12)
    if python is None:
        pytest.skip("readwise-plus needs Python 3.12 or later and none was found")
    venv_python = client_venv("readwise-plus", READWISE_PLUS, "readwise_sdk", python)
    seed(fake, 160)
    assert len(fake.docs) > 100  # more than one page
    middle = sorted(d.updated_at for d in fake.docs.values())[len(fake.docs) // 2]
    seen = drive(venv_python, READWISE_PLUS_SCRIPT, fake, tmp_path, f"{int(middle)}\n")
    before = {d.id: d for d in fake.docs.values()}  # as listed: the new one is deleted again

    assert len(seen["every"]) == len(set(seen["every"])) and set(seen["every"]) == set(before)
    assert set(seen["later"]) == ids_at(fake, "later")
    assert set(seen["changed"]) == {i for i, d in before.items() if d.updated_at > int(middle)}
    assert 0 < len(seen["changed"]) < len(before)
    listed_id, source_url, minutes, tags = seen["one"]
    assert source_url == before[listed_id].source_url
    assert minutes is None or isinstance(minutes, int)  # its model reads "5 mins" as 5
    # readwise-plus reads tags as a list only: the service's key -> {name} map
    # (spec §3, what the fake sends) comes out as no tags, so its add_tag and
    # remove_tag would write back a set without the document's own tags
    assert tags == []

    made_id, reader_url, location, saved_url = seen["made"]
    assert made_id in reader_url and (location, saved_url) == ("later", "https://n.example/read")
    assert seen["moved"] == made_id and seen["updated"] == ["archive", []]
    patch = next(e for e in fake.exchanges if e.route == "PATCH /update/{id}")
    assert json.loads(patch.raw_body) == {"location": "archive", "tags": ["done"]}
    assert ["done", "done"] in seen["tags"]  # the tag list: key and name, what the update set
    assert seen["gone"] is True and made_id not in fake.docs
    deletes = [e for e in fake.exchanges if e.route == "DELETE /delete/{id}"]
    assert [e.status for e in deletes] == [204]
