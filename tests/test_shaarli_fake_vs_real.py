"""The fake Shaarli held to the real one: one scenario of raw API requests,
then the same rules through rulebot, against Debian's Shaarli
(``tests/shaarli_server.py``) and ``rulebot.fake.shaarli``; the answers must
match once what legitimately differs is normalised (the port, times of "now",
the short URLs hashed from them, the 405 page's markup).

Without the packages these tests skip saying why (``RULEBOT_REAL_SERVERS=1``:
they fail), so a change to the fake cannot drift from the server unseen.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from rulebot.fake.real_shaarli import token
from rulebot.fake.shaarli import FakeShaarli
from tests.shaarli_server import SECRET, ShaarliServer, require_server

from .helpers import clear_rulebot_env, rb

pytestmark = pytest.mark.shaarli


class Server(Protocol):
    @property
    def base_url(self) -> str: ...  # read-only: the fake's is a property

    secret: str


Call = Callable[..., dict[str, Any]]
_ATOM = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:Z|[+-]\d{2}:\d{2})")


def normalise(value: Any, base_url: str, now: float) -> Any:
    """The port gone, every time within 10 minutes of now "<now>", and the
    short URL of a link created now "<shorturl>" (it hashes that second)."""
    if isinstance(value, list):
        return [normalise(v, base_url, now) for v in value]
    if isinstance(value, dict):
        shown = {k: normalise(v, base_url, now) for k, v in value.items()}
        if shown.get("created") == "<now>" and "shorturl" in shown:
            shorturl = value["shorturl"]
            shown["shorturl"] = "<shorturl>"
            for key in ("url", "title"):
                if isinstance(shown.get(key), str):
                    shown[key] = shown[key].replace(shorturl, "<shorturl>")
        return shown
    if isinstance(value, str):
        if _ATOM.fullmatch(value):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            if abs(moment - now) < 600:
                return "<now>"
        return value.replace(base_url, "<base>")
    return value


def caller(server: Server) -> Call:
    def call(
        method: str,
        path: str,
        body: Any = None,
        *,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        content: bytes | None = None,
    ) -> dict[str, Any]:
        sent = {"Authorization": f"Bearer {token(server.secret)}", **(headers or {})}
        answer = httpx.request(
            method,
            f"{server.base_url}{path}",
            json=body,
            content=content,
            params=params,
            headers={k: v for k, v in sent.items() if v},
            timeout=10,
        )
        kind = answer.headers.get("content-type", "").split(";")[0]
        seen: dict[str, Any] = {"status": answer.status_code, "type": kind}
        if kind == "application/json":
            seen["json"] = normalise(answer.json(), server.base_url, time.time())
        elif answer.status_code == 405:
            seen["allow"] = answer.headers.get("allow")
        else:  # a route 404 (empty) or a PHP error page: its first line
            seen["text"] = answer.text.split("<br />")[0]
        if "location" in answer.headers:
            seen["location"] = answer.headers["location"]
        if kind == "application/json":
            seen["cors"] = answer.headers.get("access-control-allow-origin")
        return seen

    return call


OLD = "2024-01-02T03:04:05+00:00"


def created(n: int) -> str:
    """Distinct creation times (the order among equal seconds is unspecified)."""
    return f"2025-0{1 + n % 9}-1{n % 10}T0{n % 10}:1{n % 10}:00+0{n % 3}:00"


def scenario(call: Call) -> list[tuple[str, dict[str, Any]]]:
    """Raw API requests covering the fact sheet; (label, normalised answer)."""
    steps: list[tuple[str, dict[str, Any]]] = []

    def step(label: str, *args: Any, **kwargs: Any) -> None:
        steps.append((label, call(*args, **kwargs)))

    step("empty list", "GET", "/api/v1/links")
    step("empty tags", "GET", "/api/v1/tags")
    step("empty history", "GET", "/api/v1/history")
    step("info empty", "GET", "/api/v1/info")
    links = [
        ("https://a.example/one?utm_source=x&b=1#frag", ["Dev", "-neg", " sp ace ", "x,y"], False),
        ("example.org/no-scheme", ["dev", "python", "python"], True),
        ("HTTPS://Upper.example/", [".hidden", "2024", "7"], False),
        ("ftp://files.example/f", [1, True], True),
        ("https://a.example/two#xtor=RSS-3", ["Python", "web"], False),
    ]
    for n, (url, tags, private) in enumerate(links):
        body = {"url": url, "tags": tags, "private": private, "created": created(n)}
        body["title"] = f"  Title {n} "
        body["description"] = f"about #rustlang {n}" if n == 1 else f" desc {n} "
        step(f"post {n}", "POST", "/api/v1/links", body)
    step("note", "POST", "/api/v1/links", {"title": "", "tags": ["note"], "created": created(7)})
    step("now link", "POST", "/api/v1/links", {"url": "https://now.example/", "tags": []})
    step("duplicate", "POST", "/api/v1/links", {"url": "https://a.example/one?b=1#frag"})
    step(
        "fraction ignored",
        "POST",
        "/api/v1/links",
        {"url": "https://f.example/", "created": "2020-01-01T00:00:00.5+00:00"},
    )
    step(
        "string private",
        "POST",
        "/api/v1/links",
        {"url": "https://p.example/", "private": "yes", "created": "2023-03-03T03:03:03Z"},
    )
    step("tags as string", "POST", "/api/v1/links", {"url": "https://s.example/", "tags": "a b"})
    step("null tag", "POST", "/api/v1/links", {"url": "https://n.example/", "tags": ["a", None]})
    step(
        "not json",
        "POST",
        "/api/v1/links",
        content=b"url=x",
        headers={"Content-Type": "text/plain"},
    )
    step("list", "GET", "/api/v1/links", params={"limit": "all"})
    for params in (
        {"limit": "0"},
        {"limit": "2", "offset": "1"},
        {"limit": "01"},
        {"limit": "-1"},
        {"limit": "abc"},
        {"offset": "-1"},
        {"offset": "99", "limit": "abc"},
        {"visibility": "private", "limit": "all"},
        {"visibility": "public", "limit": "all"},
        {"visibility": "bogus", "limit": "all"},
        {"searchtags": "python", "limit": "all"},
        {"searchtags": "PYTHON -web", "limit": "all"},
        {"searchtags": "pyt*", "limit": "all"},
        {"searchtags": "pyt", "limit": "all"},
        {"searchtags": "rustlang", "limit": "all"},
        {"searchtags": ".hidden", "visibility": "public", "limit": "all"},
        {"searchtags": ".hidden", "limit": "all"},
        {"searchtags": "x,y", "limit": "all"},
        {"searchterm": "title 2", "limit": "all"},
        {"searchterm": '"desc 3" -web', "limit": "all"},
        {"searchterm": "upper.example", "searchtags": "2024", "limit": "all"},
    ):
        step(f"list {params}", "GET", "/api/v1/links", params=params)
    step("get 0", "GET", "/api/v1/links/0")
    step("get missing", "GET", "/api/v1/links/99")
    step("get non-digit", "GET", "/api/v1/links/x")
    step("get negative", "GET", "/api/v1/links/-1")
    step("trailing slash", "GET", "/api/v1/links/")
    step("index.php", "GET", "/index.php/api/v1/links/1")
    step("patch", "PATCH", "/api/v1/links/0")
    step("tags", "GET", "/api/v1/tags")
    step("tags limit", "GET", "/api/v1/tags", params={"limit": "2", "offset": "1"})
    step("tags bad limit", "GET", "/api/v1/tags", params={"limit": "x"})
    step("tags public", "GET", "/api/v1/tags", params={"visibility": "public"})
    step("tag dev", "GET", "/api/v1/tags/dev")
    step("tag Dev", "GET", "/api/v1/tags/Dev")
    step("tag 1", "GET", "/api/v1/tags/1")
    step("tag route 404", "GET", "/api/v1/tags/foo-bar")
    step("put 1", "PUT", "/api/v1/links/1", {"title": "only title"})
    step("put 0 dup", "PUT", "/api/v1/links/0", {"url": "https://a.example/two"})
    step(
        "put 0 own url",
        "PUT",
        "/api/v1/links/0",
        {
            "url": "https://a.example/one?b=1#frag",
            "title": "kept",
            "tags": ["Dev", "js"],
            "description": "d",
            "private": False,
            "created": OLD,
        },
    )
    step("put missing", "PUT", "/api/v1/links/99", {"url": "https://z.example/"})
    step("rename no name", "PUT", "/api/v1/tags/python", {})
    step("rename unknown", "PUT", "/api/v1/tags/nothing", {"name": "x"})
    step("rename python", "PUT", "/api/v1/tags/python", {"name": "web"})
    step("rename case", "PUT", "/api/v1/tags/web", {"name": "Web"})
    step("rename hashtag", "PUT", "/api/v1/tags/rustlang", {"name": "rust"})
    step("delete tag web", "DELETE", "/api/v1/tags/web")
    step("delete tag Dev", "DELETE", "/api/v1/tags/Dev")
    step("tags after", "GET", "/api/v1/tags")
    step("delete 4", "DELETE", "/api/v1/links/4")
    step("delete 4 again", "DELETE", "/api/v1/links/4")
    step("delete newest", "DELETE", "/api/v1/links/10")
    step(
        "id reused",
        "POST",
        "/api/v1/links",
        {"url": "https://reuse.example/", "created": created(8)},
    )
    step("all after", "GET", "/api/v1/links", params={"limit": "all"})
    step("history", "GET", "/api/v1/history")
    step("history limit", "GET", "/api/v1/history", params={"limit": "2", "offset": "1"})
    step("history all", "GET", "/api/v1/history", params={"limit": "all"})
    step("history since bad", "GET", "/api/v1/history", params={"since": "yesterday"})
    step(
        "history since future",
        "GET",
        "/api/v1/history",
        params={"since": "2099-01-01T00:00:00+00:00"},
    )
    step("info", "GET", "/api/v1/info")
    now = int(time.time())
    for label, auth in (
        ("no auth", ""),
        ("token scheme", f"Token {token(SECRET)}"),
        ("garbage", "Bearer a.b.c"),
        ("wrong secret", f"Bearer {token('wrong')}"),
        ("future iat", f"Bearer {_signed({'iat': now + 60})}"),
        ("old iat", f"Bearer {_signed({'iat': now - 600})}"),
        ("string iat", f"Bearer {_signed({'iat': str(now - 10)})}"),
        ("alg none", f"Bearer {_signed({'iat': now - 10}, {'alg': 'none'})}"),
        ("lower bearer", f"bearer {token(SECRET)}"),
    ):
        step(label, "GET", "/api/v1/info", headers={"Authorization": auth})
    return steps


def _signed(payload: dict[str, Any], header: dict[str, Any] | None = None) -> str:
    import base64
    import hashlib
    import hmac

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    head = b64(json.dumps(header or {"typ": "JWT", "alg": "HS512"}).encode())
    signing = f"{head}.{b64(json.dumps(payload).encode())}"
    sig = hmac.new(SECRET.encode(), signing.encode(), hashlib.sha512).digest()
    return f"{signing}.{b64(sig)}"


@pytest.fixture
def servers() -> Iterator[tuple[ShaarliServer, FakeShaarli]]:
    require_server()
    with ShaarliServer() as real, FakeShaarli(secret=SECRET) as fake:
        yield real, fake


def test_the_fake_answers_the_scenario_as_the_real_server_does(
    servers: tuple[ShaarliServer, FakeShaarli],
) -> None:
    real, fake = servers
    expected = scenario(caller(real))
    got = scenario(caller(fake))
    assert [label for label, _ in got] == [label for label, _ in expected]
    differences = [
        f"{label}:\n  real: {want}\n  fake: {have}"
        for (label, want), (_, have) in zip(expected, got, strict=True)
        if want != have
    ]
    assert not differences, "\n".join(differences)


RULES = """\
limits: {max_actions: 500, max_deletes: 25}
rules:
  - name: purge
    where: {tag: junk}
    actions: [delete]
  - name: tidy
    where: {tag: to-sort}
    actions: [{tags_remove: [TO-SORT]}]
  - name: replace
    where: {tag: replace-me}
    actions: [{tags_replace: [alpha, beta]}]
  - name: hide-private
    where: {private: true, untagged: true}
    actions: [{tags_add: [private-stuff]}]
  - name: rename-js
    actions: [{tag_rename: {old_tag: js, new_tag: javascript}}]
  - name: rename-dev
    actions: [{tag_rename: {old_tag: Dev, new_tag: dev}}]
  - name: drop-tmp
    actions: [{tag_delete: tmp}]
  - name: add-docs
    actions: [{add: {url: "https://docs.example/new", title: New docs, tags: [docs]}}]
