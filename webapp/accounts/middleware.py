"""Websocket authentication for browser-facing sockets: session cookie or user API token."""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from django.contrib.auth.models import AnonymousUser

from webapp.accounts.selectors import token_find, token_refusal
from webapp.accounts.services import token_used
from webapp.sockets import BrowserOriginValidator, header_token


def _token_scope(key: str) -> dict[str, Any]:
    """scope["user"] and scope["api_token"] (its id, for the socket's identity checks) of a token."""
    token = token_find(key=key)
    if token_refusal(token) is not None:
        return {"user": AnonymousUser(), "api_token": None}
    assert token is not None
    token_used(token=token)
    return {"user": token.user, "api_token": token.pk}


class TokenAuthMiddleware(BaseMiddleware):
    """`Authorization: Token|Bearer <user API token>` sets scope["user"] (AnonymousUser if the token
    does not sign anyone in) and scope["api_token"]."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        key = header_token(scope)
        if key is not None:
            scope = dict(scope, **await database_sync_to_async(_token_scope)(key))
        return await super().__call__(scope, receive, send)


def user_socket(application: Any) -> Any:
    """Wrap a consumer for browsers: origin check, then session auth, then token auth (which wins)."""
    return BrowserOriginValidator(AuthMiddlewareStack(TokenAuthMiddleware(application)))
