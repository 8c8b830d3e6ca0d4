"""Writes about hosts: tokens and agent presence."""

from __future__ import annotations

import ipaddress
import re
import secrets
import string
from collections.abc import Mapping
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.utils import timezone

from netcore import names
from netcore.names import excerpt
from webapp import layer
from webapp.accounts.tokens import token_hash  # one hash for user and host tokens: only it is stored
from webapp.audit.services import audit_record, refusals_audited
from webapp.errors import Conflict, InvalidInput
from webapp.hosts.models import Host
from webapp.hosts.selectors import lease_period

TOKEN_PREFIX = "sbh_"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
NAME_CHARACTERS = string.ascii_letters + string.digits + "._-"


def _token_new() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _set_token(host: Host, token: str) -> None:
    host.token_prefix = token[:8]
    host.token_hash = token_hash(token)


def _agent_close(host: Host) -> None:
    """Close the host's live agent connection, if any, on whichever worker holds it."""
    async_to_sync(get_channel_layer().group_send)(layer.agent_group(host.id), {"type": "agent.revoke"})


def _audited_new(kwargs: Mapping[str, Any]) -> tuple[str, str, str]:
    name = str(kwargs.get("name", "")).strip()
    return name, name, ""


def _audited(kwargs: Mapping[str, Any]) -> tuple[str, str, str]:
    return kwargs["host"].name, kwargs["host"].name, ""


def _audit(host: Host, action: str, *, user: Any, source: str | None, **details: Any) -> None:
    audit_record(
        action=action,
        object_kind="host",
        host=host.name,
        name=host.name,
        details={"token_prefix": host.token_prefix, **details},
        user=user,
        source=source,
    )


@refusals_audited("host.create", object_kind="host", target=_audited_new)
def host_create(
    *, name: str, user: AbstractBaseUser | AnonymousUser | None = None, source: str | None = None
) -> tuple[Host, str]:
    """Create a host and its agent token; returns (host, token). The token is not stored (its
    first characters are, and the audit log keeps those)."""
    name = name.strip()
    if not NAME_RE.fullmatch(name):
        raise InvalidInput(
            "a host name is 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit"
            + names.first_outside(name, NAME_CHARACTERS),
            field="name",
        )
    if Host.objects.filter(name=name).exists():
        raise Conflict(f"host {name!r} already exists", field="name")
    token = _token_new()
    host = Host(name=name)
    _set_token(host, token)
    try:
        with transaction.atomic():
            host.save()
            _audit(host, "host.create", user=user, source=source)
    except IntegrityError as err:
        raise Conflict(f"host {name!r} already exists", field="name") from err
    return host, token


@refusals_audited("host.token_rotate", object_kind="host", target=_audited)
def host_token_rotate(
    *, host: Host, user: AbstractBaseUser | AnonymousUser | None = None, source: str | None = None
) -> str:
    """Give the host a new token (also re-enabling a revoked host); the old one stops working at once."""
    token = _token_new()
    was_revoked = host.revoked_at is not None
    _set_token(host, token)
    host.revoked_at = None
    host.online_until = None  # the connection keeps lease_holder: its disconnect tells browsers
    with transaction.atomic():
        host.save(update_fields=["token_prefix", "token_hash", "revoked_at", "online_until"])
        _audit(host, "host.token_rotate", user=user, source=source, was_revoked=was_revoked)
    _agent_close(host)
    return token


@refusals_audited("host.revoke", object_kind="host", target=_audited)
def host_revoke(
    *, host: Host, user: AbstractBaseUser | AnonymousUser | None = None, source: str | None = None
) -> None:
    """Revoke the host's token and close its live agent connection (code 4003)."""
    was_revoked = host.revoked_at is not None
    host.revoked_at = host.revoked_at or timezone.now()
    host.online_until = None  # the connection keeps lease_holder: its disconnect tells browsers
    with transaction.atomic():
        host.save(update_fields=["revoked_at", "online_until"])
        _audit(host, "host.revoke", user=user, source=source, was_revoked=was_revoked)
    _agent_close(host)


@refusals_audited("host.underlay", object_kind="host", target=_audited)
def host_underlay_set(
    *,
    host: Host,
    address: str | None,
    user: AbstractBaseUser | AnonymousUser | None = None,
    source: str | None = None,
) -> Host:
    """Set (None or "": clear) the host's underlay address, its VTEP in networks that span hosts.
    Topologies already compiled keep the address they were compiled with until they are saved again."""
    text = (address or "").strip()
    if text:
        try:
            value = ipaddress.ip_address(text)
        except ValueError:
            raise InvalidInput(f"{excerpt(text)} is not an IP address", field="underlay") from None
        if value.is_multicast or value.is_unspecified or value.is_loopback:
            raise InvalidInput(f"{value} is not a unicast address another host can reach", field="underlay")
        text = str(value)
    with transaction.atomic():
        previous = host.underlay
        host.underlay = text or None
        host.save(update_fields=["underlay"])
        _audit(host, "host.underlay", user=user, source=source, underlay=host.underlay, previous=previous)
    return host


def host_authenticate(*, token: str) -> Host | None:
    """The host a token belongs to, or None when unknown or revoked (lookup by hash: constant time)."""
    if not token.startswith(TOKEN_PREFIX):
        return None
    return Host.objects.filter(token_hash=token_hash(token), revoked_at__isnull=True).first()


def host_connected(*, host: Host, holder: str, hostname: str, agent_version: str) -> Host:
    """Record that the host's agent said hello on the connection `holder` (its channel name), which
    takes the host's presence lease over from any earlier connection.

    `hostname` is only what the agent says its machine is called, kept as such: the host is the
    one its token belongs to, whatever name the agent reports (even another host's).
    """
    now = timezone.now()
    host.online_until = now + lease_period()
    host.lease_holder = holder
    host.hostname = hostname[:255]
    host.agent_version = agent_version[:64]
    host.last_seen = now
    host.save(update_fields=["online_until", "lease_holder", "hostname", "agent_version", "last_seen"])
    return host


def host_lease_renew(*, host: Host, holder: str) -> bool:
    """Extend the presence lease the connection `holder` holds by a lease period from now.

    False, changing nothing, when that connection no longer holds it: a newer connection of the
    host took it over, or the token the connection came with was revoked or rotated.
    """
    now = timezone.now()
    until = now + lease_period()
    renewed = Host.objects.filter(
        id=host.id, lease_holder=holder, token_hash=host.token_hash, revoked_at__isnull=True
    ).update(online_until=until, last_seen=now)
    if renewed:
        host.online_until, host.last_seen = until, now
    return bool(renewed)


def host_disconnected(*, host: Host, holder: str) -> Host | None:
    """Record that the agent connection `holder` went away: its lease ends now.

    None, changing nothing, when another connection of the host holds the lease by then.
    """
    now = timezone.now()
    ended = Host.objects.filter(id=host.id, lease_holder=holder).update(
        online_until=None, lease_holder="", last_seen=now
    )
    if not ended:
        return None
    host.online_until, host.lease_holder, host.last_seen = None, "", now
    return host
