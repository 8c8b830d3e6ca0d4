"""Reads about captures: one or the list, their rows, their file (chunk by chunk), its download name,
and which namespaces and interfaces a host's last known state offers to capture on."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from typing import IO, Any

from django.db.models import QuerySet

from webapp.captures.models import Capture, CaptureChunk, CapturePacket
from webapp.errors import NotFound
from webapp.topology.selectors import topology_list

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def capture_get(*, capture_id: str) -> Capture:
    """The capture with that id (with its host), or NotFound."""
    try:
        key = uuid.UUID(str(capture_id))
    except ValueError:
        raise NotFound(f"no capture with id {capture_id!r}") from None
    capture = Capture.objects.select_related("host", "requested_by").filter(pk=key).first()
    if capture is None:
        raise NotFound(f"no capture with id {capture_id}")
    return capture


def capture_list(*, host: str | None = None, limit: int = 100) -> QuerySet[Capture]:
    """The newest captures first (of one host, if named)."""
    captures = Capture.objects.select_related("host", "requested_by")
    if host:
        captures = captures.filter(host__name=host)
    return captures.order_by("-created")[:limit]


def capture_rows(*, capture: Capture, after: int | None = None, limit: int = 1000) -> list[CapturePacket]:
    """Rows of the table: those after frame number `after`, the first `limit` of them; without
    `after`, the last `limit` rows. In frame order either way."""
    rows = CapturePacket.objects.filter(capture=capture)
    if after is not None:
        return list(rows.filter(number__gt=after).order_by("number")[:limit])
    return list(reversed(rows.order_by("-number")[:limit]))


def capture_chunk_ids(*, capture: Capture) -> list[int]:
    """The ids of the file's chunks, in file order (read each with capture_chunk_data)."""
    return list(CaptureChunk.objects.filter(capture=capture).order_by("offset").values_list("id", flat=True))


def capture_chunk_data(*, chunk_id: int) -> bytes:
    return bytes(CaptureChunk.objects.values_list("data", flat=True).get(pk=chunk_id))


def capture_file_chunks(*, capture: Capture) -> Iterator[bytes]:
    """The file's bytes, one stored chunk at a time (a chunk is at most 4 MiB)."""
    for chunk_id in capture_chunk_ids(capture=capture):
        yield capture_chunk_data(chunk_id=chunk_id)


def capture_file_write(*, capture: Capture, out: IO[bytes]) -> int:
    """Write the file's bytes so far to `out`; how many."""
    written = 0
    for data in capture_file_chunks(capture=capture):
        out.write(data)
        written += len(data)
    return written


def capture_filename(capture: Capture) -> str:
    """`<host>-<namespace>-<interface>-<time>.pcapng` (interfaces joined with '+', time UTC, only
    characters every file system and shell takes)."""
    when = capture.started or capture.created
    parts = [capture.host.name, capture.namespace, "+".join(capture.interfaces), f"{when:%Y%m%dT%H%M%SZ}"]
    return "-".join(_UNSAFE.sub("_", part) for part in parts) + ".pcapng"


def capture_targets() -> dict[str, dict[str, list[str]]]:
    """Host → namespace → its interface names, from each host's last known state (for the form)."""
    targets: dict[str, dict[str, list[str]]] = {}
    for record in topology_list():
        targets[record.host] = host_interfaces(record.state)
    return targets


def host_interfaces(state: dict[str, Any]) -> dict[str, list[str]]:
    """Namespace → sorted interface names of a host's state (namespaces without links included)."""
    found: dict[str, set[str]] = {}
    for namespace in state.get("namespaces", {}).values():
        found.setdefault(namespace["name"], set())
    for link in state.get("links", {}).values():
        found.setdefault(link["netns"], set()).add(link["name"])
    return {name: sorted(found[name]) for name in sorted(found, key=lambda n: (n != "host", n))}
