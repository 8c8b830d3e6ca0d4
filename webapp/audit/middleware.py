"""The request being handled, for the audit log's who and from where (webapp.audit.services).

DRF authenticates inside the view and then sets `user` and `auth` on this same HttpRequest, so by
the time a service records a change the request says who it is and how they signed in: a user API
token (`auth` is the Token) is the API, a session is the UI.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

_current: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)


def current_request() -> HttpRequest | None:
    return _current.get()


class AuditRequestMiddleware:
    """Makes the request being handled known to webapp.audit.services for its duration.

    Async-capable like the rest of the chain, so under ASGI an async view (the catalog's blocking
    query) waits without holding a thread; the context variable reaches the sync views' threads."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse | Awaitable[HttpResponse]]) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponse | Awaitable[HttpResponse]:
        if self.is_async:
            return self._acall(request)
        token = _current.set(request)
        try:
            return self.get_response(request)  # type: ignore[return-value]
        finally:
            _current.reset(token)

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        token = _current.set(request)
        try:
            return await self.get_response(request)  # type: ignore[misc]
        finally:
            _current.reset(token)
