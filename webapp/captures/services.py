"""Writes of captures: start (checked, recorded, sent to the host's agent), stop, delete, and what the
agent's capture frames change (webapp.captures.relay calls the `capture_*` handlers below from the
agent's connection).

The file is kept as the agent sends it: each capture.data frame's bytes are one chunk, taken only
when its offset is the end of what is kept (a gap is refused: the file would be corrupt). What one
capture may keep is bounded (webapp.captures.limits): past MAX_FILE_BYTES of file or MAX_ROWS rows
the agent is asked to stop, and the capture says why.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.utils import timezone

from netcore.capture.request import capture_request_parse
from netcore.errors import InvalidSpec
from webapp.audit.services import audit_record, refusals_audited
from webapp.captures import events
from webapp.captures.limits import (
    FILE_SLACK_BYTES,
    MAX_FILE_BYTES,
    MAX_ROWS,
)
from webapp.captures.models import LIVE, Capture, CaptureChunk, CapturePacket
from webapp.captures.selectors import host_interfaces
from webapp.errors import Conflict, HostOffline, InvalidInput, NotFound
from webapp.hosts.models import Host
from webapp.topology.selectors import topology_get

User = AbstractBaseUser | AnonymousUser | None

AGENT_GONE = "the agent disconnected: what arrived before is kept"
AGENT_GONE_PENDING = "the agent disconnected before the capture started: start it again"
HOST_OFFLINE = "stopped while the host's agent was not connected"


def capture_request_check(**request: Any) -> dict[str, Any]:
    """The agent's `capture` request from what was asked, every field checked by the code the agent
    runs (netcore.capture.request); InvalidInput naming the first wrong field."""
    try:
        parsed = capture_request_parse(dict(request))
    except InvalidSpec as exc:
        raise InvalidInput(str(exc), field=exc.obj) from None
    checked = dataclasses.asdict(parsed)
    return {**checked, "interfaces": list(parsed.interfaces), "filter": parsed.filter.strip()}


def _known_check(host: Host, namespace: str, interfaces: list[str]) -> None:
    """Refuse a namespace or interface the host's last known state does not have (when it has one:
    the agent checks again against the kernel)."""
    state = topology_get(host=host.name).state
    offered = host_interfaces(state)
    if not offered:
        return
    if namespace not in offered:
        raise NotFound(f"host {host.name} has no namespace {namespace!r}", field="namespace")
    missing = [name for name in interfaces if name not in offered[namespace]]
    if missing:
        raise NotFound(
            f"namespace {namespace} of host {host.name} has no interface {', '.join(missing)}",
            field="interfaces",
        )


def _audited_start(kwargs: Mapping[str, Any]) -> tuple[str, str, str]:
    return str(kwargs.get("host", ""))[:63], "", ""


def _audited(kwargs: Mapping[str, Any]) -> tuple[str, str, str]:
    capture = kwargs["capture"]
    return capture.host.name, str(capture.id), ""


@refusals_audited("capture.start", object_kind="capture", target=_audited_start)
def capture_start(*, host: str, request: Mapping[str, Any], user: User, source: str | None = None) -> Capture:
    """Check a capture request (capture_request_check's fields), record it pending and send it to
    the host's agent. NotFound for an unknown host, namespace or interface; HostOffline when the
    host has no agent connected."""
    checked = capture_request_check(**request)
    found = Host.objects.filter(name=host).first()
    if found is None:
        raise NotFound(f"no host named {host!r}", field="host")
    if found.revoked:
        raise Conflict(f"host {found.name} is revoked: give it a new token first", field="host")
    if not found.online:
        raise HostOffline(f"host {found.name} has no agent connected to capture with (Hosts page)")
    _known_check(found, checked["namespace"], checked["interfaces"])
    with transaction.atomic():
        capture = Capture.objects.create(
            host=found, requested_by=user if user is not None and user.is_authenticated else None, **checked
        )
        audit_record(
            action="capture.start",
            object_kind="capture",
            host=found.name,
            name=str(capture.id),
            details=checked,
            user=user,
            source=source,
        )
        message = events.request_message(str(capture.id), checked)
        transaction.on_commit(lambda: events.send_to_agent(found.id, message))
    return capture


def capture_stop(*, capture: Capture, user: User, source: str | None = None) -> Capture:
    """Ask the capture's agent to stop it (what was captured is kept). A capture that ended is left
    as it is; one whose host has no agent connected now is stopped at once."""
    if capture.ended:
        return capture
    now = timezone.now()
    with transaction.atomic():
        capture.stop_requested = now
        fields = ["stop_requested"]
        if not capture.host.online:
            capture.status, capture.finished, capture.error = Capture.Status.STOPPED, now, HOST_OFFLINE
            fields += ["status", "finished", "error"]
        capture.save(update_fields=fields)
        audit_record(
            action="capture.stop",
            object_kind="capture",
            host=capture.host.name,
            name=str(capture.id),
            user=user,
            source=source,
        )
        capture_id, host_id = str(capture.id), capture.host_id
        transaction.on_commit(lambda: events.send_to_agent(host_id, events.stop_message(capture_id)))
    return capture


def capture_delete(*, capture: Capture, user: User, source: str | None = None) -> None:
    """Delete a capture with its file and rows; a live one is stopped first."""
    capture_id, host_id, live = str(capture.id), capture.host_id, not capture.ended
    with transaction.atomic():
        CaptureChunk.objects.filter(capture=capture).delete()
        CapturePacket.objects.filter(capture=capture).delete()
        audit_record(
            action="capture.delete",
            object_kind="capture",
            host=capture.host.name,
            name=capture_id,
            details={"packets": capture.packets, "bytes": capture.bytes},
            user=user,
            source=source,
        )
        capture.delete()

        def tell() -> None:
            if live:
                events.send_to_agent(host_id, events.stop_message(capture_id))
            events.send_to_watchers(capture_id, events.deleted_message())

        transaction.on_commit(tell)


# --- the agent's frames (called by webapp.captures.relay, from the host's agent connection)


@dataclass
class Handled:
    """What a capture frame did: the capture as it is now (None: unknown, another host's, or ended),
    whether to ask the agent to stop it, why the frame was refused (empty: taken), and the rows kept."""

    capture: Capture | None
    stop: bool = False
    refused: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)


def _live(host_id: int, capture_id: str) -> Capture | None:
    """The host's capture of that id if it is pending or running, locked for this transaction."""
    try:
        key = uuid.UUID(capture_id)
    except ValueError:  # an id the web app never gave
        return None
    return (
        Capture.objects.select_for_update()
        .select_related("host", "requested_by")
        .filter(pk=key, host_id=host_id, status__in=LIVE)
        .first()
    )


def _running(capture: Capture, fields: list[str]) -> None:
    if capture.status == Capture.Status.PENDING:
        capture.status, capture.started = Capture.Status.RUNNING, timezone.now()
        fields += ["status", "started"]


def _limit(capture: Capture, why: str, fields: list[str]) -> bool:
    """Record that the web app stops the capture (the first reason only); whether to ask the agent."""
    if capture.stop_requested is not None:
        return False
    capture.stop_requested, capture.error = timezone.now(), f"stopped by the web app: {why}"
    fields += ["stop_requested", "error"]
    return True


def capture_started(*, host_id: int, capture_id: str) -> Handled:
    """The agent runs the capture. Stop it again if someone asked before it ran."""
    with transaction.atomic():
        capture = _live(host_id, capture_id)
        if capture is None:
            return Handled(None, stop=True)
        fields: list[str] = []
        _running(capture, fields)
        capture.save(update_fields=fields)
    return Handled(capture, stop=capture.stop_requested is not None)


def capture_data(*, host_id: int, capture_id: str, offset: int, data: bytes) -> Handled:
    """The next bytes of the file, taken only at the end of what is kept."""
    with transaction.atomic():
        capture = _live(host_id, capture_id)
        if capture is None:
            return Handled(None, stop=True)
        fields: list[str] = []
        if offset != capture.bytes:
            why = f"the agent sent file bytes from offset {offset}, not {capture.bytes}: the file ends there"
            stop = _limit(capture, why, fields)
            capture.save(update_fields=fields)
            return Handled(capture, stop=stop, refused=f"capture.data: {why}")
        if capture.bytes >= MAX_FILE_BYTES + FILE_SLACK_BYTES:
            return Handled(capture)  # past the limit and its slack: dropped (the agent was asked to stop)
        _running(capture, fields)
        CaptureChunk.objects.create(capture=capture, offset=offset, data=data)
        capture.bytes += len(data)
        fields.append("bytes")
        stop = capture.bytes >= MAX_FILE_BYTES and _limit(
            capture, f"the file reached its limit of {MAX_FILE_BYTES // 2**20} MiB", fields
        )
        capture.save(update_fields=fields)
    return Handled(capture, stop=stop)


def capture_rows_add(*, host_id: int, capture_id: str, seen: int, rows: list[dict[str, Any]]) -> Handled:
    """Packets written so far, and rows for the table: kept up to MAX_ROWS."""
    with transaction.atomic():
        capture = _live(host_id, capture_id)
        if capture is None:
            return Handled(None, stop=True)
        fields = ["packets", "rows_kept"]
        _running(capture, fields)
        capture.packets = max(capture.packets, seen)
        kept = rows[: max(0, MAX_ROWS - capture.rows_kept)]
        CapturePacket.objects.bulk_create(
            [CapturePacket(capture=capture, **row) for row in kept], ignore_conflicts=True
        )
        capture.rows_kept += len(kept)
        stop = len(kept) < len(rows) and _limit(capture, f"it kept {MAX_ROWS:,} rows, its limit", fields)
        capture.save(update_fields=fields)
    return Handled(capture, stop=stop, rows=kept)


def _error_text(error: Mapping[str, Any]) -> str:
    """The agent's error object for people: "filter: <message>" when it names the field."""
    message = str(error.get("message") or error.get("error") or "the agent failed without a message")
    where = error.get("object")
    return (
        f"{where}: {message}"
        if isinstance(where, str) and where and not message.startswith(where)
        else message
    )


def capture_done(
    *,
    host_id: int,
    capture_id: str,
    ok: bool,
    packets: int,
    dropped: int,
    reason: str,
    error: Mapping[str, Any] | None,
) -> Handled:
    """How the capture ended: done (its count or duration), stopped, or failed with the agent's error."""
    with transaction.atomic():
        capture = _live(host_id, capture_id)
        if capture is None:
            return Handled(None)
        capture.reason = reason
        if not ok:
            capture.status = Capture.Status.FAILED
            capture.error = _error_text(error or {})
        elif reason in (Capture.Reason.COUNT, Capture.Reason.DURATION):
            capture.status = Capture.Status.DONE
        elif reason == Capture.Reason.STOPPED:
            capture.status = Capture.Status.STOPPED
        else:
            capture.status = Capture.Status.FAILED
            capture.error = capture.error or "dumpcap stopped with an error: the file holds what it wrote"
        capture.packets, capture.dropped = packets, dropped
        capture.finished = timezone.now()
        capture.save(update_fields=["reason", "status", "error", "packets", "dropped", "finished"])
    return Handled(capture)


def captures_agent_gone(
    *, host_id: int, ids: Iterable[str] | None = None, keep: Collection[str] = ()
) -> list[Capture]:
    """End the host's live captures (those of `ids`, else all but `keep`): its agent's connection is
    gone, and the agent kills its captures with it. Running ones are stopped (what arrived is kept),
    pending ones failed."""
    captures = Capture.objects.select_related("host", "requested_by").filter(host_id=host_id, status__in=LIVE)
    if ids is not None:
        captures = captures.filter(pk__in=list(ids))
    ended = []
    now = timezone.now()
    for capture in captures.exclude(pk__in=list(keep)):
        running = capture.status == Capture.Status.RUNNING
        capture.status = Capture.Status.STOPPED if running else Capture.Status.FAILED
        capture.reason = Capture.Reason.STOPPED if running else Capture.Reason.ERROR
        capture.error = capture.error or (AGENT_GONE if running else AGENT_GONE_PENDING)
        capture.finished = now
        capture.save(update_fields=["status", "reason", "error", "finished"])
        ended.append(capture)
    return ended
