"""Helpers shared by websocket routes: credentials from the handshake, origin checks."""

from __future__ import annotations

from typing import Any

from channels.security.websocket import WebsocketDenier
from django.conf import settings
from django.http.request import split_domain_port, validate_host

from webapp.accounts.tokens import authorization_token


def header_token(scope: dict[str, Any]) -> str | None:
    """The token of an `Authorization: Token <t>` (or `Bearer <t>`) handshake header, else None."""
    for name, value in scope.get("headers", []):
        if name.lower() == b"authorization":
            return authorization_token(value.decode("latin1"))
    return None


def origin_allowed(scope: dict[str, Any]) -> bool:
    """Whether a websocket handshake may go on, by its Origin header: none (a script with a token,
    not a browser), the very scheme, host and port the request was made to (same origin, that host
    in ALLOWED_HOSTS), or one of CSRF_TRUSTED_ORIGINS. Scheme and port count: http://127.0.0.1:9999
    and https://localhost are other origins than http://localhost:8000."""
    headers = {name.lower(): value.decode("latin1") for name, value in scope.get("headers", [])}
    origin = headers.get(b"origin")
    if origin is None:
        return True
    origin = origin.strip().lower().rstrip("/")
    if origin in (trusted.lower() for trusted in settings.CSRF_TRUSTED_ORIGINS):
        return True
    host = headers.get(b"host", "").strip().lower()
    domain, _ = split_domain_port(host)
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    return origin == f"{_scheme(scope, headers)}://{host}"


def _scheme(scope: dict[str, Any], headers: dict[bytes, str]) -> str:
    """http or https, as the browser made the request: behind a TLS proxy (SECURE_PROXY_SSL_HEADER,
    which SWITCHBOARD_BEHIND_TLS sets) the proxy's header says so, as for Django's is_secure()."""
    if settings.SECURE_PROXY_SSL_HEADER:
        meta_name, secure_value = settings.SECURE_PROXY_SSL_HEADER
        name = meta_name.removeprefix("HTTP_").lower().replace("_", "-").encode()
        if headers.get(name, "").split(",")[0].strip() == secure_value:
            return "https"
    return "https" if scope.get("scheme") in ("https", "wss") else "http"


class BrowserOriginValidator:
    """ASGI wrapper refusing (403 at the handshake) a websocket whose Origin is not allowed
    (origin_allowed): what stops another site's page from opening a socket with the session cookie."""

    def __init__(self, application: Any) -> None:
        self.application = application

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> Any:
        if scope["type"] == "websocket" and not origin_allowed(scope):
            return await WebsocketDenier()(scope, receive, send)
        return await self.application(scope, receive, send)
