"""Helpers shared by websocket routes: credentials from the handshake, origin checks."""

from __future__ import annotations

from typing import Any
from urllib.parse import ParseResult

from channels.security.websocket import OriginValidator
from django.conf import settings


def header_token(scope: dict[str, Any]) -> str | None:
    """The token of an `Authorization: Token <t>` handshake header, else None."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            scheme, _, token = value.decode("latin1").strip().partition(" ")
            if scheme.lower() == "token" and token.strip():
                return token.strip()
    return None


class BrowserOriginValidator(OriginValidator):
    """Refuse a handshake whose Origin header names a host not in ALLOWED_HOSTS.

    Browsers always send Origin on websockets (that is what stops cross-site socket hijacking
    with the session cookie); clients without one (scripts using a token) are let through.
    """

    def __init__(self, application: Any) -> None:
        super().__init__(application, allowed_origins=[])

    def valid_origin(self, parsed_origin: ParseResult | None) -> bool:
        if parsed_origin is None:
            return True
        return any(
            pattern == "*" or self.match_allowed_origin(parsed_origin, pattern)
            for pattern in settings.ALLOWED_HOSTS
        )
