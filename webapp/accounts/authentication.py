"""DRF authentication by user API token: `Authorization: Token <t>` or `Bearer <t>`."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed, Throttled
from rest_framework.request import Request

from webapp.accounts.lockout import token_failed, token_locked_out
from webapp.accounts.selectors import token_find, token_refusal
from webapp.accounts.services import token_used
from webapp.accounts.tokens import authorization_token


class ApiTokenAuthentication(BaseAuthentication):
    """Signs a request in as the token's user; `request.auth` is the ApiToken row.

    A request without a token is left to the next class (the session); one with an unknown,
    revoked or expired token, or a deactivated user's, is refused with 401 saying which. Unknown
    tokens are guesses: they count toward the lockout of the client's address (webapp.accounts.lockout;
    a known but revoked or expired token is a stale script, not a guess, and locks no one out), and
    a locked-out address is answered 429 without its token being looked at.
    """

    def authenticate(self, request: Request) -> tuple[Any, Any] | None:
        key = authorization_token(request.META.get("HTTP_AUTHORIZATION"))
        if key is None:
            return None
        if token_locked_out(request):
            raise Throttled(detail="too many unknown tokens from this address")
        token = token_find(key=key)
        if refusal := token_refusal(token):
            if token is None:
                token_failed(request)
            raise AuthenticationFailed(refusal)
        assert token is not None
        token_used(token=token)
        return token.user, token

    def authenticate_header(self, request: Request) -> str:
        return 'Bearer realm="api"'


class ApiTokenScheme(OpenApiAuthenticationExtension):
    """The OpenAPI security scheme of ApiTokenAuthentication (drf-spectacular finds it by target)."""

    target_class = ApiTokenAuthentication
    name = "apiToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A user API token (API tokens page, or `manage.py apitoken create`), sent as "
            "`Authorization: Bearer <token>` (or `Token <token>`).",
        }
