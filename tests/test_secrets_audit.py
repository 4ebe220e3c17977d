"""Secrets audit: no command, on any path, lets the Pocket credentials out.

Every command runs as a real subprocess (``python -m rulebot -v -v ...``)
against the fake Pocket server holding distinctive credentials, on its happy
path and on failing ones (401, 403, 5xx until give-up, timeouts, rate
limits, garbage answers, per-action failures). Afterwards everything the
run left behind is searched for the credentials: stdout, stderr, the GitHub
step summary and output files, plan and result files, exports, and every
byte of every file under the working directory (the SQLite store, its -wal
and -shm files, the lock file). No recorded request may carry them in its
URL or headers; every request must carry them in its JSON body (so the
audit is searching for the credentials really in use).

The one intended exception: ``rulebot auth`` prints the access token it
obtained, once, on stdout; it must appear nowhere else.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote_plus

import pytest

from rulebot.fakepocket import FakePocket
from tests.conftest import ACCESS_TOKEN, CONSUMER_KEY, use_fake_credentials
from tests.helpers import Answering, clear_rulebot_env, rb
from tests.test_pocket_mode import RULES, populate, subprocess_env, write_config

WRONG_TOKEN = "at-WRONG-SECRET-4242"
WRONG_KEY = "ck-WRONG-SECRET-4343"
SECRETS = (CONSUMER_KEY, ACCESS_TOKEN, WRONG_TOKEN, WRONG_KEY)

TESTS_BLOCK = """\
tests:
  - name: read-later is archived
    now: "2026-01-15T06:00:00Z"
    items:
      - {id: 1, url: "https://example.com/a", tags: [read-later]}
    expect:
      - {action: archive, item: 1, rule: archive-read-later}
      - {action: tags_add, item: 1, tags: [auto-archived], rule: archive-read-later}
      - {action: add, tags: [docs], rule: save-docs}
"""
LOCAL_CONFIG = """\
version: 1
store: local.db
rules:
  - name: archive-read-later
    where: {tag: read-later}
    actions: [archive]
