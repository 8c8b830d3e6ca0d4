"""Writes about operations: created by the API, run by the host's agent connection, cancelled.

The web side only records an operation and wakes the host's agent connection over the channel layer
(`operation.wake`); that connection (webapp.hosts.consumers) takes the oldest pending operation of
its host when it has none running, sends it to the agent, records its progress and the answer.
Cancelling a running one sends that connection `operation.cancel`, which asks the agent to stop.
No web worker thread waits on an agent.
"""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from webapp import layer
from webapp.audit.services import Source, audit_record, refusals_audited
from webapp.errors import Conflict, InvalidInput
from webapp.hosts.models import Host
from webapp.networks.selectors import plan_lines
from webapp.operations.models import Operation

if TYPE_CHECKING:
    from webapp.networks.models import Topology

DISCONNECTED = "the agent disconnected while running it; it may have partly applied: run plan to see"
CANCEL_REQUESTED = "its agent was asked to stop it at the next safe point"
CANCELLED_ERROR = "Cancelled"  # the netcore error an agent answers a cancelled command with
NO_PROGRESS: dict[str, Any] = {"progress": "", "progress_done": None, "progress_total": None}  # once ended

Status = Operation.Status


def operation_message(operation: Operation, *, host: str) -> dict[str, Any]:
    """The `operation.status` channel-layer message (and browser frame) of an operation (its
    topology loaded with it: select_related, or given to operation_create)."""
    running = operation.status == Status.RUNNING
    return layer.operation_message(
        id=str(operation.id),
        host=host,
        kind=operation.kind,
        status=operation.status,
        error=operation.error,
        topology=operation.topology.name if operation.topology_id is not None else None,
        progress=operation.progress if running else "",
        done=operation.progress_done if running else None,
        total=operation.progress_total if running else None,
        subject=operation_subject(operation),
    )


def operation_subject(operation: Operation) -> str:
    """What a docker or shape operation does, for people ("container.run web", "shape a:eth0"); ""
    for the topology kinds (their topology names them)."""
    if operation.kind not in (Operation.Kind.DOCKER, Operation.Kind.SHAPE):
        return ""
    document = json.loads(operation.document)
    request = document["request"]
    if operation.kind == Operation.Kind.SHAPE:
        return f"{document['action']} {request['netns']}:{request['link']}"
    named = next((request[k] for k in ("name", "project", "container", "network") if request.get(k)), "")
    return f"{document['action']} {named}".strip()


def progress_text(*, step: str | None, done: int, total: int) -> str:
    """An agent's progress report for people: "building nodes 128/500"."""
    return f"{step or 'working'} {done}/{total}"


def _announce(operation: Operation, *, host: Host, wake: bool = False) -> None:
    """Tell browsers the operation's status, and (`wake`) the host's agent connection to look at
    its queue; after the transaction commits, so they read what was written."""
    message = operation_message(operation, host=host.name)

    def send() -> None:
        group_send = async_to_sync(get_channel_layer().group_send)
        group_send(layer.TOPOLOGY, message)
        if wake:
            group_send(layer.agent_group(host.id), {"type": "operation.wake"})

    transaction.on_commit(send)


def _audited_new(kwargs: dict[str, Any]) -> tuple[str, str, str]:
    topology = kwargs.get("topology")
    return kwargs["host"].name, "", topology.name if topology is not None else ""


def _audited(kwargs: dict[str, Any]) -> tuple[str, str, str]:
    operation = kwargs["operation"]
    topology = operation.topology.name if operation.topology_id is not None else ""
    return operation.host.name, str(operation.id), topology


def _audit_entry(operation: Operation, action: str) -> dict[str, Any]:
    """The audit_record arguments of `action` on the operation as it is in memory (its host and
    topology loaded with it): made before the transaction, which then holds its locks only for the
    writes."""
    details: dict[str, Any] = {"kind": operation.kind, "status": operation.status}
    if operation.reason:
        details["reason"] = operation.reason
    if action == "operation.finish" and operation.kind in (Operation.Kind.PLAN, Operation.Kind.APPLY):
        details["changes"] = plan_lines(operation.result)[:500]
    return {
        "action": action,
        "object_kind": "operation",
        "host": operation.host.name,
        "name": str(operation.id),
        "topology": operation.topology.name if operation.topology_id is not None else "",
        "details": details,
        "error": operation.error if operation.status == Status.FAILED else "",
    }


