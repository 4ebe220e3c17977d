"""A stand-in for the GitHub CLI (`gh`) that answers from fixtures, for
running the CI recipe's shell steps as GitHub runs them.

It knows only the calls the recipe makes, and answers them the way `gh`
does: `--jq` filters through the real `jq` (raw strings, as `gh` prints
them; `$ENV` works), `run list` filters and orders runs as GitHub's API
does, `run download --name` unpacks one artifact's files into `--dir`.
Like `gh`, it wants a token (GH_TOKEN) and, outside a git checkout, the
repository in GH_REPO. Any other call fails loudly, so a changed recipe
cannot pass by accident.

Fixtures, in the directory named by FAKE_GH:

- ``api.json``: ``{"repos/OWNER/NAME/commits/SHA/pulls": <the answer>, ...}``
- ``runs.json``: the repository's workflow runs, newest first, each with the
  fields ``gh run list --json`` knows (databaseId, headSha, event, status,
  conclusion, workflowName) and ``path`` (the workflow file)
- ``artifacts/RUN_ID/NAME/``: the files of the artifact NAME of run RUN_ID

Each call is appended to ``calls.jsonl`` there (argv as a JSON list).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, NoReturn

RUN_FIELDS = {"databaseId", "headSha", "event", "status", "conclusion", "workflowName"}
CONCLUSIONS = {"success", "failure", "cancelled", "skipped", "timed_out", "neutral"}


def fail(message: str, code: int = 1) -> NoReturn:
    print(message, file=sys.stderr)
    sys.exit(code)


def options(args: list[str], known: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    """Positional arguments and ``--flag value`` pairs (``known``: short -> long)."""
    positional: list[str] = []
    found: dict[str, str] = {}
    rest = iter(args)
    for arg in rest:
        if arg.startswith("-"):
            name = known.get(arg, arg)
            if name not in known.values():
                fail(f"unknown flag: {arg}\n\nUsage: gh ...", 1)
            value = next(rest, None)
            if value is None:
                fail(f"flag needs an argument: {arg}", 1)
            found[name] = value
        else:
            positional.append(arg)
    return positional, found


def jq(document: Any, program: str | None) -> None:
    """Print ``document`` as gh does: through ``--jq`` (raw strings) or as JSON."""
    text = json.dumps(document)
    if program is None:
        print(text)
        return
    done = subprocess.run(
        ["jq", "-r", program], input=text, capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        fail(f"failed to parse jq expression: {done.stderr.strip()}", 1)
    sys.stdout.write(done.stdout)


def repo() -> str:
    name = os.environ.get("GH_REPO", "")
    if not name:
        fail("failed to run git: fatal: not a git repository (or any of the parent directories)")
    return name


def api(fixtures: Path, args: list[str]) -> None:
    (endpoint,), flags = options(args, {"-q": "--jq"})
    answers = json.loads((fixtures / "api.json").read_text(encoding="utf-8"))
    if endpoint not in answers:
        fail(f"gh: Not Found (HTTP 404) for {endpoint}", 1)
    jq(answers[endpoint], flags.get("--jq"))


def run_list(fixtures: Path, args: list[str]) -> None:
    known = {
        "-w": "--workflow",
        "-c": "--commit",
        "-e": "--event",
        "-s": "--status",
        "-L": "--limit",
        "-q": "--jq",
        "--json": "--json",
        "-b": "--branch",
    }
    positional, flags = options(args, known)
    if positional:
        fail(f"unknown arguments {positional}", 1)
    repo()
    runs: list[dict[str, Any]] = json.loads((fixtures / "runs.json").read_text(encoding="utf-8"))
    if workflow := flags.get("--workflow"):
        runs = [r for r in runs if workflow in (Path(r["path"]).name, r["workflowName"])]
        if not runs:
            fail(f"could not find any workflows named {workflow}", 1)
    if commit := flags.get("--commit"):
        runs = [r for r in runs if r["headSha"] == commit]
    if event := flags.get("--event"):
        runs = [r for r in runs if r["event"] == event]
    if status := flags.get("--status"):
        # GitHub's `status` filter takes a status or a conclusion
        key = "conclusion" if status in CONCLUSIONS else "status"
        runs = [r for r in runs if r.get(key) == status]
    runs = runs[: int(flags.get("--limit", "20"))]
    if "--json" not in flags:
        fail("the fake answers `run list` only with --json", 1)
    fields = flags["--json"].split(",")
    if unknown := set(fields) - RUN_FIELDS:
        fail(f"Unknown JSON field: {sorted(unknown)}", 1)
    jq([{field: run.get(field) for field in fields} for run in runs], flags.get("--jq"))


def run_download(fixtures: Path, args: list[str]) -> None:
    (run_id,), flags = options(args, {"-n": "--name", "-D": "--dir"})
    repo()
    source = fixtures / "artifacts" / run_id / flags["--name"]
    if not source.is_dir():
        fail("no artifact matches any of the names or patterns provided", 1)
    target = Path(flags.get("--dir", "."))
    target.mkdir(parents=True, exist_ok=True)
    for path in source.iterdir():
        shutil.copy(path, target / path.name)


def main(argv: list[str]) -> None:
    fixtures = Path(os.environ["FAKE_GH"])
    with open(fixtures / "calls.jsonl", "a", encoding="utf-8") as log:
        log.write(json.dumps(argv) + "\n")
    if not (os.environ.get("GH_TOKEN") or os.environ.get("GITHUB_TOKEN")):
        fail(
            "To get started with GitHub CLI, please run:  gh auth login\n"
            "Alternatively, populate the GH_TOKEN environment variable with a GitHub API "
            "authentication token.",
            4,
        )
    match argv:
        case ["api", *rest]:
            api(fixtures, rest)
        case ["run", "list", *rest]:
            run_list(fixtures, rest)
        case ["run", "download", *rest]:
            run_download(fixtures, rest)
        case _:
            fail(f"fake gh: no fixture for `gh {' '.join(argv)}`", 2)


if __name__ == "__main__":
    main(sys.argv[1:])
