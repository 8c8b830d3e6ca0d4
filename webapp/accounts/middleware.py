"""Websocket authentication for browser-facing sockets: session cookie or user API token."""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest

from webapp.accounts.lockout import token_failed, token_locked_out
from webapp.accounts.selectors import token_find, token_refusal
from webapp.accounts.services import token_used
from webapp.sockets import BrowserOriginValidator, header_token


def _token_scope(key: str, scope: dict[str, Any]) -> dict[str, Any]:
    """scope["user"] and scope["api_token"] (its id, for the socket's identity checks) of a token.
    As for the API, an unknown token counts toward its address's lockout, and a locked-out address
    is refused unchecked."""
    refused = {"user": AnonymousUser(), "api_token": None}
    request = _handshake_request(scope)
    if token_locked_out(request):
        return refused
    token = token_find(key=key)
    if token_refusal(token) is not None:
        if token is None:
            token_failed(request)
        return refused
    assert token is not None
    token_used(token=token)
    return {"user": token.user, "api_token": token.pk}


def _handshake_request(scope: dict[str, Any]) -> HttpRequest:
    """The handshake as an HttpRequest, enough for the lockout's client address (REMOTE_ADDR, and
    X-Forwarded-For behind a proxy)."""
    request = HttpRequest()
    request.path = scope.get("path", "")
    request.META["REMOTE_ADDR"] = (scope.get("client") or ("",))[0]
    for name, value in scope.get("headers", []):
        request.META["HTTP_" + name.decode("latin1").upper().replace("-", "_")] = value.decode("latin1")
    return request


class TokenAuthMiddleware(BaseMiddleware):
    """`Authorization: Token|Bearer <user API token>` sets scope["user"] (AnonymousUser if the token
    does not sign anyone in) and scope["api_token"]."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        key = header_token(scope)
        if key is not None:
            scope = dict(scope, **await database_sync_to_async(_token_scope)(key, scope))
        return await super().__call__(scope, receive, send)


def user_socket(application: Any) -> Any:
    """Wrap a consumer for browsers: origin check, then session auth, then token auth (which wins)."""
    return BrowserOriginValidator(AuthMiddlewareStack(TokenAuthMiddleware(application)))