@refusals_audited("operation.create", object_kind="operation", target=_audited_new)
def operation_create(
    *,
    host: Host,
    kind: str,
    topology_text: str,
    user: AbstractBaseUser | AnonymousUser | None,
    topology: Topology | None = None,
    topology_version: int | None = None,
    reason: str = "",
    source: str | None = None,
    nodes: list[str] | None = None,
) -> Operation:
    """Queue plan/apply/destroy of a topology file on the host; it runs when the host's agent is
    connected and the host's earlier operations have ended. `topology`: the desired topology the
    file was compiled from, at `topology_version`; `reason`: why, when no person asked; `nodes`:
    an apply's scope (netcore.topology.scope), None for every node."""
    if kind not in Operation.Kind.values:
        raise InvalidInput(f"unknown kind {kind!r} (use {', '.join(Operation.Kind.values)})", field="kind")
    if host.revoked:
        raise Conflict(f"host {host.name!r} is revoked: give it a new token before sending it work")
    with transaction.atomic():
        operation = Operation.objects.create(
            host=host,
            kind=kind,
            document=topology_text,
            nodes=nodes,
            topology=topology,
            topology_version=topology_version,
            reason=reason,
            requested_by=user if user is not None and user.is_authenticated else None,
        )
        audit_record(**_audit_entry(operation, "operation.create"), user=user, source=source)
        _announce(operation, host=host, wake=True)
    return operation


@refusals_audited("operation.cancel", object_kind="operation", target=_audited)
def operation_cancel(
    *,
    operation: Operation,
    user: AbstractBaseUser | AnonymousUser | None = None,
    source: str | None = None,
) -> Operation:
    """Cancel an operation. A pending one is cancelled now: it will never run. A running one's
    agent is asked to stop it at its next safe point (`cancel_requested`): it stops, removes what
    the run created and answers, which makes the operation cancelled, unless it finished first.
    Asking again, or about an operation that has ended, changes nothing (and is not audited)."""
    entry = _audit_entry(operation, "operation.cancel")
    now = timezone.now()
    with transaction.atomic():
        cancelled = Operation.objects.filter(id=operation.id, status=Status.PENDING).update(
            status=Status.CANCELLED, finished=now
        )
        asked = not cancelled and Operation.objects.filter(
            id=operation.id, status=Status.RUNNING, cancel_requested__isnull=True
        ).update(cancel_requested=now)
        if cancelled:
            entry["details"]["status"] = Status.CANCELLED
        elif asked:
            entry["details"].update(status=Status.RUNNING, cancel=CANCEL_REQUESTED)
        if cancelled or asked:
            audit_record(**entry, user=user, source=source)
    operation.refresh_from_db()
    if cancelled:
        _announce(operation, host=operation.host)
    elif operation.status == Status.RUNNING:
        _ask_to_stop(operation)
    return operation


def _ask_to_stop(operation: Operation) -> None:
    """Tell the host's agent connection, after the transaction commits, to send the agent a
    `cancel` for the operation (it does if the operation is the one it runs)."""
    message = {"type": "operation.cancel", "id": str(operation.id)}
    host_id = operation.host_id
    transaction.on_commit(
        lambda: async_to_sync(get_channel_layer().group_send)(layer.agent_group(host_id), message)
    )


# Used by the host's agent connection (webapp.hosts.consumers), through database_sync_to_async.


def operation_start_next(*, host_id: int, holder: str) -> Operation | None:
    """Mark the host's oldest pending operation running and return it, if the connection `holder`
    holds the host's presence lease and none of the host's operations is running."""
    with transaction.atomic():
        host = Host.objects.select_for_update().filter(id=host_id, lease_holder=holder).first()
        if host is None or host.revoked:
            return None
        if Operation.objects.filter(host_id=host_id, status=Status.RUNNING).exists():
            return None
        while True:
            operation = (
                Operation.objects.filter(host_id=host_id, status=Status.PENDING)
                .select_related("topology")
                .order_by("created")
                .first()
            )
            if operation is None:
                return None
            now = timezone.now()
            if Operation.objects.filter(id=operation.id, status=Status.PENDING).update(
                status=Status.RUNNING, started=now
            ):
                operation.status, operation.started, operation.host = Status.RUNNING, now, host
                return operation  # else it was cancelled meanwhile: take the next


