"""`make run` (scripts/run-local.sh): the login is printed last; Ctrl-C or SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import signal
from pathlib import Path

import pytest

from tests.stack.harness import http_call, until

pytestmark = pytest.mark.asyncio

# the agent gets an empty /run, as in Stack.start_agent: its host is the test's namespace alone
PRIVATE_RUN = "mount -t tmpfs -o mode=755 sbstack /run && mkdir /run/netns && exec scripts/run-local.sh"


def session_members(sid: int) -> dict[int, str]:
    """pid → command line of every process in session `sid` (run-local.sh and its children)."""
    members = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
        if int(fields[3]) == sid:  # state, ppid, pgrp, session
            members[int(entry.name)] = cmdline
    return members


@pytest.mark.parametrize(("stop", "status"), [("sigterm", 0), ("ctrl-c", 130)])
async def test_make_run_prints_the_login_last_and_stops_cleanly(make_stack, stop: str, status: int) -> None:
    stack = make_stack()
    port = stack.free_port()
    password_file = stack.workdir / "admin-password"
    env = {**stack.env(), "PORT": str(port), "SWITCHBOARD_ADMIN_PASSWORD_FILE": str(password_file)}
    args = ["nsenter", f"--net={stack.ns.path}", "unshare", "--mount", "--propagation", "private"]
    run = stack.cleanups.start("run-local", [*args, "sh", "-c", PRIVATE_RUN], env=env, log=stack.log("run"))

    def started() -> bool:
        assert run.alive, f"run-local.sh exited ({run.popen.returncode}):\n{run.tail()}"
        return "Ctrl-C stops the web app and the agent." in run.output()

    await until(started, timeout=60, what="run-local.sh's box")
    output = run.output()
    # the box comes after daphne's start-up lines and the agent's connection, and holds the password
    box = output[output.rindex("Switchboard is running") :]
    password = re.search(r"^ {4}password: (\S+)$", box, re.MULTILINE)
    assert password, output
    assert password_file.read_text().strip() == password.group(1)
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert "ensureadmin --reset-password" in box
    before = output[: output.rindex("Switchboard is running")]
    assert "Listening on TCP address" in before and '"WSCONNECT /ws/agent/"' in before
    assert http_call(stack.ns.path, port, "GET", "/healthz")[1]["agents"] == 1

    children = session_members(run.pid)
    assert any("daphne" in cmd for cmd in children.values()), children
    assert any("netcore.agent" in cmd for cmd in children.values()), children

    if stop == "sigterm":
        os.kill(run.pid, signal.SIGTERM)  # to the script alone, as `kill PID` or systemd would
    else:
        os.killpg(run.pid, signal.SIGINT)  # to the whole foreground process group, as the terminal does
    assert await asyncio.to_thread(run.popen.wait, 30) == status, run.tail()
    assert session_members(run.pid) == {}, "processes left running"
    output = run.output()
    assert "Traceback" not in output, output
    assert "agent INFO stopped" in output
