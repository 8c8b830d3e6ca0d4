"""Websocket authentication for browser-facing sockets: session cookie or user API token."""

from __future__ import annotations

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware

from webapp.accounts.selectors import user_for_token
from webapp.sockets import BrowserOriginValidator, header_token


class TokenAuthMiddleware(BaseMiddleware):
    """`Authorization: Token <user API token>` sets scope["user"] (AnonymousUser if the token is bad)."""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        token = header_token(scope)
        if token is not None:
            scope = dict(scope, user=await database_sync_to_async(user_for_token)(token=token))
        return await super().__call__(scope, receive, send)


def user_socket(application: Any) -> Any:
    """Wrap a consumer for browsers: origin check, then session auth, then token auth (which wins)."""
    return BrowserOriginValidator(AuthMiddlewareStack(TokenAuthMiddleware(application)))