def _uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def operation_finish(*, host_id: int, operation_id: str, reply: dict[str, Any]) -> Operation | None:
    """Record the agent's answer ({ok, result | error}) to an operation of its host.

    Also taken when the operation was failed because the agent disconnected while running it and
    the agent answered later (it keeps running a command across reconnects): the real outcome
    replaces the guess. None when no such operation waits for an answer.
    """
    key = _uuid(operation_id)
    if key is None:
        return None
    waiting = Q(status=Status.RUNNING) | Q(status=Status.FAILED, error=DISCONNECTED)
    operation = (
        Operation.objects.filter(waiting, id=key, host_id=host_id).select_related("host", "topology").first()
    )
    if operation is None:
        return None
    if reply["ok"]:
        status, result, error = Status.SUCCEEDED, reply["result"], ""
    else:
        failure = reply["error"] if isinstance(reply["error"], dict) else {}
        status, result = Status.FAILED, failure
        message = failure.get("message", "the agent reported an error")
        error = f"{failure.get('error', 'NetcoreError')}: {message}"
        if failure.get("error") == CANCELLED_ERROR:  # it stopped because it was asked to
            status, error = Status.CANCELLED, message
    now = timezone.now()
    operation.status, operation.result, operation.error, operation.finished = status, result, error, now
    for name, value in NO_PROGRESS.items():
        setattr(operation, name, value)
    entry = _audit_entry(operation, "operation.finish")
    with transaction.atomic():
        if not Operation.objects.filter(waiting, id=key).update(
            status=status,
            result=result,
            error=error,
            finished=now,
            **NO_PROGRESS,
        ):
            return None
        audit_record(**entry, source=Source.AGENT)
    return operation


def operation_progress(*, host_id: int, operation_id: str, progress: str, done: int, total: int) -> bool:
    """Record how far the host's running operation is (its agent's latest report); False when it
    is not running any more (a report that came after the answer changes nothing)."""
    key = _uuid(operation_id)
    return key is not None and bool(
        Operation.objects.filter(id=key, host_id=host_id, status=Status.RUNNING).update(
            progress=progress[:200], progress_done=done, progress_total=total
        )
    )


def operations_fail_running(*, host_id: int, operation_id: str | None = None) -> list[Operation]:
    """Fail the host's running operation(s) (just `operation_id`, if given): the agent connection
    that ran it went away, so no answer will come through it."""
    running = Operation.objects.filter(host_id=host_id, status=Status.RUNNING).select_related("topology")
    if operation_id is not None:
        running = running.filter(id=operation_id)
    now = timezone.now()
    failed = []
    for operation in running:
        if Operation.objects.filter(id=operation.id, status=Status.RUNNING).update(
            status=Status.FAILED, error=DISCONNECTED, finished=now, **NO_PROGRESS
        ):
            operation.status, operation.error, operation.finished = Status.FAILED, DISCONNECTED, now
            failed.append(operation)
    return failed


def operations_fail_orphaned() -> list[Operation]:
    """Fail the running operations of hosts whose presence lease has run out (the worker holding
    their agent's connection died, so no answer will come through it), with their hosts."""
    orphaned = Operation.objects.filter(status=Status.RUNNING).exclude(
        host__revoked_at__isnull=True, host__online_until__gt=timezone.now()
    )
    now = timezone.now()
    failed = []
    for operation in orphaned.select_related("host", "topology"):
        if Operation.objects.filter(id=operation.id, status=Status.RUNNING).update(
            status=Status.FAILED, error=DISCONNECTED, finished=now, **NO_PROGRESS
        ):
            operation.status, operation.error, operation.finished = Status.FAILED, DISCONNECTED, now
            failed.append(operation)
    return failed
