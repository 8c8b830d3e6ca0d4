"""Writes of the audit log: one entry per change, written by the service that makes the change.

A service calls audit_record inside its transaction, after the change: the entry commits with the
change or not at all. A change a service refuses (a DomainError: a name taken, a subnet overlap, a
stale version, a revoked host) is recorded too, as result "failed" with the refusal's message, once
its transaction has rolled back: the `refusals_audited` decorator does that. Requests refused
before any service runs (not logged in, a viewer asking to write) are not recorded.

Who and from where: services pass the user they were given and, when they know it, the source
(the agent's connection says "agent"). Otherwise both come from the request being handled
(webapp.audit.middleware): its user, "api" when it was authenticated with a user API token and
"ui" for a browser session; with no request at all (reconcile, management commands), "system".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any, ParamSpec, TypeAlias, TypeVar

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from webapp.audit.middleware import current_request
from webapp.audit.models import AuditEntry
from webapp.errors import DomainError

User: TypeAlias = AbstractBaseUser | AnonymousUser | None
Source = AuditEntry.Source
Result = AuditEntry.Result

P = ParamSpec("P")
R = TypeVar("R")


def request_source() -> str:
    """ "api" when the request being handled came with a user API token, "ui" for a session, and
    "system" when no request is being handled."""
    request = current_request()
    if request is None:
        return Source.SYSTEM
    return Source.API if getattr(request, "auth", None) is not None else Source.UI


def _actor(user: User) -> AbstractBaseUser | None:
    if user is None:
        request = current_request()
        user = getattr(request, "user", None) if request is not None else None
    if user is None or not user.is_authenticated:
        return None
    return user  # type: ignore[return-value]


def audit_record(
    *,
    action: str,
    object_kind: str,
    host: str = "",
    name: str = "",
    topology: str = "",
    details: Mapping[str, Any] | None = None,
    user: User = None,
    source: str | None = None,
    error: str = "",
) -> AuditEntry:
    """Record one change (`error` empty) or one refused change (`error`: why)."""
    actor = _actor(user)
    return AuditEntry.objects.create(
        user=actor,
        username=actor.get_username() if actor is not None else "",
        source=source or request_source(),
        action=action,
        object_kind=object_kind,
        host=host[:63],
        object_name=str(name)[:255],
        topology=topology[:255],
        details=dict(details or {}),
        result=Result.FAILED if error else Result.OK,
        error=error,
    )


def refusals_audited(
    action: str, *, object_kind: str, target: Callable[[Mapping[str, Any]], tuple[str, str, str]]
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record a DomainError the decorated service raises as a failed `action` (and raise it on).

    `target` gives (host name, object name, topology name) from the service's keyword arguments; the service's
    `user` and `source` arguments, if any, say who and from where.
    """

    def decorate(service: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(service)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return service(*args, **kwargs)
            except DomainError as err:
                host, name, topology = target(kwargs)
                audit_record(
                    action=action,
                    object_kind=object_kind,
                    host=host,
                    name=name,
                    topology=topology,
                    user=kwargs.get("user"),  # type: ignore[arg-type]
                    source=kwargs.get("source"),  # type: ignore[arg-type]
                    error=err.message,
                )
                raise

        return wrapper

    return decorate
