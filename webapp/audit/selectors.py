"""Reads of the audit log: entries newest first, filtered."""

from __future__ import annotations

import datetime

from django.db.models import Q, QuerySet

from webapp.audit.models import AuditEntry

#: The actions services record (for filter forms; the filter itself takes any text).
ACTIONS = (
    "topology.create",
    "topology.update",
    "topology.delete",
    "operation.create",
    "operation.cancel",
    "operation.finish",
    "host.create",
    "host.token_rotate",
    "host.revoke",
    "token.create",
    "token.revoke",
    "login.locked_out",
    "login.unlock",
)


def audit_list(
    *,
    user: str | None = None,
    action: str | None = None,
    host: str | None = None,
    name: str | None = None,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
) -> QuerySet[AuditEntry]:
    """Entries newest first: by user name, action (exact, or `topology.*` for a prefix), host,
    object name (a topology's name, which also finds its operations, or an operation's id), and time
    (since inclusive, until exclusive). One query, no joins."""
    entries = AuditEntry.objects.all()
    if user:
        entries = entries.filter(username=user)
    if action:
        if action.endswith(".*"):
            entries = entries.filter(action__startswith=action[:-1])
        else:
            entries = entries.filter(action=action)
    if host:
        entries = entries.filter(host=host)
    if name:
        entries = entries.filter(Q(object_name=name) | Q(topology=name))
    if since is not None:
        entries = entries.filter(at__gte=since)
    if until is not None:
        entries = entries.filter(at__lt=until)
    return entries.order_by("-at", "-id")
