"""Browser sockets follow revocation: each kind closes an open socket within 2 s, with code 4003
after a `session.ended` frame saying why; other users' sockets stay open."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta

import pytest
from channels.db import database_sync_to_async
from channels.testing import WebsocketCommunicator
from django.contrib.auth.models import Group
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from tests.webapp.conftest import Account, Sockets
from webapp.accounts.models import ApiToken, Role
from webapp.accounts.selectors import token_find
from webapp.accounts.services import token_revoke, user_save

pytestmark = [pytest.mark.asyncio, pytest.mark.django_db(transaction=True)]

DEADLINE = 2.0  # seconds: what the issue asks of every kind of revocation


def _deactivate(account: Account) -> None:
    account.user.is_active = False
    account.user.save()


def _delete_token(account: Account) -> None:
    token_find(key=account.token).delete()


def _revoke_token(account: Account) -> None:
    token_revoke(token=token_find(key=account.token))


def _expire_token(account: Account) -> None:
    ApiToken.objects.filter(pk=token_find(key=account.token).pk).update(expires_at=timezone.now())


def _promote(account: Account) -> None:
    user_save(username=account.user.username, role=Role.OPERATOR)


def _demote_by_groups(account: Account) -> None:
    account.user.groups.set([Group.objects.get_or_create(name="nothing")[0]])


async def _ended(ws: WebsocketCommunicator) -> str:
    """The reason of the socket's `session.ended` frame, once it closed with 4003 (within DEADLINE)."""
    async with asyncio.timeout(DEADLINE):
        while True:
            frame = await ws.receive_output(DEADLINE)
            if frame["type"] == "websocket.send" and '"session.ended"' in frame["text"]:
                reason = frame["text"]
            if frame["type"] == "websocket.close":
                assert frame["code"] == 4003
                return reason


@pytest.mark.parametrize(
    ("revoke", "said", "reopens"),
    [
        (_deactivate, "deactivated", False),
        (_delete_token, "token was deleted", False),
        (_revoke_token, "token was revoked", False),
        (_expire_token, "token expired", False),
        (_promote, "role changed to operator", True),  # a new socket gets the new role's view
        (_demote_by_groups, "role changed to none", True),
    ],
)
async def test_a_token_socket_closes_on(
    sockets: Sockets,
    viewer: Account,
    operator: Account,
    revoke: Callable[[Account], None],
    said: str,
    reopens: bool,
) -> None:
    ws = await sockets.browser(viewer.token)
    other = await sockets.browser(operator.token)
    await database_sync_to_async(revoke)(viewer)
    assert said in await _ended(ws)
    assert await other.receive_nothing(timeout=0.5)  # another user's socket stays open
    assert (await sockets.open("/ws/topology/", _bearer(viewer.token)).connect())[0] == reopens


def _bearer(token: str) -> list[tuple[bytes, bytes]]:
    return [(b"authorization", f"Bearer {token}".encode())]


def _login(account: Account) -> Client:
    client = Client()
    client.force_login(account.user)
    return client


def _logout(client: Client, account: Account) -> None:
    client.post("/accounts/logout/")


def _password(client: Client, account: Account) -> None:
    account.user.set_password("a-new-password-123")
    account.user.save()


def _sessions_expire(client: Client, account: Account) -> None:
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))


@pytest.mark.parametrize(
    ("end", "said"),
    [(_logout, "logged out"), (_sessions_expire, "session expired"), (_password, "password was changed")],
)
async def test_a_session_socket_closes_on(
    sockets: Sockets, viewer: Account, end: Callable[[Client, Account], None], said: str
) -> None:
    client = await database_sync_to_async(_login)(viewer)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    ws = sockets.open("/ws/topology/", [(b"cookie", cookie)])
    assert (await ws.connect())[0]
    await database_sync_to_async(end)(client, viewer)
    assert said in await _ended(ws)
