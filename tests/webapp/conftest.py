"""Fixtures for the web app: users per role, hosts with tokens, and websocket/HTTP clients on the ASGI app.

Every test gets a fresh in-memory channel layer, and the timers that pace persistence and fallbacks
are shortened so the suite stays fast.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest
import pytest_asyncio
from channels.db import database_sync_to_async
from channels.testing import HttpCommunicator, WebsocketCommunicator
from django.contrib.auth.models import AbstractUser
from django.utils import timezone
from rest_framework.test import APIClient

from netcore.model import Link
from webapp.accounts.models import Role
from webapp.accounts.services import token_create, user_save
from webapp.asgi import application
from webapp.hosts import consumers as agent_consumers
from webapp.hosts import services as host_services
from webapp.hosts.models import Host
from webapp.topology import consumers as topology_consumers
from webapp.topology.schema import KINDS, object_check

RECEIVE_TIMEOUT = 3.0


@pytest.fixture(autouse=True)
def _fresh_channel_layer(settings: Any) -> None:
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}


@pytest.fixture(autouse=True)
def _fast_timers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(agent_consumers, "SAVE_INTERVAL", 0.05)
    monkeypatch.setattr(topology_consumers, "STATE_REPLY_TIMEOUT", 0.3)
    monkeypatch.setattr(topology_consumers, "RESYNC_INTERVAL", 0.05)


@dataclass
class Account:
    user: AbstractUser
    token: str

    def api(self) -> APIClient:
        """A DRF test client authenticated with the user's API token."""
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {self.token}")
        return client


def make_account(username: str, role: Role) -> Account:
    user, _ = user_save(username=username, role=role)
    return Account(user=user, token=token_create(owner=user, name="tests")[1])


@pytest.fixture
def viewer() -> Account:
    return make_account("vera", Role.VIEWER)


@pytest.fixture
def operator() -> Account:
    return make_account("otto", Role.OPERATOR)


@pytest.fixture
def admin() -> Account:
    return make_account("ada", Role.ADMIN)


@dataclass
class AgentHost:
    host: Host
    token: str


@pytest.fixture
def make_host() -> Callable[[str], AgentHost]:
    def make(name: str = "h1") -> AgentHost:
        host, token = host_services.host_create(name=name)
        return AgentHost(host=host, token=token)

    return make


def lease_held(host: Host, *, seconds: float = 60.0) -> Host:
    """Give the host a presence lease for `seconds` from now, held by a connection of a worker that is
    gone (nothing renews or ends it: as if that worker died with its agent connected)."""
    host.online_until = timezone.now() + datetime.timedelta(seconds=seconds)
    host.lease_holder = "specific.deadworker!gone"
    host.last_seen = timezone.now()
    host.save(update_fields=["online_until", "lease_holder", "last_seen"])
    return host


def state_with(**kinds: dict[str, dict]) -> dict[str, dict]:
    """A protocol state with the given kinds filled and the rest empty.

    Every object must follow netcore's schema: a fixture that drifts from it fails here.
    """
    for kind, objects in kinds.items():
        assert kind in KINDS, f"unknown kind {kind!r}"
        for obj in objects.values():
            object_check(kind, obj)
    return {**{kind: {} for kind in KINDS}, **kinds}


def link(name: str, index: int, netns: str = "host", *, kind: str | None = "bridge") -> dict[str, Any]:
    """A link exactly as the agent sends it: netcore's own Link, serialised."""
    return Link(
        netns=netns,
        index=index,
        name=name,
        kind=kind,
        mtu=1500,
        mac=f"02:00:00:00:{index >> 8 & 0xFF:02x}:{index & 0xFF:02x}",
        up=True,
        state="up",
        master=None,
        alias=None,
    ).to_dict()


async def receive_type(ws: WebsocketCommunicator, kind: str, *, skip: tuple[str, ...] = ()) -> dict:
    """The next frame, which must be of `kind` once frames of the `skip` types are passed over."""
    while True:
        frame = await ws.receive_json_from(RECEIVE_TIMEOUT)
        if frame["type"] == kind:
            return frame
        assert frame["type"] in skip, f"expected {kind}, got {frame}"


