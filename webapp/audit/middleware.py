"""The request being handled, for the audit log's who and from where (webapp.audit.services).

DRF authenticates inside the view and then sets `user` and `auth` on this same HttpRequest, so by
the time a service records a change the request says who it is and how they signed in: a user API
token (`auth` is the Token) is the API, a session is the UI.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

from django.http import HttpRequest, HttpResponse

_current: ContextVar[HttpRequest | None] = ContextVar("audit_request", default=None)


def current_request() -> HttpRequest | None:
    return _current.get()


class AuditRequestMiddleware:
    """Makes the request being handled known to webapp.audit.services for its duration."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        token = _current.set(request)
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
