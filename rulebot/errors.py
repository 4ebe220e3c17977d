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
