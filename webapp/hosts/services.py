"""Writes about hosts: tokens, agent presence, and commands sent to a host's agent."""

from __future__ import annotations

import asyncio
import hashlib
import re
import secrets
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import BaseChannelLayer, get_channel_layer
from django.db import IntegrityError
from django.utils import timezone

from webapp import layer
from webapp.errors import AgentError, CommandFailed, Conflict, HostOffline, InvalidInput
from webapp.hosts.models import Host
from webapp.hosts.selectors import lease_period

TOKEN_PREFIX = "sbh_"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
ACTIONS = ("plan", "apply", "destroy")
ACK_TIMEOUT = 2.0  # seconds a connected agent consumer takes at most to accept a command


def token_hash(token: str) -> str:
    """SHA-256 hex of a host token: the only form stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def _token_new() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def _set_token(host: Host, token: str) -> None:
    host.token_prefix = token[:8]
    host.token_hash = token_hash(token)


def _agent_close(host: Host) -> None:
    """Close the host's live agent connection, if any, on whichever worker holds it."""
    async_to_sync(get_channel_layer().group_send)(layer.agent_group(host.id), {"type": "agent.revoke"})


def host_create(*, name: str) -> tuple[Host, str]:
    """Create a host and its agent token; returns (host, token). The token is not stored."""
    name = name.strip()
    if not NAME_RE.fullmatch(name):
        raise InvalidInput(
            "a host name is 1-63 letters, digits, '.', '_' or '-', starting with a letter or digit",
            field="name",
        )
    if Host.objects.filter(name=name).exists():
        raise Conflict(f"host {name!r} already exists", field="name")
    token = _token_new()
    host = Host(name=name)
    _set_token(host, token)
    try:
        host.save()
    except IntegrityError as err:
        raise Conflict(f"host {name!r} already exists", field="name") from err
    return host, token


def host_token_rotate(*, host: Host) -> str:
    """Give the host a new token (also re-enabling a revoked host); the old one stops working at once."""
    token = _token_new()
    _set_token(host, token)
    host.revoked_at = None
    host.online_until = None  # the connection keeps lease_holder: its disconnect tells browsers
    host.save(update_fields=["token_prefix", "token_hash", "revoked_at", "online_until"])
    _agent_close(host)
    return token


def host_revoke(*, host: Host) -> None:
    """Revoke the host's token and close its live agent connection (code 4003)."""
    host.revoked_at = host.revoked_at or timezone.now()
    host.online_until = None  # the connection keeps lease_holder: its disconnect tells browsers
    host.save(update_fields=["revoked_at", "online_until"])
    _agent_close(host)


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


async def _reply(
    channel_layer: BaseChannelLayer, channel: str, *, command_id: str, types: set[str], timeout: float
) -> dict[str, Any]:
    async with asyncio.timeout(timeout):
        while True:
            message = await channel_layer.receive(channel)
            if message.get("id") == command_id and message["type"] in types:
                return message


async def host_command(*, host: Host, action: str, topology_text: str, timeout: float = 60.0) -> dict:
    """Run plan/apply/destroy of a topology file on the host's agent and return netcore's result.

    Raises HostOffline when no agent is connected (or it leaves before answering), CommandFailed
    with netcore's error when the agent refuses, AgentError when no result comes within `timeout`.
    """
    if action not in ACTIONS:
        raise InvalidInput(f"unknown action {action!r} (use {', '.join(ACTIONS)})", field="action")
    if host.revoked or not host.online:
        raise HostOffline(f"host {host.name!r} has no agent connected")
    channel_layer = get_channel_layer()
    # the default prefix matters with Redis: a worker reads all its own channels through one
    # receive loop, which only wakes for channels of that prefix
    reply = await channel_layer.new_channel()
    command_id = secrets.token_hex(8)
    await channel_layer.group_send(
        layer.agent_group(host.id),
        {
            "type": "agent.command",
            "id": command_id,
            "action": action,
            "topology": topology_text,
            "reply_channel": reply,
        },
    )
    try:
        await _reply(
            channel_layer, reply, command_id=command_id, types={"agent.accepted"}, timeout=ACK_TIMEOUT
        )
    except TimeoutError:
        raise HostOffline(f"host {host.name!r} has no agent connected") from None
    try:
        message = await _reply(
            channel_layer, reply, command_id=command_id, types={"agent.result", "agent.gone"}, timeout=timeout
        )
    except TimeoutError:
        raise AgentError(f"host {host.name!r}: no result for {action} within {timeout:g} s") from None
    if message["type"] == "agent.gone":
        raise HostOffline(f"the agent of host {host.name!r} disconnected before answering")
    if message["ok"]:
        return message["result"]
    raise CommandFailed(message["error"])
