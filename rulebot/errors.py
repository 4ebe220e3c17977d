"""User-facing errors.

Every failure a user can cause (bad config, broken export, a misbehaving
server, a held lock) is raised as a ``RulebotError`` whose message is one
clear paragraph. ``cli.main`` prints it and exits with ``exit_code``; nothing
below the CLI prints or exits.
"""

from __future__ import annotations


class RulebotError(Exception):
    """An error meant for the user: the message says what and where."""

    exit_code = 1


class ConfigError(RulebotError):
    """The config file is invalid; ``problems`` holds every finding."""

    def __init__(self, problems: list) -> None:  # list[config.Problem]
        self.problems = problems
        super().__init__(self.describe(problems))

    @staticmethod
    def describe(problems: list) -> str:
        """Every problem, one a line, as `validate` shows them: fix them all in one go."""
        if not problems:
            return "invalid config"
        if len(problems) == 1:
            return str(problems[0])
        lines = "\n".join(str(problem) for problem in problems)
        return f"the config has {len(problems)} problems:\n{lines}"


class ItemDataError(RulebotError):
    """An item from a server or an export carries a value we cannot read."""


class ExportFormatError(RulebotError):
    """A Pocket export file is broken; nothing was imported."""


class StoreError(RulebotError):
    """The SQLite store cannot be opened, migrated or written."""


class LockHeldError(StoreError):
    """Another rulebot process holds the store."""


class LimitExceededError(RulebotError):
    """A safety limit refused the run; nothing was sent."""

    exit_code = 3


class CredentialsError(RulebotError):
    """A server refused the credentials: never retried, and the run stops
    (the message names the environment variables, never their values)."""


class ServerUnreachable(RulebotError):
    """No answer came from the server at all: nothing listens on its port, a
    TLS or host-name mistake (never retried), or every attempt dropped or timed
    out. Appliers stop a run after a few in a row (``origin`` names the server)
    rather than trying every remaining action against a dead server."""

    origin = ""


def stopped_run(
    last: ServerUnreachable, in_a_row: int, states: list[str], unsent: int
) -> ServerUnreachable:
    """The one message of a run an applier stopped because its server stopped
    answering: which server, why, and what is left for the next run.
    ``states``: every planned action's outcome so far."""
    server = last.origin or "the server"
    requests = "a request" if in_a_row == 1 else f"{in_a_row} requests in a row"
    error = ServerUnreachable(
        f"stopped: {server} did not answer {requests} (last: {last}); "
        f"{states.count('succeeded')} of {len(states)} actions done, "
        f"{states.count('failed')} failed, {unsent} not sent. Once the server is back, "
        "the next run plans again what did not land (nothing is applied twice)"
    )
    error.origin = last.origin
    return error


class PocketError(RulebotError):
    """The Pocket server failed or answered something we cannot use."""


class AuthError(PocketError, CredentialsError):
    """401 or 403-permission: credentials are missing, wrong or lack rights."""


class RateLimited(RulebotError):
    """A server's rate limit outlasted the waiting allowed. No later request
    of the run would do better, so the run stops (the message says when to
    try again); ``retry_at`` is when the server said the limit resets (unix
    seconds), None when it did not say."""

    def __init__(self, message: str, retry_at: float | None = None) -> None:
        super().__init__(message)
        self.retry_at = retry_at


class RateLimitError(PocketError, RateLimited):
    """The rate-limit budget is spent and the reset is too far away."""
