"""The fakes' network: a round trip per request that concurrent requests
wait together (the server is threaded and waits outside its lock), one more
on a new connection, and a bandwidth cap shared by every connection."""

from __future__ import annotations

import http.client
import threading
import time

import pytest

from rulebot.fake.base import FakeServer, Reply, Request
from rulebot.fake.cli import add_seed_and_latency, bandwidth, new_parser, use_network

RTT = 0.25  # seconds: large next to a loaded machine's scheduling noise


class Echo(FakeServer):
    """Answers every request with ``size`` bytes."""

    name = "echo"
    size = 10

    def _answer(self, request: Request, fault: object) -> Reply:
        return Reply(200, b"x" * self.size, {"Content-Type": "text/plain"})


def timed_gets(server: FakeServer, connections: list[http.client.HTTPConnection]) -> float:
    """Seconds until one GET on each connection, all sent together, is answered."""
    errors: list[BaseException] = []

    def get(conn: http.client.HTTPConnection) -> None:
        try:
            conn.request("GET", "/x")
            answer = conn.getresponse()
            assert answer.status == 200
            answer.read()
        except BaseException as err:  # reported by the main thread
            errors.append(err)

    threads = [threading.Thread(target=get, args=(conn,)) for conn in connections]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    return time.perf_counter() - started


def opened(server: FakeServer, n: int) -> list[http.client.HTTPConnection]:
    return [http.client.HTTPConnection(server.host, server.port, timeout=30) for _ in range(n)]


def test_concurrent_requests_wait_one_round_trip_not_one_each() -> None:
    with Echo() as server:
        connections = opened(server, 8)
        timed_gets(server, connections)  # connections open, handshakes paid
        server.rtt = RTT
        elapsed = timed_gets(server, connections)
        assert elapsed >= RTT
        assert elapsed < 3 * RTT, f"8 requests took {elapsed:.2f} s: serialised?"  # 8 RTT if so
        assert server.calls() == 16


def test_a_new_connection_pays_one_more_round_trip() -> None:
    with Echo() as server:
        server.rtt = RTT
        (conn,) = opened(server, 1)
        first = timed_gets(server, [conn])
        again = timed_gets(server, [conn])
        assert first >= 2 * RTT
        assert RTT <= again < 2 * RTT


def test_bandwidth_is_one_link_shared_by_every_connection() -> None:
    with Echo() as server:
        connections = opened(server, 4)
        timed_gets(server, connections)
        server.size = 100_000
        server.bandwidth = 1_000_000  # 0.1 s an answer; 4 together: 0.4 s
        shared = timed_gets(server, connections)
        alone = timed_gets(server, connections[:1])
        assert alone >= 0.1
        assert shared >= 0.4


def test_the_request_body_goes_up_the_link_too() -> None:
    with Echo() as server:
        (conn,) = opened(server, 1)
        timed_gets(server, [conn])
        server.bandwidth = 1_000_000
        started = time.perf_counter()
        conn.request("POST", "/x", body=b"y" * 300_000)
        conn.getresponse().read()
        assert time.perf_counter() - started >= 0.3


@pytest.mark.parametrize(
    ("text", "rate"),
    [("1MiB", 1024**2), ("500k", 500_000), ("20000", 20_000), ("1.5M/s", 1_500_000)],
)
def test_bandwidth_option_reads_units(text: str, rate: float) -> None:
    assert bandwidth(text) == rate


@pytest.mark.parametrize("text", ["0", "fast", "1Mb", "-5", "1 TiB"])
def test_bandwidth_option_refuses_what_is_not_a_rate(text: str) -> None:
    parser = new_parser("echo", "test", port=0)
    add_seed_and_latency(parser, "items")
    with pytest.raises(SystemExit):
        parser.parse_args(["--bandwidth", text])


def test_rtt_and_bandwidth_options_reach_the_server() -> None:
    parser = new_parser("echo", "test", port=0)
    add_seed_and_latency(parser, "items")
    args = parser.parse_args(["--rtt", "50", "--bandwidth", "1MiB", "--latency", "0.5"])
    server = use_network(Echo(latency=args.latency), args)
    assert (server.rtt, server.bandwidth, server.latency) == (0.05, 1024**2, 0.5)
