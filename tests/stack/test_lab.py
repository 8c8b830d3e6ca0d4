"""A lab of simulated hosts (lab/) against the real daphne, inside the stack's throwaway namespace.

The lab's bridge and relays live in the stack's namespace (`netns_path`), where daphne listens; each
host is its own network, mount, PID and UTS namespace with a real agent. The tests prove that the
hosts come online, reach each other only over the underlay, and that each agent reports its own
host and nothing of the others or of the namespace the lab runs in; and that nothing is left.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
import re
import signal
import subprocess
import time

import pytest

from lab import Lab, LabHost
from netcore.netns import netns_list
from tests.conftest import tcp_echo_at
from tests.stack.harness import PYTHON, REPO, Stack, Web, until

pytestmark = pytest.mark.asyncio

NAMES = ["lab1", "lab2", "lab3"]


def lab_links(stack: Stack) -> list[str]:
    """The lab's links (sblab*) in the stack's namespace."""
    links = json.loads(stack.ns.run("ip -j link show").stdout)
    return sorted(link["ifname"] for link in links if link["ifname"].startswith("sblab"))


def hosts_api(web: Web) -> dict[str, dict]:
    status, body = web.api("GET", "/api/v1/hosts/")
    assert status == 200, body
    return {host["name"]: host for host in body}


def reported(web: Web, name: str) -> dict:
    """The host's state as the dashboard has it (GET /api/v1/topology/?host=NAME)."""
    status, body = web.api("GET", f"/api/v1/topology/?host={name}")
    assert status == 200, body
    (host,) = body["hosts"]
    return host


def namespaces(snapshot: dict) -> dict[str, int]:
    return {ns["name"]: ns["inode"] for ns in snapshot["namespaces"]}


def inode(path: str) -> int:
    return os.stat(path).st_ino


def comms(host: LabHost) -> list[str]:
    """The command names of every process the host's /proc shows (seen from inside the host)."""
    done = host.run(["sh", "-c", "cat /proc/[0-9]*/comm"])
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def processes_in_pid_namespaces(inodes: set[int]) -> list[int]:
    """Pids of the machine's processes that live in one of these PID namespaces."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if os.stat(f"/proc/{pid}/ns/pid").st_ino in inodes:
                found.append(int(pid))
    return found


async def test_a_lab_of_three_hosts_each_reporting_only_itself(make_stack):
    stack = make_stack()
    web = stack.start_web()
    outside = subprocess.Popen(["unshare", "--net", "sleep", "60"])  # a namespace of the lab's own namespace
    stack.cleanups.add(lambda: (outside.kill(), outside.wait()))
    lab = Lab(
        hosts=3,
        port=web.port,
        workdir=stack.workdir,  # the hosts' logs beside daphne's: shown when the test fails
        manage=stack.host_token,
        netns_path=stack.ns.path,
    )
    stack.cleanups.add(lab.stop)
    lab.start()
    lab1, lab2, lab3 = (lab.host(name) for name in NAMES)

    # every host online, under its own hostname (UTS namespace)
    hosts = hosts_api(web)
    assert {n: (hosts[n]["online"], hosts[n]["hostname"]) for n in NAMES} == {n: (True, n) for n in NAMES}
    # each registered with its underlay address: its VTEP in networks spanning hosts
    assert [hosts[n]["underlay"] for n in NAMES] == [f"198.18.254.{10 + i}" for i in (1, 2, 3)]

    # each one reports its own eth0 with its own underlay addresses, and nothing else but lo
    for host in (lab1, lab2, lab3):

        def with_eth0(name: str = host.name) -> dict | None:
            state = reported(web, name)["snapshot"]
            return state if "eth0" in {link["name"] for link in state["links"]} else None

        state = await until(with_eth0, timeout=10, what=f"{host.name}'s eth0 in its reported state")
        assert namespaces(state) == {"host": inode(host.netns)}
        assert sorted(x["name"] for x in state["links"]) == ["eth0", "lo"]
        eth0 = {
            f"{a['address']}/{a['prefixlen']}"
            for a in state["addresses"]
            if a["ifname"] == "eth0" and not ipaddress.ip_address(a["address"]).is_link_local
        }
        assert eth0 == {f"{host.address}/24", f"{host.address6}/64"}
    assert [h.address for h in (lab1, lab2, lab3)] == ["198.18.254.11", "198.18.254.12", "198.18.254.13"]

    # the hosts reach each other over the underlay (real TCP), and the underlay reaches nothing else
    for client, server, address in (
        (lab1, lab2, lab2.address),
        (lab1, lab3, lab3.address),
        (lab3, lab1, lab1.address6),
    ):
        tcp_echo_at(server=server.netns, client=client.netns, address=address)
    stack.ns.run("ip addr add 198.18.254.1/32 dev lo")  # in the lab's namespace, which is not on the underlay
    try:
        with pytest.raises(OSError):
            tcp_echo_at(server=stack.ns.path, client=lab1.netns, address="198.18.254.1", timeout=1)
    finally:
        stack.ns.run("ip addr del 198.18.254.1/32 dev lo")

    # a namespace and a process made in lab2 are lab2's alone
    made = lab2.run(["ip", "netns", "add", "probe"])
    assert made.returncode == 0, made.stderr
    sleeper = subprocess.Popen([*lab2.nsenter, "unshare", "--net", "sleep", "60"])
    stack.cleanups.add(lambda: (sleeper.kill(), sleeper.wait()))
    probe = inode(lab2.netns_path("probe"))

    def lab2_reports_both() -> dict | None:
        found = namespaces(reported(web, "lab2")["snapshot"])
        return found if probe in found.values() and len(found) == 3 else None

    found = await until(lab2_reports_both, timeout=10, what="lab2 reporting probe and the sleeper's netns")
    assert found["probe"] == probe
    (held,) = [name for name in found if name.startswith("pid:")]
    assert "sleep" in comms(lab2) and "sleep" not in comms(lab1) and "sleep" not in comms(lab3)
    assert set(comms(lab1)) <= {"python", "sh", "cat"}, comms(lab1)  # its init, its agent, this command

    # nothing of lab2, of the stack's namespace or of the machine is in lab1's or lab3's reports
    foreign = {probe, found[held], inode(stack.ns.path), inode(f"/proc/{outside.pid}/ns/net")}
    with contextlib.suppress(OSError):
        foreign.add(inode("/proc/1/ns/net"))  # the machine's own
    for host in (lab1, lab3):
        state = reported(web, host.name)["snapshot"]
        assert namespaces(state) == {"host": inode(host.netns)}, state["namespaces"]
        assert not foreign & set(namespaces(state).values())
        assert {a["address"] for a in state["addresses"]} & {lab2.address, lab2.address6} == set()

    # an agent of the machine (any netcore here) leaves the lab hosts' namespaces to their agents (each
    # marked its host: netns.AGENT_MARK), and still sees a namespace only a process of the machine holds
    machine = {info.inode for info in netns_list(processes=True)}
    assert not {inode(h.netns) for h in (lab1, lab2, lab3)} & machine
    assert found[held] not in machine and inode(f"/proc/{outside.pid}/ns/net") in machine

    # stopped: no link, no process and no namespace of the lab is left
    pid_namespaces = {inode(f"/proc/{h.pid}/ns/pid") for h in (lab1, lab2, lab3)}
    assert lab_links(stack) == ["sblab0", "sblab1", "sblab2", "sblab3"]
    lab.stop()
    assert lab_links(stack) == []
    assert processes_in_pid_namespaces(pid_namespaces) == []
    assert not any(os.path.exists(f"/proc/{h.pid}") for h in (lab1, lab2, lab3))
    sleeper.wait(5)  # it was in lab2: gone with it
    hosts = hosts_api(web)
    assert [hosts[n]["online"] for n in NAMES] == [False] * 3


def lab_command(stack: Stack, directory, *args: str) -> subprocess.CompletedProcess:
    """`python -m lab ARGS --dir DIRECTORY` inside the stack's namespace, with its database."""
    return subprocess.run(
        ["nsenter", f"--net={stack.ns.path}", PYTHON, "-m", "lab", "--dir", str(directory), *args],
        cwd=REPO,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=90,
    )


