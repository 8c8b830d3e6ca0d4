"""The agent as a host installs it: the zipapp `make agent` builds, run by the system's plain python3."""

from __future__ import annotations

import asyncio
import subprocess
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from netcore.agent.client import REFUSED, REFUSED_BACKOFF_MAX, REFUSED_BACKOFF_START, Backoff
from tests.stack.harness import PYTHON, REPO, agent_connected, log_count, make_tmpdir, remove_tree, until
from tests.stack.scenarios import live

SYSTEM_PYTHON = "/usr/bin/python3"  # Debian's, without the virtualenv's site-packages

# Run by the system's python3 in isolated mode with the archive first on sys.path, as when it runs it.
PROBE = """
import sys
pyz = sys.argv[1]
sys.path.insert(0, pyz)
import netcore.agent.client, websockets, websockets.frames, yaml
assert websockets.__file__.startswith(pyz), websockets.__file__
assert yaml.__file__.startswith(pyz), yaml.__file__  # not Debian's python3-yaml
assert websockets.frames.apply_mask.__module__ == "websockets.utils"  # the pure-Python mask
assert yaml.__with_libyaml__ is False
for name in ("django", "webapp", "psycopg", "channels", "daphne"):
    try:
        __import__(name)
    except ImportError:
        continue
    raise AssertionError(f"{name} can be imported next to the agent")
print("probe ok")
"""


@pytest.fixture(scope="module")
def agent_pyz() -> Iterator[Path]:
    """The zipapp, built by the script `make agent` runs, into a throwaway directory."""
    workdir = make_tmpdir("pyz")
    pyz = workdir / "switchboard-agent.pyz"
    try:
        done = subprocess.run(
            [PYTHON, "scripts/build_agent.py", "--output", str(pyz)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        yield pyz
    finally:
        remove_tree(workdir)


def test_the_zipapp_holds_netcore_and_pure_python_dependencies_only(agent_pyz: Path) -> None:
    names = zipfile.ZipFile(agent_pyz).namelist()
    tops = {name.split("/")[0] for name in names}
    assert {"netcore", "websockets", "yaml", "__main__.py"} <= tops
    assert not tops & {"django", "webapp", "rest_framework", "channels", "daphne", "psycopg", "redis"}
    assert not [n for n in names if n.endswith((".so", ".pyc")) or "__pycache__" in n]
    assert agent_pyz.read_bytes().startswith(b"#!/usr/bin/env python3\n")

    probe = subprocess.run(
        [SYSTEM_PYTHON, "-I", "-c", PROBE, str(agent_pyz)], capture_output=True, text=True, timeout=60
    )
    assert probe.returncode == 0 and "probe ok" in probe.stdout, probe.stdout + probe.stderr


def test_the_zipapp_is_reproducible(agent_pyz: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.pyz"
    subprocess.run([PYTHON, "scripts/build_agent.py", "--output", str(again)], cwd=REPO, check=True)
    assert again.read_bytes() == agent_pyz.read_bytes()


@pytest.mark.asyncio
async def test_the_zipapp_under_plain_python3_brings_its_host_online(make_stack, agent_pyz: Path) -> None:
    stack = make_stack()
    token = stack.host_tokens["alpha"]
    token_file = stack.workdir / "agent.token"
    token_file.touch(mode=0o600)
    token_file.write_text(token + "\n")
    web = stack.start_web()
    agent = stack.start_agent(
        web,
        token=None,
        program=[SYSTEM_PYTHON, "-I", str(agent_pyz)],
        args=["--token-file", str(token_file)],
    )
    await agent_connected(agent)
    browser = await stack.browser(web)
    await live(browser, "alpha")
    assert web.healthz()["agents"] == 1

    cmdline = Path(f"/proc/{agent.pid}/cmdline").read_bytes().split(b"\0")
    assert cmdline[:3] == [SYSTEM_PYTHON.encode(), b"-I", str(agent_pyz).encode()]
    assert not [arg for arg in cmdline if token.encode() in arg]  # the token stays out of `ps`
    assert "readable by others" not in agent.output()


@pytest.mark.asyncio
async def test_a_refused_token_is_said_clearly_and_retried_slowly(make_stack) -> None:
    stack = make_stack()
    web = stack.start_web()
    agent = stack.start_agent(web, token="sbh_" + "x" * 43)
    await until(lambda: log_count(agent, REFUSED) >= 1, timeout=10, what=f"the refusal:\n{agent.tail()}")
    first = time.monotonic()
    await asyncio.sleep(6.0)
    attempts = log_count(agent, "HTTP 403")
    # 2 s, then 4 s (±20 %): at most 3 attempts in the first 6 s; the reconnect backoff of a
    # dropped connection (0.5 s doubling) would have made 4 or 5
    assert 2 <= attempts <= 3, (time.monotonic() - first, agent.tail())
    assert log_count(agent, REFUSED) == attempts  # every attempt says why, in the same words
    assert "[HTTP 403 on the handshake]; retrying in" in agent.output()
    assert agent.alive


@pytest.mark.asyncio
async def test_revoking_a_connected_agent_is_said_clearly(make_stack) -> None:
    stack = make_stack()
    web = stack.start_web()
    agent = stack.start_agent(web, token=stack.host_tokens["alpha"])
    await agent_connected(agent)
    stack.manage("hosttoken", "alpha", "--revoke")
    await until(
        lambda: f"{REFUSED} [close code 4003" in agent.output(),
        what=f"the agent saying its token was revoked:\n{agent.tail()}",
    )
    assert agent.alive


def test_the_refused_backoff_grows_to_five_minutes() -> None:
    backoff = Backoff(start=REFUSED_BACKOFF_START, limit=REFUSED_BACKOFF_MAX)
    delays = [backoff.next() for _ in range(12)]
    assert 1.6 <= delays[0] <= 2.4
    assert all(later > earlier for earlier, later in zip(delays[:5], delays[1:6], strict=True))
    assert all(240 <= d <= 360 for d in delays[-3:])