"""


def _library(call: Call) -> None:
    for n, (url, tags, private) in enumerate(
        [
            ("https://a.example/junk", ["junk"], False),
            ("https://a.example/sorted", ["To-Sort", "keep"], False),
            ("https://a.example/replace", ["replace-me", "Alpha"], False),
            ("https://a.example/secret", [], True),
            ("https://a.example/js", ["js", "web", "Dev"], False),
            ("https://a.example/dev", ["dev", "python"], True),
            ("https://a.example/tmp", ["tmp", "keep", "tmp"], False),
            ("https://docs.example/new?utm_medium=x", ["docs"], False),
        ]
    ):
        answer = call(
            "POST",
            "/api/v1/links",
            {"url": url, "tags": tags, "private": private, "title": f"T{n}", "created": created(n)},
        )
        assert answer["status"] == 201, answer


def _run_rules(server: Server, tmp: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    call = caller(server)
    _library(call)
    config = tmp / "rules.yaml"
    # one request at a time: the servers' histories are compared in order, and
    # units in flight together reach a server in any order
    config.write_text(
        f"version: 1\nshaarli: {{base_url: '{server.base_url}', concurrency: 1}}\n{RULES}"
    )
    code, out, err = rb(capsys, "-c", str(config), "run", "--format", "json")
    assert code == 0, err
    result = json.loads(out)
    return {
        "summary": result["summary"],
        "links": call("GET", "/api/v1/links", params={"limit": "all"}),
        "tags": call("GET", "/api/v1/tags"),
        "history": [e["event"] for e in call("GET", "/api/v1/history")["json"]],
    }


def test_rules_through_rulebot_end_the_same_on_the_fake_and_the_real_server(
    servers: tuple[ShaarliServer, FakeShaarli],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    real, fake = servers
    clear_rulebot_env(monkeypatch)
    monkeypatch.setenv("SHAARLI_API_SECRET", SECRET)
    ends = []
    for server, name in ((real, "real"), (fake, "fake")):
        workdir = tmp_path / name
        workdir.mkdir()
        monkeypatch.chdir(workdir)
        ends.append(_run_rules(server, workdir, capsys))
    assert ends[1] == ends[0]
    assert ends[0]["summary"]["failed"] == 0
    assert {"DELETED", "UPDATED"} <= set(ends[0]["history"])  # the rules did act
