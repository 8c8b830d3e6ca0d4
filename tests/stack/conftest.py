"""Fixtures for whole-stack tests: real daphne workers, the real agent, Redis and PostgreSQL.

Each test module migrates one SQLite database (plus a user and two hosts with tokens, made with the
real management commands); each test works on a copy of it, inside its own throwaway namespace.
`make_stack()` gives a test its stack; everything it starts is stopped at teardown, also on failure.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from tests.conftest import HostNs
from tests.stack.harness import (
    PYTHON,
    REPO,
    UNPRIVILEGED,
    Cleanups,
    Stack,
    base_env,
    chown,
    make_tmpdir,
    remove_tree,
    sqlite_url,
    start_redis,
)

HOSTS = ("alpha", "beta")  # hosts made in every module's database; tests make more when they need them
USER = "op"  # an operator


@dataclass(frozen=True)
class DbTemplate:
    path: Path
    user_token: str
    host_tokens: dict[str, str]


def _last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def db_template() -> Iterator[DbTemplate]:
    """A migrated SQLite database with an operator and the HOSTS, made once per test module."""
    workdir = make_tmpdir("db")
    db = workdir / "db.sqlite3"
    env = base_env(DATABASE_URL=sqlite_url(db), HOME=str(workdir))

    def manage(*args: str) -> str:
        done = subprocess.run(
            [PYTHON, "manage.py", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, f"manage.py {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    try:
        manage("migrate", "--noinput")
        user_token = _last_line(manage("adduser", USER, "--role", "operator"))
        hosts = {name: _last_line(manage("hosttoken", name)) for name in HOSTS}
        yield DbTemplate(path=db, user_token=user_token, host_tokens=hosts)
    finally:
        remove_tree(workdir)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Iterator[pytest.TestReport]:
    """When a test fails, show the end of every log its stack wrote (daphne, agent, redis, ...)."""
    report = yield
    stacks: list[Stack] = getattr(item, "stacks", [])
    if report.failed and stacks:
        for stack in stacks:
            for log in sorted(stack.workdir.glob("*.log")):
                text = log.read_text(errors="replace").splitlines()[-40:]
                report.sections.append((f"stack log {log.name}", "\n".join(text)))
    return report


@pytest_asyncio.fixture
async def make_stack(
    request: pytest.FixtureRequest, host_ns: HostNs, db_template: DbTemplate
) -> AsyncIterator[Callable[..., Stack]]:
    """make_stack(unprivileged=False, redis=False, lease=None): a stack in host_ns on a copy of the
    module's DB.

    unprivileged: daphne and manage.py run as nobody without capabilities, their files owned by
    nobody. redis: a private Redis as the channel layer (REDIS_URL). lease: the web workers' host
    presence lease in seconds (SWITCHBOARD_AGENT_LEASE). The agent always runs as root.
    """
    made: list[Stack] = []
    request.node.stacks = made  # for pytest_runtest_makereport
    host_ns.run("ip link set lo up")

    def make(*, unprivileged: bool = False, redis: bool = False, lease: float | None = None) -> Stack:
        owner = "nobody" if unprivileged else None
        workdir = make_tmpdir("run", owner=owner)
        cleanups = Cleanups()
        cleanups.add(lambda: remove_tree(workdir))
        db = workdir / "db.sqlite3"
        shutil.copy(db_template.path, db)
        if owner:
            chown(db, owner)
        stack = Stack(
            ns=host_ns,
            workdir=workdir,
            db_url=sqlite_url(db),
            user_token=db_template.user_token,
            host_tokens=dict(db_template.host_tokens),
            cleanups=cleanups,
            user=list(UNPRIVILEGED) if unprivileged else [],
            lease=lease,
        )
        made.append(stack)
        if redis:
            stack.redis_url = start_redis(stack)
        return stack

    try:
        yield make
    finally:
        errors = []
        for stack in reversed(made):
            try:
                await stack.aclose_sockets()
            finally:
                try:
                    stack.cleanups.close()
                except Exception as exc:
                    errors.append(exc)
        if errors:
            raise errors[0]
