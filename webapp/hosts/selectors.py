"""Reads about hosts."""

from __future__ import annotations

from django.db.models import QuerySet

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


def host_token_current(*, host_id: int, token_hash: str) -> bool:
    """Whether a host still has this token: it was neither rotated nor revoked since."""
    return Host.objects.filter(id=host_id, token_hash=token_hash, revoked_at__isnull=True).exists()


def hosts_online_count() -> int:
    """How many hosts have an agent connected now."""
    return Host.objects.filter(online=True, revoked_at__isnull=True).count()
