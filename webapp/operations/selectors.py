"""Reads about operations."""

from __future__ import annotations

import uuid

from django.db.models import QuerySet

from webapp.errors import InvalidInput, NotFound
from webapp.operations.models import Operation


def _with_related() -> QuerySet[Operation]:
    """With their host, requester and topology, but not the topology's documents and drift: an
    operation names its topology only, and a spanning one's documents are hundreds of kilobytes."""
    return Operation.objects.select_related("host", "requested_by", "topology").defer(
        "topology__span_document", "topology__span_share", "topology__drift"
    )


def operation_get(*, id: str | uuid.UUID) -> Operation:
    """The operation with that id."""
    try:
        key = id if isinstance(id, uuid.UUID) else uuid.UUID(str(id))
    except ValueError:
        raise NotFound(f"no operation {id!r}") from None
    operation = _with_related().filter(id=key).first()
    if operation is None:
        raise NotFound(f"no operation {str(id)!r}")
    return operation


def operation_list(*, host: str | None = None, status: str | None = None) -> QuerySet[Operation]:
    """Operations, newest first, of the host of that name and/or with that status."""
    operations = _with_related().order_by("-created")
    if status:
        if status not in Operation.Status.values:
            raise InvalidInput(
                f"unknown status {status!r} (use {', '.join(Operation.Status.values)})", field="status"
            )
        operations = operations.filter(status=status)
    if host:
        operations = operations.filter(host__name=host)
    return operations
