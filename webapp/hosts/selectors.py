"""Reads about hosts, and about the agent this server offers them (the zipapp `make agent` builds)."""

from __future__ import annotations

import datetime
import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from webapp.errors import NotFound
from webapp.hosts.models import Host


def host_list() -> QuerySet[Host]:
    """Every host, revoked ones included, by name."""
    return Host.objects.all()


def host_get(*, name: str) -> Host:
    """The host of that name, revoked or not."""
    host = Host.objects.filter(name=name).first()
    if host is None:
        raise NotFound(f"no host named {name!r}")
    return host


def host_exists(*, name: str) -> bool:
    return Host.objects.filter(name=name).exists()


def host_token_current(*, host_id: int, token_hash: str) -> bool:
    """Whether a host still has this token: it was neither rotated nor revoked since."""
    return Host.objects.filter(id=host_id, token_hash=token_hash, revoked_at__isnull=True).exists()


LEASE_RENEWALS = 3  # a connection renews its host's presence lease this many times per lease period


def lease_period() -> datetime.timedelta:
    """How long a host counts as online after its agent's connection last renewed the lease
    (settings.AGENT_LEASE)."""
    return datetime.timedelta(seconds=settings.AGENT_LEASE)


def lease_renew_interval() -> float:
    """Seconds between two renewals of a lease by its connection, and between two looks at the
    leases by a worker's presence watch (webapp.topology.presence)."""
    return settings.AGENT_LEASE / LEASE_RENEWALS


def _online() -> Q:
    """The hosts an agent connection holds an unexpired lease for (as Host.online says of one)."""
    return Q(revoked_at__isnull=True, online_until__gt=timezone.now())


def hosts_online_count() -> int:
    """How many hosts have an agent connected now (a lease that has not run out)."""
    return Host.objects.filter(_online()).count()


def hosts_gone() -> list[Host]:
    """Hosts whose agent was heard from but holds no lease now (it left, its lease ran out, or the
    host was revoked), with their name, last_seen and agent_version."""
    return list(
        Host.objects.filter(last_seen__isnull=False)
        .exclude(_online())
        .only("name", "last_seen", "agent_version", "revoked_at", "online_until")
    )


AGENT_PYZ = Path(settings.BASE_DIR) / "dist" / "switchboard-agent.pyz"
AGENT_UNIT = Path(settings.BASE_DIR) / "deploy" / "switchboard-agent.service"


@dataclass(frozen=True)
class AgentArchive:
    """The built agent as the page shows it."""

    name: str
    size: int
    sha256: str


def agent_archive() -> AgentArchive | None:
    """The built zipapp's name, size and sha256, or None when it has not been built."""
    try:
        stat = AGENT_PYZ.stat()
    except FileNotFoundError:
        return None
    return _digest(AGENT_PYZ, stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=4)
def _digest(path: Path, mtime_ns: int, size: int) -> AgentArchive:
    """Hash the archive once per version of the file (keyed by its mtime and size)."""
    with path.open("rb") as fh:
        sha256 = hashlib.file_digest(fh, "sha256").hexdigest()
    return AgentArchive(name=path.name, size=size, sha256=sha256)
