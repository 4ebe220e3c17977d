"""The same jobs done without rulebot: the `pocket` PyPI client, the way a user would.

Not a rulebot module and not a project dependency: it runs in its own venv
(``benchmarks/bench_vs_pocket_client.py`` starts it there), with
``pip install pocket`` (the 0.3.x client on PyPI, built on ``requests``).
Every run fetches the whole list (``/v3/get`` pages of ``--page-size``,
``state=all``, ``detailType=complete``, until an empty page: the server caps
a page, so a script must page) and decides what to do from that. Actions go
either in one ``commit()`` of the client's bulk queue, the client's idiomatic
way, or one ``/v3/send`` per action (``archive(item_id, wait=False)``).

The client's endpoints are a module-level class dict pointing at
getpocket.com; it has no base-URL setting, so the script rewrites that dict.

    /tmp/bench-venv/bin/python benchmarks/plain_pocket_client.py BASE_URL JOB
        [--actions 100] [--page-size 30] [--per-action]

JOB: ``fetch`` (the full sync and the idle run: fetch everything, act on
nothing) or ``archive`` (fetch everything, archive the oldest ``--actions``
unread items). Credentials come from POCKET_CONSUMER_KEY and
POCKET_ACCESS_TOKEN. Prints one JSON line: ``{"items", "actions", "seconds"}``.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import pocket  # the PyPI client, installed in the benchmark's own venv


def fetch_all(client: pocket.Pocket, page_size: int) -> dict[str, dict]:
    items: dict[str, dict] = {}
    offset = 0
    while True:
        answer, _headers = client.get(
            state="all", detailType="complete", sort="oldest", count=page_size, offset=offset
        )
        page = answer.get("list") or {}
        if not page:
            return items
        items.update(page)
        offset += len(page)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base_url")
    parser.add_argument("job", choices=("fetch", "archive"))
    parser.add_argument("--actions", type=int, default=100)
    parser.add_argument("--page-size", type=int, default=30)
    parser.add_argument("--per-action", action="store_true", help="one /v3/send per action")
    args = parser.parse_args()

    for name in ("add", "send", "get"):
        pocket.Pocket.api_endpoints[name] = f"{args.base_url.rstrip('/')}/v3/{name}"
    client = pocket.Pocket(os.environ["POCKET_CONSUMER_KEY"], os.environ["POCKET_ACCESS_TOKEN"])

    started = time.perf_counter()
    items = fetch_all(client, args.page_size)
    chosen: list[str] = []
    if args.job == "archive":
        unread = [i for i in items.values() if i.get("status") == "0"]
        unread.sort(key=lambda i: (int(i["time_added"]), int(i["item_id"])))
        chosen = [i["item_id"] for i in unread[: args.actions]]
        for item_id in chosen:
            if args.per_action:
                client.archive(item_id, wait=False)
            else:
                client.archive(item_id)
        if chosen and not args.per_action:
            client.commit()
    seconds = time.perf_counter() - started
    print(json.dumps({"items": len(items), "actions": len(chosen), "seconds": seconds}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