"""
EXPORT_CSV = (
    "title,url,time_added,tags,status\n"
    "Hello,https://a.example/1,1600000000,read-later|x,unread\n"
    "World,https://b.example/2,1600000100,,archive\n"
)


@dataclass(frozen=True)
class Step:
    args: tuple[str, ...]
    code: int = 0
    stdin: str = ""
    env: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Case:
    id: str
    steps: tuple[Step, ...]
    setup: Callable[[FakePocket], None] = lambda server: None
    extra: str = ""  # more lines under `pocket:`
    token_on_stdout: bool = False  # `auth` prints the token it obtained, once
    logs_http: bool = True  # -v -v logs each HTTP exchange ("HTTP 200" etc.)


def s(*args: str, code: int = 0, **kw: object) -> Step:
    return Step(tuple(args), code, **kw)  # type: ignore[arg-type]


def inject(*specs: tuple[object, ...]) -> Callable[[FakePocket], None]:
    def setup(server: FakePocket) -> None:
        for fault, count, path, *kw in specs:
            server.inject(fault, count, path, **(kw[0] if kw else {}))  # type: ignore[arg-type]

    return setup


def fail_first(server: FakePocket) -> None:
    first = min(server.items, key=int)
    server.fail_actions[str(int(first) + 3)] = (422, f"no such item {ACCESS_TOKEN}")


def rate_limited(server: FakePocket) -> None:
    server.user_limit, server.reset_seconds = 2, 3600.0
    server.reset_rate_limits()


def no_modify(server: FakePocket) -> None:
    server.permissions.discard("modify")


def reject(server: FakePocket) -> None:
    server.reject_authorization = True


def approve(server: FakePocket) -> None:
    server.auto_approve = True  # as if the user approved at /auth/authorize


CASES = [
    # -- every command, happy path -----------------------------------------------------------
    Case("validate", (s("validate"),), logs_http=False),
    Case("schema", (s("schema"),), logs_http=False),
    Case("sync", (s("sync"),)),
    Case("sync-full", (s("sync"), s("sync", "--full"))),
    Case("plan-out", (s("plan", "--out", "plan.json", "--format", "json"),)),
    Case("run-json", (s("run", "--format", "json"),)),
    Case("apply", (s("plan", "--out", "plan.json"), s("apply", "plan.json", "--format", "json"))),
    Case("schedule", (s("sync"), s("schedule"), s("schedule", "--format", "json"))),
    Case(
        "explain",
        (s("sync"), s("explain", "1000000004"), s("explain", "1000000004", "--format", "json")),
    ),
    Case("test", (s("test"), s("test", "--format", "json")), logs_http=False),
    Case(
        "export",
        (s("sync"), s("export", "out.csv"), s("export", "out.zip"), s("export", "out.html")),
    ),
    Case(
        "import",
        (s("-c", "local.yaml", "import", "lib.csv"), s("-c", "local.yaml", "export", "back.csv")),
        logs_http=False,
    ),
    Case("auth", (s("auth", stdin="\n"),), setup=approve, token_on_stdout=True, logs_http=False),
    # -- failing paths ---------------------------------------------------------------------------
    Case("401-bad-token", (s("run", code=1, env={"POCKET_ACCESS_TOKEN": WRONG_TOKEN}),)),
    Case("403-bad-consumer-key", (s("sync", code=1, env={"POCKET_CONSUMER_KEY": WRONG_KEY}),)),
    Case(
        "403-auth-bad-consumer-key",
        (s("auth", code=1, stdin="\n", env={"POCKET_CONSUMER_KEY": WRONG_KEY}),),
        logs_http=False,
    ),
    Case("auth-rejected", (s("auth", code=1, stdin="\n"),), setup=reject, logs_http=False),
    Case("403-no-permission", (s("run", "--format", "json", code=1),), setup=no_modify),
    Case(
        "503-until-give-up",
        (s("sync", code=1), s("plan", code=1)),
        setup=inject(("503", 12, "/v3/get", {"retry_after": 0})),
    ),
    Case(
        "500-on-send-until-give-up",
        (s("run", code=1),),
        setup=inject(("500", 6, "/v3/send", {"retry_after": 0})),
    ),
    Case(
        "timeouts-then-success",
        (s("run", "--format", "json"),),
        setup=inject(("slow", 2, "/v3/get", {"seconds": 0.5})),
        extra="  timeout: 0.2\n",
    ),
    Case(
        "garbage-answers",
        (s("sync", code=1),),
        setup=inject(("garbage", 2, "/v3/get"), ("html", 1, "/v3/get")),
    ),
    Case(
        "rate-limit-too-long", (s("run", code=1),), setup=rate_limited, extra="  max_rate_wait: 1\n"
    ),
    # The server echoes the token in an action error: rulebot must not repeat it.
    Case(
        "per-action-failure",
        (s("run", "--format", "json", code=1), s("run", code=1)),
        setup=fail_first,
    ),
]


def run_step(step: Step, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**subprocess_env(), **step.env}
    env["GITHUB_STEP_SUMMARY"] = str(cwd / "step-summary.md")
    env["GITHUB_OUTPUT"] = str(cwd / "github-output.txt")
    return subprocess.run(
        [sys.executable, "-m", "rulebot", "-v", "-v", *step.args],
        cwd=cwd,
        env=env,
        input=step.stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def files_under(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_no_command_leaks_the_credentials(
    fake_pocket: FakePocket, tmp_path: Path, case: Case
) -> None:
    populate(fake_pocket, 12)
    write_config(
        fake_pocket, page_size=5, batch_size=3, extra=case.extra, rules=RULES + TESTS_BLOCK
    )
    (tmp_path / "local.yaml").write_text(LOCAL_CONFIG, encoding="utf-8")
    (tmp_path / "lib.csv").write_text(EXPORT_CSV, encoding="utf-8")
    case.setup(fake_pocket)

    outputs: list[tuple[str, str]] = []  # (where, text)
    stdouts: list[str] = []
    for step in case.steps:
        done = run_step(step, tmp_path)
        said = done.stdout + done.stderr
        assert done.returncode == step.code, f"{step.args}: exit {done.returncode}\n{said}"
        assert "Traceback" not in said and "internal error" not in said, said
        outputs += [(f"{step.args} stdout", done.stdout), (f"{step.args} stderr", done.stderr)]
        stdouts.append(done.stdout)

    if case.logs_http:  # -v -v really was on: the HTTP exchanges were logged
        assert any("HTTP " in text for where, text in outputs if where.endswith("stderr"))
    left_behind = files_under(tmp_path)
    assert any(path.name == "rulebot.db" for path in left_behind) or not case.logs_http
    blobs = [(where, text.encode()) for where, text in outputs]
    blobs += [(str(path.relative_to(tmp_path)), path.read_bytes()) for path in left_behind]

    for secret in SECRETS:
        for where, blob in blobs:
            if case.token_on_stdout and secret == ACCESS_TOKEN and where.endswith("stdout"):
                continue
            assert secret.encode() not in blob, f"{secret} found in {where}"
    if case.token_on_stdout:
        assert "".join(stdouts).count(ACCESS_TOKEN) == 1

    requests = fake_pocket.requests
    assert requests or not case.logs_http
    for request in requests:
        for secret in SECRETS:
            assert secret not in request.url
            assert all(secret not in value for value in request.headers.values())
        assert request.method == "POST" and "?" not in request.url
    # ... while the credentials in use did travel, in the JSON bodies only.
    for request in requests:
        assert request.body.get("consumer_key") in (CONSUMER_KEY, WRONG_KEY)
        if "oauth" not in request.path:
            assert request.body.get("access_token") in (ACCESS_TOKEN, WRONG_TOKEN)
        else:
            assert "access_token" not in request.body


# -- a server that echoes the credentials back (#11.1) ------------------------------------------
PADDING = "p" * 190  # cut at 200 before masking, "at-SECRET-" would survive


class EchoingPocket(FakePocket):
    """The fake, made hostile: its answers carry the credentials in every
    shape an ``action_errors`` entry, an ``action_results`` value or an
    ``X-Error`` header can take."""

    echo_results = False

    def _handle(self, method, target, headers, raw_body):
        reply = super()._handle(method, target, headers, raw_body)
        if reply is None:
            return reply
        if reply.status >= 403:
            reply.headers["X-Error"] = PADDING + ACCESS_TOKEN + " " + CONSUMER_KEY
        if reply.status == 200 and target.startswith("/v3/send"):
            answer = json.loads(reply.body)
            results, errors = answer["action_results"], answer.get("action_errors") or []
            shapes = [
                {"message": [PADDING + ACCESS_TOKEN], "type": {"d": CONSUMER_KEY}, "code": [1]},
                [PADDING, ACCESS_TOKEN, {"deep": [[CONSUMER_KEY]]}],
                PADDING + ACCESS_TOKEN,
                {"message": {"text": PADDING + CONSUMER_KEY}, "code": {"x": ACCESS_TOKEN}},
            ]
            for index, result in enumerate(results):
                if result is False:
                    errors[index] = shapes[index % len(shapes)]
                elif self.echo_results and result is True:
                    results[index] = f"{ACCESS_TOKEN}-{CONSUMER_KEY}"  # not a result at all
            answer["action_errors"] = errors
            reply.body = json.dumps(answer).encode()
        return reply


def fail_four(server: FakePocket) -> None:
    first = min(server.items, key=int)
    for offset in (3, 4, 6, 7):
        server.fail_actions[str(int(first) + offset)] = (422, "nope")


ECHO_CASES = {
    "echoed-nested-action-errors": (fail_four, False, (s("run", "--format", "json", code=1),)),
    "echoed-odd-action-results": (lambda server: None, True, (s("run", code=1),)),
    "echoed-x-error-on-503": (
        inject(("503", 12, "/v3/get", {"retry_after": 0})),
        False,
        (s("sync", code=1),),
    ),
    "echoed-x-error-on-403": (no_modify, False, (s("run", code=1),)),
    "echoed-x-error-on-401": (
        lambda server: None,
        False,
        (s("sync", code=1, env={"POCKET_ACCESS_TOKEN": WRONG_TOKEN}),),
    ),
}


@pytest.mark.parametrize("case_id", list(ECHO_CASES))
def test_credentials_a_server_echoes_are_masked_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case_id: str
) -> None:
    """Masked before clipped, at any depth, never via a repr; -v -v prints no
    raw headers or bodies. A piece of a secret counts as a leak."""
    setup, echo_results, steps = ECHO_CASES[case_id]
    use_fake_credentials(tmp_path, monkeypatch)
    with EchoingPocket(consumer_key=CONSUMER_KEY, access_token=ACCESS_TOKEN) as server:
        server.echo_results = echo_results
        populate(server, 12)
        write_config(server, page_size=5, batch_size=3)
        setup(server)
        said = ""
        for step in steps:
            done = run_step(step, tmp_path)
            said += done.stdout + done.stderr
            assert done.returncode == step.code, said
            assert "Traceback" not in said and "internal error" not in said, said
        assert "HTTP 200" in said or "HTTP 503" in said or "HTTP 40" in said  # -v -v was on
        blobs = [("output", said.encode())]
        blobs += [(str(p.relative_to(tmp_path)), p.read_bytes()) for p in files_under(tmp_path)]
        for secret in (ACCESS_TOKEN, CONSUMER_KEY, WRONG_TOKEN):
            for where, blob in blobs:
                assert secret[:10].encode() not in blob, f"{secret[:10]}… found in {where}"
        if echo_results:
            assert "an unexpected value of type str" in said
        if case_id == "echoed-nested-action-errors":
            assert "p" * 50 in said and "nope" not in said  # the echoed errors were shown


# -- secrets echoed in the spelling they were sent in (#23.2) -----------------------------------
# Characters that every encoding spells differently: form (`%40`, `+`, `%26`),
# JSON (`\"`, `\\`, `\u00e9`, PHP's `\/`).
HOSTILE_PASSWORD = 'P@ss w0rd&x=1"\\é/'
WALLABAG_CREDENTIALS = {
    "WALLABAG_CLIENT_ID": "7_cid&é=1 x/y",
    "WALLABAG_CLIENT_SECRET": 'cs "é" &=+ /s3cr3t',
    "WALLABAG_USERNAME": "u s@r&é",
    "WALLABAG_PASSWORD": HOSTILE_PASSWORD,
}
WALLABAG_FIELDS = ("client_id", "client_secret", "username", "password")


def _pieces(spelling: str, size: int = 10) -> set[str]:
    """Every ``size``-character piece of a spelling of a secret: a cut one leaks too."""
    return {spelling[i : i + size] for i in range(max(len(spelling) - size + 1, 1))}


def _everything_said(tmp_path: Path, said: str) -> list[tuple[str, bytes]]:
    blobs = [("output", said.encode())]
    return blobs + [(str(p.relative_to(tmp_path)), p.read_bytes()) for p in files_under(tmp_path)]


@pytest.mark.parametrize("echo", ["form", "form-lower-hex", "json", "json-php"])
def test_wallabag_credentials_echoed_encoded_are_masked_everywhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], echo: str
) -> None:
    """A token endpoint echoing each credential as the request carried it
    (form-encoded) or JSON-escaped, PHP-style too: nothing of it reaches
    stdout, stderr, the step summary or a file."""
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    for name, value in WALLABAG_CREDENTIALS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "step-summary.md"))
    echoed: list[str] = []

    def answer(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        field = WALLABAG_FIELDS[len(echoed) % len(WALLABAG_FIELDS)]
        sent = dict(pair.split("=", 1) for pair in body.decode().split("&"))[field]
        value = WALLABAG_CREDENTIALS[f"WALLABAG_{field.upper()}"]
        if echo.startswith("form"):  # as the body carried it: 400 invalid_grant, described
            spelled = sent
            if echo == "form-lower-hex":  # another server's percent-encoding
                spelled = re.sub("%[0-9A-F]{2}", lambda m: m.group().lower(), sent)
            assert unquote_plus(sent) == value  # the server saw what rulebot sent
            described = json.dumps(
                {"error": "invalid_grant", "error_description": f"{field}={spelled}"}
            )
            echoed.append(spelled)
            return 400, "application/json", described.encode()
        spelled = json.dumps(value)[1:-1]  # Python's escapes: \" \\ \u00e9
        if echo == "json-php":
            spelled = spelled.replace("/", "\\/")
        echoed.append(spelled)
        # not JSON as a whole: shown as text, JSON escapes and all
        return 400, "text/plain", f'refused {{"{field}": "{spelled}"}}'.encode()

    with Answering(answer) as server:
        Path("rules.yaml").write_text(
            f"version: 1\nwallabag: {{base_url: '{server.url}'}}\n"
            "rules:\n  - name: a\n    where: {tag: x}\n    actions: [archive]\n"
        )
        said = ""
        for command in ("run", "sync", "plan", "run"):
            code, out, err = rb(capsys, "-v", "-v", command)
            said += out + err
            assert code == 1 and "Traceback" not in err and "internal error" not in err, err
    assert len(echoed) == 4 and "<hidden>" in said  # each credential echoed once, and shown masked
    for where, blob in _everything_said(tmp_path, said):
        text = blob.decode(errors="replace")
        for spelled in echoed:
            leaked = [piece for piece in _pieces(spelled) if piece in text]
            assert not leaked, f"{spelled!r}: {leaked[:3]} in {where}"
    summary = (tmp_path / "step-summary.md").read_text()
    assert "rulebot run: ❌ error" in summary


SHAARLI_LINK = {
    "id": 0,
    "url": "https://a.example/x",
    "shorturl": "abcDEF",
    "title": "X",
    "description": "",
    "tags": ["x"],
    "private": False,
    "created": "2026-01-01T00:00:00+00:00",
    "updated": "",
}


def test_shaarli_tokens_a_server_echoes_are_masked_in_outputs_and_the_journal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """rulebot signs a JWT per request; it is a credential for 9 minutes. A
    server echoing it (whole, and its signature alone) in an action's error
    finds it masked on stdout, stderr, in the step summary, the result and
    the journal."""
    monkeypatch.chdir(tmp_path)
    clear_rulebot_env(monkeypatch)
    monkeypatch.setenv("SHAARLI_API_SECRET", "shaarli-secret-0123456789")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "step-summary.md"))
    tokens: list[str] = []

    def answer(
        method: str, path: str, headers: dict[str, str], body: bytes
    ) -> tuple[int, str, bytes]:
        token = headers["Authorization"].removeprefix("Bearer ")
        tokens.append(token)
        signature = token.rsplit(".", 1)[-1]
        if method == "GET" and path.startswith("/api/v1/links?"):
            return 200, "application/json", json.dumps([SHAARLI_LINK]).encode()
        # Shaarli's errors are bare JSON strings
        echo = json.dumps(f"bad token {token}; signature {signature}")
        return 400, "application/json", echo.encode()

    with Answering(answer) as server:
        Path("rules.yaml").write_text(
            f"version: 1\nshaarli: {{base_url: '{server.url}'}}\n"
            "rules:\n  - name: a\n    where: {tag: x}\n    actions: [{tags_add: [seen]}]\n"
        )
        code, out, err = rb(capsys, "-v", "-v", "run", "--format", "json")
        said = out + err
        assert code == 1, said
        assert "<hidden>" in json.dumps(json.loads(out))  # the failure was shown, masked
        code, text_out, text_err = rb(capsys, "-v", "-v", "run")
        said += text_out + text_err
        assert code == 1, said
    assert "Traceback" not in said and "internal error" not in said, said
    assert len(tokens) >= 4
    with closing(sqlite3.connect(tmp_path / ".rulebot" / "rulebot.db")) as journal:
        errors = [row[0] for row in journal.execute("SELECT error FROM run_actions")]
    assert errors and all("<hidden>" in error for error in errors), errors
    for where, blob in _everything_said(tmp_path, said):
        text = blob.decode(errors="replace")
        for token in tokens:
            signature = token.rsplit(".", 1)[-1]
            assert token not in text and signature[:16] not in text, f"a token in {where}"