async def eventually(check: Callable[[], Any], *, timeout: float = RECEIVE_TIMEOUT) -> Any:
    """Run a (sync, DB-reading) check until it returns something true."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        result = await database_sync_to_async(check)()
        if result:
            return result
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


@dataclass
class Sockets:
    """Websocket and HTTP clients on the real ASGI application; sockets are closed at teardown."""

    opened: list[WebsocketCommunicator] = field(default_factory=list)

    def open(self, path: str, headers: list[tuple[bytes, bytes]] | None = None) -> WebsocketCommunicator:
        ws = WebsocketCommunicator(application, path, headers=headers or [])
        self.opened.append(ws)
        return ws

    async def agent(
        self, token: str, *, hostname: str = "node1", version: str = "0.1.0"
    ) -> WebsocketCommunicator:
        """An agent that connected and said hello (the welcome is consumed)."""
        ws = self.open("/ws/agent/", [(b"authorization", f"Token {token}".encode())])
        connected, code = await ws.connect()
        assert connected, code
        await ws.send_json_to(
            {"v": 1, "type": "hello", "host": hostname, "agent_version": version, "protocol": 1}
        )
        welcome = await ws.receive_json_from(RECEIVE_TIMEOUT)
        assert welcome["type"] == "welcome", welcome
        return ws

    async def browser(self, token: str) -> WebsocketCommunicator:
        """A browser socket authenticated with a user API token."""
        ws = self.open("/ws/topology/", [(b"authorization", f"Token {token}".encode())])
        connected, code = await ws.connect()
        assert connected, code
        return ws

    async def http(self, method: str, path: str, *, token: str, body: Any = None) -> tuple[int, Any]:
        """An HTTP request through the ASGI app (so sync views run in their own thread, as in daphne)."""
        payload = json.dumps(body).encode() if body is not None else b""
        headers = [
            (b"host", b"testserver"),
            (b"authorization", f"Token {token}".encode()),
            (b"content-type", b"application/json"),
            (b"content-length", str(len(payload)).encode()),
        ]
        response = await HttpCommunicator(
            application, method, path, body=payload, headers=headers
        ).get_response(timeout=10)
        return response["status"], json.loads(response["body"] or b"null")

    async def close_all(self) -> None:
        for ws in self.opened:
            with contextlib.suppress(asyncio.CancelledError):  # the app was already stopped
                await ws.disconnect()


@pytest_asyncio.fixture
async def sockets() -> AsyncIterator[Sockets]:
    opened = Sockets()
    yield opened
    await opened.close_all()


@dataclass(frozen=True)
class PostgresCluster:
    """A PostgreSQL cluster that listens only on a unix socket in `socket_dir`; superuser postgres."""

    socket_dir: Path

    def url(self, database: str) -> str:
        return f"postgres://postgres@/{database}?host={self.socket_dir}"

    def database_create(self) -> str:
        """A new, empty database on the cluster; its DATABASE_URL."""
        name = f"switchboard_{next(_database_numbers)}"
        with psycopg.connect(host=str(self.socket_dir), user="postgres", dbname="postgres") as connection:
            connection.autocommit = True
            connection.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


_database_numbers = itertools.count(1)


def _postgres_bin() -> Path:
    """The newest PostgreSQL server's bin directory, or fail saying how to get one."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        pytest.fail(
            "the PostgreSQL server is not installed (no /usr/lib/postgresql/*/bin/initdb): run `make setup`"
        )
    return found[-1].parent


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    """A throwaway PostgreSQL cluster for the session, stopped and removed at the end.

    PostgreSQL refuses to run as root: the cluster's directory (in /tmp, which the postgres user can
    reach, unlike pytest's) belongs to the postgres user, who runs initdb and the server. No TCP: the
    socket is in that directory. Durability is off; nothing here outlives the session.
    """
    pg_bin = _postgres_bin()
    base = Path(tempfile.mkdtemp(prefix="switchboard-pg-"))
    data = base / "data"
    as_postgres = ["runuser", "-u", "postgres", "--"]

    def run(*args: str) -> None:
        done = subprocess.run(as_postgres + list(args), cwd=base, capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"

    try:
        shutil.chown(base, "postgres", "postgres")
        run(f"{pg_bin}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")
        options = (
            f"-k {base} -c listen_addresses= -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        run(
            f"{pg_bin}/pg_ctl",
            "-D",
            str(data),
            "-l",
            str(base / "log"),
            "-w",
            "-t",
            "30",
            "-o",
            options,
            "start",
        )
        yield PostgresCluster(socket_dir=base)
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run(
                as_postgres + [f"{pg_bin}/pg_ctl", "-D", str(data), "stop", "-m", "immediate", "-w"],
                capture_output=True,
                timeout=30,
            )
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A new, empty database for run_on_database: an SQLite file in the test's directory, or a database
    on the session's PostgreSQL cluster."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/db"
    cluster: PostgresCluster = request.getfixturevalue("postgres")
    return cluster.database_create()


def run_on_database(function: Callable[..., Any], database_url: str, *args: Any) -> Any:
    """Run `function(*args)` (a module-level function of a test module; arguments and result through
    JSON) in a child process on the database at `database_url`, migrated first.

    For concurrency: pytest-django's test database is one connection's, and on SQLite it is in memory
    with a shared cache, where a second writer fails at once ("database table is locked") instead of
    waiting, as it does on a file and on PostgreSQL in a deployment.
    """
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "webapp.settings", "DATABASE_URL": database_url}
    env.pop("REDIS_URL", None)
    name = function.__name__
    script = (
        "import django, json, sys\n"
        "django.setup()\n"
        "from django.test.utils import setup_test_environment\n"
        "setup_test_environment()\n"  # as pytest-django does: the test client's host is allowed
        "from django.core.management import call_command\n"
        "call_command('migrate', verbosity=0)\n"
        f"from {function.__module__} import {name}\n"
        f"print(json.dumps({name}(*json.loads(sys.argv[1]))))\n"
    )
    repo = Path(__file__).resolve().parents[2]
    child = subprocess.run(
        [sys.executable, "-c", script, json.dumps(args)],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    return json.loads(child.stdout.splitlines()[-1])
