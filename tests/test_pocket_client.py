"""PocketClient against the fake Pocket server over real sockets.

``sleep`` is injected (recorded, not slept) except in the rate-limit refill
tests, which really wait for a 1 s reset.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from rulebot.errors import AuthError, PocketError, RateLimitError
from rulebot.fakepocket import FakePocket
from rulebot.library.item import Item
from rulebot.sources.pocket.api import BadRequestError, PocketClient, SendResponse

NOW = 1_700_000_000


@pytest.fixture
def server() -> Iterator[FakePocket]:
    with FakePocket(now=NOW) as fake:
        yield fake


@pytest.fixture
def sleeps() -> list[float]:
    return []


@pytest.fixture
def waits() -> list[str]:
    return []


def make_client(server: FakePocket, sleeps: list[float], **kw: Any) -> PocketClient:
    options: dict[str, Any] = {
        "timeout": 2.0,
        "max_retries": 3,
        "backoff_base": 0.01,
        "sleep": sleeps.append,
    }
    options.update(kw)
    consumer_key = options.pop("consumer_key", server.consumer_key)
    access_token = options.pop("access_token", server.access_token)
    return PocketClient(server.base_url, consumer_key, access_token, **options)


@pytest.fixture
def client(server, sleeps, waits) -> Iterator[PocketClient]:
    with make_client(server, sleeps, on_wait=waits.append) as pocket:
        yield pocket


def secrets_of(server: FakePocket) -> tuple[str, str]:
    return server.consumer_key, server.access_token


# -- /v3/get -----------------------------------------------------------------------------


def test_get_normalises_an_empty_list_to_a_dict(client):
    answer = client.get(state="all")
    assert answer["list"] == {} and answer["status"] == 2
    assert isinstance(answer["since"], int)


def test_get_returns_entries_item_from_pocket_reads(server, client):
    item_id = server.add_item(url="https://example.com/a", title="A", tags=["js"], word_count=9)
    answer = client.get(state="all", detailType="complete")
    item = Item.from_pocket(answer["list"][item_id])
    assert item.tags == ("js",) and item.word_count == 9 and item.title == "A"
    simple = client.get(state="all", detailType="simple")["list"][item_id]
    assert Item.from_pocket(simple, tags_known=False).tags is None


def test_paging_with_short_pages_reaches_every_item(sleeps):
    with FakePocket(now=NOW, max_page=4) as server, make_client(server, sleeps) as client:
        made = {server.add_item() for _ in range(10)}
        seen: dict[str, Any] = {}
        while True:  # the loop sync will use: advance by what came back, stop when empty
            page = client.get(state="all", detailType="complete", count=30, offset=len(seen))
            if not page["list"]:
                break
            seen.update(page["list"])
        assert set(seen) == made
        assert client.requests_made == 4  # 4 + 4 + 2 + the empty page


def test_since_sees_deleted_stubs(server, client):
    kept, doomed = server.add_item(), server.add_item()
    cursor = client.get(state="all")["since"]
    client.send([{"action": "delete", "item_id": doomed}])
    changes = client.get(state="all", detailType="complete", since=cursor)["list"]
    assert set(changes) == {doomed}
    assert Item.from_pocket(changes[doomed]).is_deleted
    assert kept in client.get(state="all")["list"]


@pytest.mark.parametrize(
    ("answer", "complaint"),
    [
        ({"status": 1, "list": "oops"}, "'list' is a str"),
        ({"status": 1, "list": {"1": "x"}}, "entry '1'"),
        ({"status": 7, "list": {}}, "'status' is 7"),
        ({"status": 1}, "no 'list'"),
        (["not", "an", "object"], "JSON list"),
    ],
)
def test_get_rejects_wrong_shapes_without_retrying(server, client, answer, complaint):
    server.inject("answer", answer=answer)
    with pytest.raises(PocketError, match="/v3/get") as caught:
        client.get()
    assert complaint in str(caught.value)
    assert server.calls() == 1


# -- /v3/send ------------------------------------------------------------------------------


def test_send_maps_results_by_index(server, client):
    item_id = server.add_item()
    actions = [
        {"action": "archive", "item_id": item_id},
        {"action": "favorite", "item_id": "123"},  # no such item
        {"action": "add", "url": "https://example.com/new"},
    ]
    response = client.send(actions)
    assert isinstance(response, SendResponse)
    assert response.http_status == 200 and response.status == 1
    assert response.action_results[:2] == [True, False]
    assert response.action_errors[1]["code"] == 422
    assert response.action_errors[0] is None
    assert response.action_results[2]["given_url"] == "https://example.com/new"
    assert [response.succeeded(i) for i in range(3)] == [True, False, True]
    assert server.item(item_id)["status"] == "1"


def test_send_nothing_makes_no_request(server, client):
    assert client.send([]) == SendResponse(200, 1, [], [])
    assert server.calls() == 0


def test_whole_batch_400_is_bad_request_and_not_retried(server, client):
    item_id = server.add_item()
    actions = [{"action": "archive", "item_id": item_id}, {"action": "archive", "item_id": "x"}]
    with pytest.raises(BadRequestError) as caught:
        client.send(actions)
    assert caught.value.endpoint == "/v3/send"
    assert caught.value.error_code == "130"
    assert "item_id" in caught.value.error_text
    assert "400" in str(caught.value)
    assert server.calls() == 1
    assert server.item(item_id)["status"] == "0"


def test_send_with_too_few_results_is_an_error(server, client):
    server.inject("answer", answer={"status": 1, "action_results": [True], "action_errors": []})
    with pytest.raises(PocketError, match=r"/v3/send: .*1 entries for 2 actions"):
        client.send([{"action": "archive", "item_id": "1"}, {"action": "archive", "item_id": "2"}])


def test_send_accepts_a_server_without_action_errors(server, client):
    server.inject("answer", answer={"status": 1, "action_results": [True]})
    assert client.send([{"action": "archive", "item_id": "1"}]).action_errors == [None]


def test_add_returns_the_item_and_dedupes(server, client):
    item = client.add("https://example.com/x", title="X", tags=["a", "b"])
    assert item["title"] == "X"  # the add shape: no tags, `title` not `given_title`
    assert set(server.item(item["item_id"])["tags"]) == {"a", "b"}
    assert client.add("https://example.com/x")["item_id"] == item["item_id"]
    assert len(server.items) == 1


# -- retries -------------------------------------------------------------------------------


@pytest.mark.parametrize("fault", ["503", "500", "drop", "garbage", "html"])
def test_transient_faults_are_retried_to_success(server, client, sleeps, waits, fault):
    server.add_item()
    server.inject(fault, count=2)
    assert len(client.get(state="all")["list"]) == 1
    assert server.calls() == 3 and client.requests_made == 3
    assert len(sleeps) == 2 and all(0 <= s <= 0.02 for s in sleeps)  # jittered backoff
    assert waits == []  # retries are logged at info; only rate-limit waits are shown


def test_backoff_grows_exponentially_with_full_jitter(server, sleeps):
    server.inject("503", count=5)
    with make_client(server, sleeps, backoff_base=1.0, max_retries=5) as client:
        client.get()
    ceilings = [1, 2, 4, 8, 16]
    assert all(0 <= s <= c for s, c in zip(sleeps, ceilings, strict=True))


def test_retry_after_is_honoured(server, client, sleeps):
    server.inject("503", count=1, retry_after=3)
    client.get()
    assert sleeps == [3.0]


def test_retry_after_beyond_max_rate_wait_gives_up(server, sleeps):
    server.inject("503", retry_after=600)
    with (
        make_client(server, sleeps, max_rate_wait=60) as client,
        pytest.raises(PocketError, match="retry after 600 s"),
    ):
        client.get()
    assert sleeps == []


def test_503_gives_up_after_max_retries(server, client):
    server.inject("503", count=10)
    with pytest.raises(PocketError) as caught:
        client.get()
    message = str(caught.value)
    assert message.startswith("/v3/get: server answered 503 (maintenance, X-Error-Code 199")
    assert message.endswith("4 times; giving up")
    assert server.calls() == 4  # 1 + max_retries


def test_drop_gives_up(server, client):
    server.inject("drop", count=10)
    with pytest.raises(
        PocketError,
        match=r"/v3/send: connection to http://127.0.0.1:\d+ failed .* 4 times; giving up",
    ):
        client.send([{"action": "archive", "item_id": "1"}])


def test_send_whose_answer_was_lost_is_resent_safely(server, client):
    item_id, doomed = server.add_item(tags=["a"]), server.add_item()
    actions = [
        {"action": "archive", "item_id": item_id},
        {"action": "tags_add", "item_id": item_id, "tags": "b"},
        {"action": "add", "url": "https://example.com/new"},
        {"action": "delete", "item_id": doomed},
    ]
    server.inject("drop_after")  # the server did the work, the answer never came
    response = client.send(actions)
    assert server.calls("/v3/send") == 2
    assert [response.succeeded(i) for i in range(4)] == [True, True, True, True]
    assert server.item(item_id)["status"] == "1"
    assert list(server.item(item_id)["tags"]) == ["a", "b"]
    assert len(server.items) == 3  # the URL was not saved twice


def test_resent_batch_reports_actions_on_items_it_deleted_as_failed(server, client):
    # The caveat of re-sending: the first (lost) attempt already deleted the
    # item, so the resent archive of it fails with 422. Senders must check.
    item_id = server.add_item()
    server.inject("drop_after")
    actions = [{"action": "archive", "item_id": item_id}, {"action": "delete", "item_id": item_id}]
    response = client.send(actions)
    assert response.action_results == [False, True]
    assert response.action_errors[0]["code"] == 422


def test_timeout_is_retried_then_succeeds_and_gives_up(server, sleeps):
    with make_client(server, sleeps, timeout=0.25, max_retries=1) as client:
        server.inject("slow", seconds=1)
        assert client.get()["status"] == 2
        assert server.calls() == 2
        server.inject("slow", count=2, seconds=1)
        with pytest.raises(
            PocketError, match=r"no complete answer within 0.25 s \(timeout\) 2 times"
        ):
            client.get()


def test_garbage_200_fails_after_a_couple_of_retries(server, client):
    server.inject("html", count=10)
    with pytest.raises(PocketError, match=r"not JSON.*does not look like a Pocket v3 server"):
        client.get()
    assert server.calls() == 3


def test_mixed_failures_name_the_last_one(server, client):
    server.inject("500", count=2)
    server.inject("drop", count=2)
    with pytest.raises(
        PocketError, match=r"failed 4 times \(last: connection to http://127.0.0.1:\d+ failed"
    ):
        client.get()


# -- auth and permissions ----------------------------------------------------------------------


def test_401_is_not_retried(server, sleeps):
    with (
        make_client(server, sleeps, access_token="stale-token-value") as client,
        pytest.raises(AuthError) as caught,
    ):
        client.get()
    message = str(caught.value)
    assert "the access token was rejected (401, X-Error-Code 107" in message
    assert "set POCKET_ACCESS_TOKEN to a valid token; run `rulebot auth`" in message
    assert "stale-token-value" not in message
    assert server.calls() == 1 and sleeps == []


def test_403_invalid_consumer_key(server, sleeps):
    with (
        make_client(server, sleeps, consumer_key="wrong-key-value") as client,
        pytest.raises(AuthError, match="POCKET_CONSUMER_KEY") as caught,
    ):
        client.get()
    assert "152" in str(caught.value) and "wrong-key-value" not in str(caught.value)
    assert server.calls() == 1


def test_403_permission_is_auth_error_not_rate_limit(server, client, sleeps):
    server.permissions.discard("modify")
    with pytest.raises(AuthError, match="permission") as caught:
        client.send([{"action": "archive", "item_id": "1"}])
    assert not isinstance(caught.value, RateLimitError)
    assert server.calls() == 1 and sleeps == []
    client.get()  # reading still works


# -- rate limits -------------------------------------------------------------------------------


def test_rate_limit_403_waits_for_reset_and_retries(waits):
    with FakePocket(now=NOW, user_limit=2, reset_seconds=1) as server:
        other = PocketClient(server.base_url, *secrets_of(server))
        client = PocketClient(server.base_url, *secrets_of(server), on_wait=waits.append)
        client.get()  # remaining 1: no reason to wait
        other.get()  # another process spends the rest behind our back
        started = time.monotonic()
        assert client.get()["status"] == 2  # 403 -> wait ~1 s -> retry
        assert time.monotonic() - started >= 0.9
        assert waits == ["rate limit reached; waiting 1 s for reset"]
        assert server.calls() == 4
        other.close()
        client.close()


def test_spent_budget_is_waited_out_before_the_next_call(waits):
    with FakePocket(now=NOW, user_limit=1, reset_seconds=1) as server:
        with PocketClient(server.base_url, *secrets_of(server), on_wait=waits.append) as client:
            client.get()  # answer says remaining 0
            assert client.rate_limits.user_remaining == 0
            client.get()  # waits first, so the server never says 403
        assert server.calls() == 2
        assert len(waits) == 1 and waits[0].startswith("rate limit reached; waiting")


def test_rate_limit_reset_too_far_raises_rate_limit_error(sleeps):
    with FakePocket(now=NOW, user_limit=1, reset_seconds=3600) as server:
        other = PocketClient(server.base_url, *secrets_of(server))
        other.get()
        with make_client(server, sleeps, max_rate_wait=60) as client:
            with pytest.raises(RateLimitError) as caught:
                client.get()
            assert "resets in 3600 s" in str(caught.value)
            assert "max_rate_wait" in str(caught.value)
            assert server.calls() == 2  # one 403, no retry
            with pytest.raises(RateLimitError):  # now known in advance: nothing is sent
                client.get()
            assert server.calls() == 2
        assert sleeps == []
        other.close()


def test_key_rate_limit_is_recognised(sleeps):
    with FakePocket(now=NOW, key_limit=1, reset_seconds=3600) as server:
        with PocketClient(server.base_url, *secrets_of(server)) as other:
            other.get()
        with (
            make_client(server, sleeps, max_rate_wait=10) as client,
            pytest.raises(RateLimitError, match="consumer-key budget"),
        ):
            client.get()


# -- secrets ---------------------------------------------------------------------------------


def test_credentials_never_leak(server, sleeps, caplog):
    caplog.set_level(logging.DEBUG)
    key, token = secrets_of(server)
    client = make_client(server, sleeps, max_retries=1, timeout=0.25)
    errors: list[Exception] = []
    item_id = server.add_item()
    client.get(state="all")
    client.send([{"action": "archive", "item_id": item_id}])
    client.add("https://example.com/z")
    for fault in ("503", "drop", "garbage", "slow", "400"):
        server.inject(fault, count=5, seconds=1)
        try:
            client.get()
        except PocketError as err:
            errors.append(err)
        server.clear_faults()
    server.inject("answer", answer={"status": 0, "list": {}, "error": f"bad token {token}"})
    with pytest.raises(PocketError, match="bad token <hidden>") as echoed:
        client.get()  # a server that echoes a secret back does not leak it either
    errors.append(echoed.value)
    server.permissions.discard("modify")
    bad_token = make_client(server, sleeps, access_token=token + "x")
    bad_key = make_client(server, sleeps, consumer_key=key + "x")
    for call in (
        lambda: client.send([{"action": "archive", "item_id": "1"}]),
        bad_token.get,
        bad_key.get,
    ):
        with pytest.raises(PocketError) as caught:
            call()
        errors.append(caught.value)
    assert len(errors) == 9
    texts = [repr(client), repr(bad_token), repr(bad_key)]
    for error in errors:
        texts += [str(error), repr(error), "".join(traceback.format_exception(error))]
        chained = error.__cause__ or error.__context__
        while chained is not None:  # no httpx error (whose .request has the body) kept
            assert not isinstance(chained, httpx.HTTPError), repr(chained)
            chained = chained.__cause__ or chained.__context__
    texts += [record.getMessage() for record in caplog.records]
    assert caplog.records, "expected log records to check"
    for text in texts:
        assert key not in text and token not in text, text
    for request in server.requests:
        assert key not in request.url and token not in request.url
        assert request.headers["content-type"] == "application/json; charset=UTF-8"
        assert request.headers["x-accept"] == "application/json"
    assert server.requests[0].body["consumer_key"] == key  # in the body, where it belongs
    for pocket in (client, bad_token, bad_key):
        pocket.close()


def test_repr_hides_credentials(server, client):
    text = repr(client)
    assert server.base_url in text
    assert server.consumer_key not in text and server.access_token not in text


def test_from_env_names_the_variable_never_the_value(server, monkeypatch):
    monkeypatch.setenv("POCKET_CONSUMER_KEY", "secret-consumer-value")
    monkeypatch.delenv("POCKET_ACCESS_TOKEN", raising=False)
    with pytest.raises(AuthError) as caught:
        PocketClient.from_env(server.base_url)
    assert "POCKET_ACCESS_TOKEN is not set" in str(caught.value)
    assert "secret-consumer-value" not in str(caught.value)
    monkeypatch.setenv("MY_KEY", server.consumer_key)
    monkeypatch.setenv("MY_TOKEN", server.access_token)
    with PocketClient.from_env(server.base_url, "MY_KEY", "MY_TOKEN") as client:
        assert client.get()["status"] == 2
    with PocketClient.from_env(server.base_url, "MY_KEY", "MY_TOKEN") as client:
        client._access_token = "wrong"
        with pytest.raises(AuthError, match="set MY_TOKEN"):
            client.get()


def test_base_url_must_be_http_without_credentials():
    with pytest.raises(PocketError, match="not an http"):
        PocketClient("getpocket.com", "k", "t")
    for leaky in ("https://getpocket.com/?access_token=s3cret", "user:s3cret@getpocket.com"):
        with pytest.raises(PocketError, match="must not carry") as caught:
            PocketClient(leaky, "k", "t")
        assert "s3cret" not in str(caught.value)


# -- OAuth -------------------------------------------------------------------------------------


def test_oauth_happy_path(server, sleeps):
    with make_client(server, sleeps, access_token="") as client:
        code = client.oauth_request("https://localhost/cb")
        server.approve(code)  # the user approved at /auth/authorize
        granted = client.oauth_authorize(code)
    assert granted.access_token == server.access_token
    assert granted.username == "fakeuser"
    assert server.access_token not in repr(granted)
    assert all("access_token" not in r.body for r in server.requests)


def test_oauth_errors(server, client):
    code = client.oauth_request("https://localhost/cb")
    server.approve(code)
    client.oauth_authorize(code)
    with pytest.raises(AuthError, match="already used"):
        client.oauth_authorize(code)
    with pytest.raises(BadRequestError) as caught:
        client.oauth_authorize("unknown-code")
    assert caught.value.error_code == "185"
    with pytest.raises(BadRequestError, match="140"):
        client.oauth_request("")
    server.reject_authorization = True
    with pytest.raises(AuthError, match="did not approve"):
        client.oauth_authorize(client.oauth_request("https://localhost/cb"))
