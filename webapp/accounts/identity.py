"""Each worker's watch over who its browser sockets are: a socket outlives no revocation.

A websocket is authenticated once, at the handshake. Afterwards its user may be deactivated,
change role, change password or log out, and the API token it came with may be revoked, deleted
or run out. Every worker serving browser sockets therefore looks again, every CHECK_INTERVAL
seconds, at the identities of all of its sockets at once (a few queries, whatever their number),
and sends each socket whose identity no longer stands an `identity.revoked` message with the
reason; the socket tells its browser (a `session.ended` frame) and closes with 4003
(layer.CLOSE_FORBIDDEN), as agent sockets do when their host token is revoked. So a revocation
reaches an open socket within about CHECK_INTERVAL, made through any path (the dashboard, a
command, Django's admin, another worker).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from channels.db import database_sync_to_async
from channels.exceptions import ChannelFull
from channels.layers import get_channel_layer
from django.contrib.auth import HASH_SESSION_KEY, get_user_model
from django.contrib.sessions.models import Session
from django.utils import timezone

from webapp.accounts.models import ApiToken
from webapp.accounts.selectors import user_role

log = logging.getLogger(__name__)

CHECK_INTERVAL = 1.0  # seconds between two looks: a revocation closes a socket within about this


@dataclass(frozen=True)
class Identity:
    """Who a socket was at its handshake, and by which credential."""

    user_id: int
    role: str | None
    token_id: int | None  # the API token it signed in with, or None for a session
    session_key: str | None  # the session it signed in with, or None for a token
    session_hash: str | None  # the session's password hash digest (a password change ends it)


def identity_of(scope: Mapping[str, Any]) -> Identity:
    """The identity of an authenticated socket's scope (reads the user's role)."""
    user = scope["user"]
    token_id = scope.get("api_token")
    session = scope.get("session") if token_id is None else None
    return Identity(
        user_id=user.pk,
        role=user_role(user),
        token_id=token_id,
        session_key=session.session_key if session is not None else None,
        session_hash=session.get(HASH_SESSION_KEY) if session is not None else None,
    )


def identities_revoked(identities: Mapping[str, Identity]) -> dict[str, str]:
    """The sockets (by channel name) whose identity no longer stands, each with the reason."""
    now = timezone.now()
    users = {
        user.pk: user
        for user in get_user_model()
        .objects.filter(pk__in={i.user_id for i in identities.values()})
        .prefetch_related("groups")
    }
    tokens = ApiToken.objects.in_bulk({i.token_id for i in identities.values() if i.token_id is not None})
    keys = {i.session_key for i in identities.values() if i.session_key is not None}
    sessions = set(
        Session.objects.filter(session_key__in=keys, expire_date__gt=now).values_list(
            "session_key", flat=True
        )
    )
    revoked = {}
    for channel, identity in identities.items():
        user = users.get(identity.user_id)
        reason = _user_change(identity, user)
        if reason is None and identity.token_id is not None:
            reason = _token_change(tokens.get(identity.token_id))
        elif reason is None and identity.session_key not in sessions:
            reason = "you logged out, or your session expired"
        if reason is not None:
            revoked[channel] = reason
    return revoked


def _user_change(identity: Identity, user: Any) -> str | None:
    if user is None:
        return "your account was deleted"
    if not user.is_active:
        return "your account was deactivated"
    role = user_role(user)
    if role != identity.role:
        return f"your role changed to {role or 'none'}: reload the page"
    if identity.session_key is not None and identity.session_hash != user.get_session_auth_hash():
        return "your password was changed"
    return None


def _token_change(token: ApiToken | None) -> str | None:
    if token is None:
        return "the API token was deleted"
    if token.revoked_at is not None:
        return "the API token was revoked"
    if token.expired:
        return "the API token expired"
    return None


class IdentityWatch:
    """The identities of one worker's browser sockets, looked at every CHECK_INTERVAL; one per loop."""

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.sockets: dict[str, Identity] = {}
        self.task: asyncio.Task | None = None

    def join(self, channel: str, identity: Identity) -> None:
        self.sockets[channel] = identity
        if self.task is None or self.task.done():
            self.task = asyncio.create_task(self._run())

    def leave(self, channel: str) -> None:
        self.sockets.pop(channel, None)
        if not self.sockets and self.task is not None:
            self.task.cancel()
            self.task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(CHECK_INTERVAL)
            try:
                await self.look()
            except Exception:  # a database hiccup must not end the watch for good
                log.exception("could not check the identities of browser sockets")

    async def look(self) -> None:
        """Check every socket's identity once; tell those revoked."""
        revoked = await database_sync_to_async(identities_revoked)(dict(self.sockets))
        for channel, reason in revoked.items():
            identity = self.sockets.pop(channel, None)
            if identity is None:  # it left meanwhile
                continue
            try:
                await get_channel_layer().send(channel, {"type": "identity.revoked", "reason": reason})
            except ChannelFull:  # that socket is behind on its messages: tell it at the next look
                self.sockets[channel] = identity


_watch: IdentityWatch | None = None


def identity_watch() -> IdentityWatch:
    """This worker's watch (the running event loop's)."""
    global _watch
    if _watch is None or _watch.loop is not asyncio.get_running_loop():
        _watch = IdentityWatch()
    return _watch
