"""Wallabag's OAuth2 (FOSOAuthServerBundle): the token endpoint's password
and refresh grants, and the access tokens every other route needs.

``/oauth/v2/token`` takes form, query or JSON parameters; every failure is a
400 ``{error, error_description}``; a refresh rotates the refresh token.
Access tokens expire after ``access_lifetime`` seconds of the fake's clock
(401 ``invalid_grant`` "has expired", with ``WWW-Authenticate``); a missing
token is 401 ``access_denied``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from rulebot.fake.base import Reply, json_reply
from rulebot.fake.wallabag.library import WallabagLibrary
from rulebot.fake.wallabag.model import (
    ACCESS_LIFETIME,
    DEFAULT_CLIENT_ID,
    DEFAULT_CLIENT_SECRET,
    DEFAULT_EMAIL,
    DEFAULT_PASSWORD,
    DEFAULT_USERNAME,
    REFRESH_LIFETIME,
    Token,
    new_token,
)

_BEARER = re.compile(r"Bearer\s(\S+)")


class WallabagAccounts(WallabagLibrary):
    """The library behind Wallabag's users, API client and tokens."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        username: str = DEFAULT_USERNAME,
        password: str = DEFAULT_PASSWORD,
        access_lifetime: int = ACCESS_LIFETIME,
        refresh_lifetime: int = REFRESH_LIFETIME,
        latency: float = 0.0,
        now: int | None = None,
    ) -> None:
        super().__init__(host=host, port=port, username=username, latency=latency, now=now)
        self.client_id, self.client_secret = client_id, client_secret
        self.users = {username: password, "other": "other-password"}
        self.emails = {DEFAULT_EMAIL: username}
        self.access_lifetime, self.refresh_lifetime = access_lifetime, refresh_lifetime
        self._access: dict[str, Token] = {}
        self._refresh: dict[str, Token] = {}
        self.issued: list[str] = []  # every token handed out (for secrets audits)

    @property
    def env(self) -> dict[str, str]:
        """The four variables rulebot reads, for this server."""
        return {
            "WALLABAG_CLIENT_ID": self.client_id,
            "WALLABAG_CLIENT_SECRET": self.client_secret,
            "WALLABAG_USERNAME": self.username,
            "WALLABAG_PASSWORD": self.users[self.username],
        }

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now."""
        with self._lock:
            for token in self._access.values():
                token.expires = self.now - 1

    # -- the token endpoint and the access tokens ---------------------------------------
    def _token(self, form: dict[str, str]) -> Reply:
        grant = form.get("grant_type")
        if grant not in ("password", "refresh_token", "client_credentials", "authorization_code"):
            return _oauth(
                400, "invalid_request", "Invalid grant_type parameter or parameter missing"
            )
        if not form.get("client_id"):
            return _oauth(400, "invalid_client", "Client id was not found in the headers or body")
        if (form.get("client_id"), form.get("client_secret")) != (
            self.client_id,
            self.client_secret,
        ):
            return _oauth(400, "invalid_client", "The client credentials are invalid")
        if grant not in ("password", "refresh_token"):
            return _oauth(
                400, "unauthorized_client", "The grant type is unauthorized for this client_id"
            )
        if grant == "password":
            name, password = form.get("username"), form.get("password")
            if not name or not password:
                return _oauth(
                    400, "invalid_request", 'Missing parameters. "username" and "password" required'
                )
            name = self.emails.get(name, name)
            if self.users.get(name) != password:
                return _oauth(400, "invalid_grant", "Invalid username and password combination")
            user = name
        else:
            presented = form.get("refresh_token")
            if not presented:
                return _oauth(400, "invalid_request", 'No "refresh_token" parameter found')
            token = self._refresh.get(presented)
            if token is None:
                return _oauth(400, "invalid_grant", "Invalid refresh token")
            if token.expires < self.now:
                return _oauth(400, "invalid_grant", "Refresh token has expired")
            del self._refresh[presented]  # rotated
            user = token.user
        access, refresh = new_token(), new_token()
        self._access[access] = Token(user, self.now + self.access_lifetime)
        self._refresh[refresh] = Token(user, self.now + self.refresh_lifetime)
        self.issued += [access, refresh]
        answer = {
            "access_token": access,
            "expires_in": self.access_lifetime,
            "token_type": "bearer",
            "scope": None,
            "refresh_token": refresh,
        }
        return json_reply(200, answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})

    @staticmethod
    def _presented(headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        match = _BEARER.search(headers.get("authorization", ""))
        return match.group(1) if match else query.get("access_token")

    def _authenticate(
        self, headers: Mapping[str, str], query: Mapping[str, str], body: Mapping[str, str]
    ) -> str | Reply:
        match = _BEARER.search(headers.get("authorization", ""))
        ways = [match.group(1)] if match else []
        ways += [form["access_token"] for form in (query, body) if "access_token" in form]
        if len(ways) > 1:
            return _oauth(
                400,
                "invalid_request",
                "Only one method may be used to authenticate at a time (Auth header, GET or POST).",
            )
        if not ways:
            return _oauth(401, "access_denied", "OAuth2 authentication required")
        token = self._access.get(ways[0])
        if token is None:
            return _oauth(401, "invalid_grant", "The access token provided is invalid.")
        if token.expires < self.now:
            return _oauth(401, "invalid_grant", "The access token provided has expired.")
        return token.user


def _oauth(status: int, error: str, description: str) -> Reply:
    headers = {
        "Content-Type": "application/json",
        "Cache-Control": "no-store",
        "Pragma": "no-cache",
    }
    if status == 401:
        headers["WWW-Authenticate"] = (
            f'Bearer realm="Service", error="{error}", error_description="{description}"'
        )
    body = json.dumps({"error": error, "error_description": description}).encode()
    return Reply(status, body, headers)
