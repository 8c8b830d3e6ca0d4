"""`make run` (scripts/run-local.sh): the login is printed last, the password itself only on a terminal;
Ctrl-C or SIGTERM stops it cleanly."""

from __future__ import annotations

import asyncio
import http.client
import os
import pty
import pwd
import re
import signal
import subprocess
import threading
import tty
from pathlib import Path
from urllib.parse import urlencode

import pytest

from tests.stack.harness import REPO, Cleanups, Proc, http_call, ns_connect, until

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


def login(netns_path: str, port: int, username: str, password: str) -> bool:
    """Whether the login form at 127.0.0.1:port (in the namespace at `netns_path`) takes this password."""

    def call(method: str, headers: dict[str, str], body: str | None = None) -> tuple[int, str, str]:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.sock = ns_connect(netns_path, port)
        try:
            conn.request(method, "/accounts/login/", body=body, headers=headers)
            response = conn.getresponse()
            return response.status, response.getheader("Set-Cookie") or "", response.read().decode()
        finally:
            conn.close()

    _, cookies, page = call("GET", {})
    cookie = re.search(r"csrftoken=([^;]+)", cookies)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert cookie and token, page
    form = {"username": username, "password": password, "csrfmiddlewaretoken": token.group(1)}
    headers = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": f"csrftoken={cookie.group(1)}"}
    status, cookies, _ = call("POST", headers, urlencode(form))
    return status == 302 and "sessionid=" in cookies


def start_on_terminal(
    cleanups: Cleanups, args: list[str], *, env: dict[str, str], log: Path
) -> tuple[Proc, threading.Thread]:
    """Like Cleanups.start, with stdout and stderr a terminal (a raw pty: no \\r added), copied to `log`
    by the thread returned, which ends when every process holding the terminal has."""
    master, slave = pty.openpty()
    tty.setraw(slave)
    try:
        popen = subprocess.Popen(
            args,
            cwd=REPO,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=slave,
            stderr=slave,
            start_new_session=True,
        )
    finally:
        os.close(slave)

    def copy() -> None:
        with open(log, "ab", buffering=0) as out:
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: every process that had the terminal is gone
                    break
                if not data:
                    break
                out.write(data)
        os.close(master)

    copier = threading.Thread(target=copy, daemon=True)
    copier.start()
    proc = Proc(name="run-local", popen=popen, log=log)
    cleanups.add(proc.stop)
    return proc, copier


# stdout a pipe (as when `make run` is logged): the password stays out of the output, which says where
# it is kept; on a terminal the password is shown
@pytest.mark.parametrize(
    ("stop", "status", "output_to"), [("sigterm", 0, "pipe"), ("ctrl-c", 130, "terminal")]
)
async def test_make_run_prints_the_login_last_and_stops_cleanly(
    make_stack, stop: str, status: int, output_to: str
) -> None:
    stack = make_stack()
    port = stack.free_port()
    password_file = stack.workdir / "admin-password"
    env = {**stack.env(), "PORT": str(port), "SWITCHBOARD_ADMIN_PASSWORD_FILE": str(password_file)}
    args = ["nsenter", f"--net={stack.ns.path}", "unshare", "--mount", "--propagation", "private"]
    args = [*args, "sh", "-c", PRIVATE_RUN]
    copier = None
    if output_to == "terminal":
        run, copier = start_on_terminal(stack.cleanups, args, env=env, log=stack.log("run"))
    else:
        run = stack.cleanups.start("run-local", args, env=env, log=stack.log("run"))

    def started() -> bool:
        assert run.alive, f"run-local.sh exited ({run.popen.returncode}):\n{run.tail()}"
        return "Ctrl-C stops the web app and the agent." in run.output()

    await until(started, timeout=60, what="run-local.sh's box")
    output = run.output()
    # the box comes after daphne's start-up lines and the agent's connection, and holds the login
    box = output[output.rindex("Switchboard is running") :]
    password = password_file.read_text().strip()
    assert password_file.stat().st_mode & 0o777 == 0o600
    assert password_file.stat().st_uid == os.geteuid()
    shown = re.search(r"^ {4}password: (.+)$", box, re.MULTILINE)
    assert shown, output
    if output_to == "terminal":
        assert shown.group(1) == password
    else:
        owner = pwd.getpwuid(os.geteuid()).pw_name
        assert shown.group(1) == f"in {password_file} (mode 0600, readable by {owner} only)"
        assert password not in output
    assert await asyncio.to_thread(login, stack.ns.path, port, "admin", password)
    assert not await asyncio.to_thread(login, stack.ns.path, port, "admin", password + "x")
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
    if copier:
        await asyncio.to_thread(copier.join, 10)
    output = run.output()
    assert "Traceback" not in output, output
    assert "agent INFO stopped" in output