async def test_lab_up_status_down_and_after_a_killed_supervisor(make_stack):
    stack = make_stack()
    web = stack.start_web()
    state = stack.workdir / "labstate"
    stack.cleanups.add(lambda: lab_command(stack, state, "down"))  # whatever happens below
    up = ["up", "--hosts", "2", "--port", str(web.port)]

    started = lab_command(stack, state, *up)
    assert started.returncode == 0, started.stdout + started.stderr
    lines = [line for line in started.stdout.splitlines() if re.match(r"lab\d+ ", line)]
    assert [line.split()[:3] for line in lines] == [
        ["lab1", "198.18.254.11/24", "fd00:254::11/64"],
        ["lab2", "198.18.254.12/24", "fd00:254::12/64"],
    ], started.stdout
    pids = [json.loads((state / "lab.json").read_text())["hosts"][i]["pid"] for i in (0, 1)]
    assert f"/proc/{pids[0]}/ns/net" in lines[0] and f"nsenter --target {pids[0]} --net" in lines[0]
    online = {n: h["online"] for n, h in hosts_api(web).items() if n.startswith("lab")}
    assert online == {"lab1": True, "lab2": True}

    again = lab_command(stack, state, *up)
    assert again.returncode == 1 and "already runs" in again.stderr, again.stderr
    status = lab_command(stack, state, "status")
    assert status.returncode == 0 and "lab1" in status.stdout and "lab2" in status.stdout, status.stdout

    stopped = lab_command(stack, state, "down")
    assert stopped.returncode == 0, stopped.stdout + stopped.stderr
    assert lab_links(stack) == [] and not any(os.path.exists(f"/proc/{p}") for p in pids)
    assert {n: (h["online"], h["revoked"]) for n, h in hosts_api(web).items() if n.startswith("lab")} == {
        "lab1": (False, True),
        "lab2": (False, True),
    }
    assert not (state / "lab.pid").exists() and not (state / "lab.json").exists()
    assert lab_command(stack, state, "status").returncode == 1

    # a supervisor killed with SIGKILL takes its hosts with it and leaves only the underlay's bridge
    started = lab_command(stack, state, *up)
    assert started.returncode == 0, started.stdout + started.stderr
    supervisor = int((state / "lab.pid").read_text())
    pids = [h["pid"] for h in json.loads((state / "lab.json").read_text())["hosts"]]
    os.kill(supervisor, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while any(os.path.exists(f"/proc/{p}") for p in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not any(os.path.exists(f"/proc/{p}") for p in pids)
    await until(lambda: lab_links(stack) == ["sblab0"], timeout=5, what="the hosts' veths to go with them")
    assert "left behind" in lab_command(stack, state, "status").stdout
    cleaned = lab_command(stack, state, "down")
    assert cleaned.returncode == 0, cleaned.stdout + cleaned.stderr
    assert "removed sblab0" in cleaned.stdout and "revoked lab1, lab2" in cleaned.stdout, cleaned.stdout
    assert lab_links(stack) == []
    assert [hosts_api(web)[n]["revoked"] for n in ("lab1", "lab2")] == [True, True]
