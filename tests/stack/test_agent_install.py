"""The agent as a host installs it: the zipapp `make agent` builds, run by the system's plain python3,
installed by the commands the Hosts page shows, and its systemd unit."""

from __future__ import annotations

import asyncio
import shlex
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import pytest

from netcore.agent.client import REFUSED, REFUSED_BACKOFF_MAX, REFUSED_BACKOFF_START, Backoff
from tests.stack.harness import PYTHON, REPO, agent_connected, log_count, until
from tests.stack.scenarios import live
from webapp.hosts.selectors import AGENT_PYZ, AGENT_UNIT, agent_archive
from webapp.hosts.views import install_command

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
def agent_pyz() -> Path:
    """The zipapp as `make agent` builds it (dist/switchboard-agent.pyz: the file the web app serves)."""
    done = subprocess.run(
        [PYTHON, "scripts/build_agent.py", "--output", str(AGENT_PYZ)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return AGENT_PYZ


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


@pytest.mark.asyncio
async def test_the_install_commands_of_the_hosts_page_work_as_written(make_stack, agent_pyz: Path) -> None:
    """The commands run by a plain root shell bring the host online (paths moved under a test directory)."""
    stack = make_stack()
    web = stack.start_web()
    token = stack.host_tokens["alpha"]
    root = stack.workdir / "host"
    moved = {
        "/usr/local/lib/switchboard": root / "lib",
        "/etc/switchboard": root / "etc",
        "/etc/systemd/system": root / "systemd",
    }
    moved["/etc/systemd/system"].mkdir(parents=True)  # there on any systemd host

    def relocate(text: str) -> str:
        for real, test in moved.items():
            text = text.replace(real, str(test))
        return text

    archive = agent_archive()
    assert archive is not None
    base_url, ws_url = f"http://127.0.0.1:{web.port}", web.agent_url
    command = install_command(base_url=base_url, ws_url=ws_url, host="alpha", token=token, archive=archive)
    command = relocate(command).replace("systemctl ", ": systemctl ")  # no systemd to talk to here
    clean = ["env", "-i", "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root"]
    done = await asyncio.to_thread(stack.ns.run, [*clean, "sh", "-c", command], check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{moved['/usr/local/lib/switchboard']}/switchboard-agent.pyz: OK" in done.stdout

    token_file = moved["/etc/switchboard"] / "agent.token"
    assert token_file.read_text() == token + "\n"
    assert token_file.stat().st_mode & 0o777 == 0o600
    assert (moved["/etc/switchboard"] / "agent.env").read_text() == f"SWITCHBOARD_AGENT_URL={web.agent_url}\n"
    unit = (moved["/etc/systemd/system"] / "switchboard-agent.service").read_text()
    assert unit == AGENT_UNIT.read_text()

    exec_start = next(line for line in unit.splitlines() if line.startswith("ExecStart="))
    program = shlex.split(relocate(exec_start.removeprefix("ExecStart=")))
    agent = stack.start_agent(web, token=None, program=program)
    await agent_connected(agent)
    browser = await stack.browser(web)
    await live(browser, "alpha")


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")
def test_the_systemd_unit_is_valid() -> None:
    done = subprocess.run(
        ["systemd-analyze", "verify", str(AGENT_UNIT)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    unit = AGENT_UNIT.read_text()
    env_file = "EnvironmentFile=/etc/switchboard/agent.env"
    for line in ("Restart=on-failure", "RestartPreventExitStatus=2", env_file):
        assert line in unit.splitlines(), line
    assert "--token-file /etc/switchboard/agent.token" in unit
