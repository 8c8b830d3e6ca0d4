"""Crash consistency: `kill -9` of `python -m netcore apply/destroy` part-way, then apply/destroy again.

Whatever netcore creates carries its mark from the moment it exists (a namespace's `lo` alias and
the extended attribute on its mount point, a link's device group), so after a kill at any moment
the next `apply` converges and the next `destroy` removes everything, with no manual step. The
kill points are found by watching the kernel (namespaces under /run/netns, links in the host
namespace), not by timing.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from netcore import names
from netcore import netns as ns
from netcore import requests as rq
from netcore.errors import AlreadyExists
from netcore.netlink.socket import NetlinkSocket
from netcore.topology import converge, spec, state
from tests.conftest import HostNs, tcp_echo

NODES = 300


def big_topology(topo: str) -> str:
    """300 nodes on one network (three bridge segments), five of them also on a second one, and a route.

    Short node and network names keep every generated interface name within 15 bytes (unhashed).
    """
    lines = [f"name: {topo}", "networks:", "  l: {subnet: 198.18.16.0/22}", "  s: {subnet: 198.18.20.0/24}"]
    lines += ["nodes:"] + [f"  n{i}: {{networks: {'[l, s]' if i < 5 else '[l]'}}}" for i in range(NODES)]
    lines += ["routes:", "  - {node: n0, to: 198.18.30.0/24, via: 198.18.20.254}"]
    return "\n".join(lines) + "\n"


def small_topology(topo: str) -> str:
    return (
        f"name: {topo}\nnetworks:\n  lan: {{subnet: 198.18.24.0/24}}\n"
        "nodes:\n  a: {networks: [lan]}\n  b: {networks: [lan]}\n"
    )


def namespaces(topo: str) -> list[str]:
    return sorted(n for n in os.listdir(ns.NETNS_DIR) if n.startswith(f"{topo}-"))


def host_links(topo: str) -> list[str]:
    """The topology's links in the caller's (the test's host) namespace, from /proc."""
    with open("/proc/thread-self/net/dev") as dev:
        return [line.split(":")[0].strip() for line in dev if line.strip().startswith(f"{topo}-")]


def start(host_ns: HostNs, *args: str) -> subprocess.Popen:
    """`python -m netcore ARGS` in the test's host namespace, running in the background."""
    argv = ["nsenter", f"--net={host_ns.path}", sys.executable, "-m", "netcore", *args]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_when(proc: subprocess.Popen, moment: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """SIGKILL `proc` as soon as `moment()` is true; fail if it ended (or never got there) first."""
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        if moment():
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            return
        time.sleep(0.0005)
    proc.kill()
    out, err = proc.communicate()
    pytest.fail(f"netcore ended (exit {proc.returncode}) before {what}: {out[-500:]} {err[-500:]}")


def assert_everything_marked(topo: str) -> None:
    """Every namespace and host link of the topology that exists carries this topology's mark."""
    sock = NetlinkSocket.open()
    try:
        actual = state.read(topology=topo, host_sock=sock)
    finally:
        sock.close()
    unmarked = [n for n, s in actual.namespaces.items() if not (s.owner and s.owner.topology == topo)]
    unmarked += [n for n in actual.host_links if n.startswith(f"{topo}-") and actual.owned(n) is None]
    assert not unmarked, f"found without the mark of topology {topo}: {unmarked}"


def plan_changes(host_ns: HostNs, path: Path) -> list[dict]:
    done = host_ns.netcore("plan", str(path), "--json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)["changes"]


def test_kill_9_during_apply_and_destroy_then_apply_and_destroy_recover(host_ns, topo, tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text(big_topology(topo))
    try:
        kill_points: list[tuple[str, Callable[[], bool]]] = [
            ("the first namespace exists", lambda: len(namespaces(topo)) >= 1),
            ("100 endpoint veths exist", lambda: len(host_links(topo)) >= 100),
            ("270 namespaces exist", lambda: len(namespaces(topo)) >= 270),
        ]
        for what, moment in kill_points:
            kill_when(start(host_ns, "apply", str(path)), moment, what)
            assert_everything_marked(topo)
        done = host_ns.netcore("apply", str(path))
        assert done.returncode == 0, done.stderr
        assert plan_changes(host_ns, path) == []
        assert len(namespaces(topo)) == NODES
        # n299 sits on the third bridge segment: across segments, and to the gateway on the bridge
        tcp_echo(server_ns=f"{topo}-n0", client_ns=f"{topo}-n299", address="198.18.16.2")
        tcp_echo(server_ns="host", client_ns=f"{topo}-n150", address="198.18.16.1")

        destroying = start(host_ns, "destroy", str(path))
        kill_when(destroying, lambda: len(namespaces(topo)) < 200, "destroy is half-way")
        assert namespaces(topo), "the kill came too late to leave anything behind"
        assert_everything_marked(topo)
        done = host_ns.netcore("destroy", str(path))
        assert done.returncode == 0, done.stderr
        assert namespaces(topo) == []
        assert host_links(topo) == []
    finally:
        host_ns.netcore("destroy", str(path))


# A process that dies between two steps of creating or deleting a namespace: the step is replaced by
# os._exit, which (like SIGKILL) runs no cleanup. The mount point is then left without its namespace.
_DIE_BEFORE_BIND_MOUNT = """
import os, sys
from netcore import netns
real = netns._libc
class Dying:
    def __getattr__(self, name):
        return getattr(real, name)
    def mount(self, source, target, fstype, flags, data):
        if flags == netns._MS_BIND:
            os._exit(9)
        return real.mount(source, target, fstype, flags, data)
netns._libc = Dying()
from netcore.cli import main
main(["apply", sys.argv[1]])
"""

_DIE_BEFORE_UNLINK = """
import os, sys
os.unlink = lambda path: os._exit(9)
from netcore.cli import main
main(["destroy", sys.argv[1]])
"""


def run_dying(host_ns: HostNs, script: str, path: Path) -> None:
    done = host_ns.run([sys.executable, "-c", script, str(path)], check=False)
    assert done.returncode == 9, done.stderr


def test_mount_point_left_by_a_kill_is_recognised_by_its_mark(host_ns, topo, tmp_path):
    path = tmp_path / "small.yaml"
    path.write_text(small_topology(topo))
    try:
        run_dying(host_ns, _DIE_BEFORE_BIND_MOUNT, path)
        (left,) = namespaces(topo)
        assert ns.netns_placeholder_mark(left) == names.owner_alias(topology=topo, role="node", node="a")
        plan = [f"{c['action']} {c['kind']} {c['name']}" for c in plan_changes(host_ns, path)]
        assert f"create namespace {topo}-a" in plan
        assert host_ns.netcore("apply", str(path)).returncode == 0
        assert plan_changes(host_ns, path) == []
        tcp_echo(server_ns=f"{topo}-a", client_ns=f"{topo}-b", address="198.18.24.2")

        run_dying(host_ns, _DIE_BEFORE_UNLINK, path)
        assert ns.netns_placeholder_mark(f"{topo}-a") is not None  # unmounted, not yet unlinked
        assert host_ns.netcore("destroy", str(path)).returncode == 0
        assert namespaces(topo) == [] and host_links(topo) == []
    finally:
        host_ns.netcore("destroy", str(path))


def test_unmarked_or_foreign_mount_point_is_refused(host_ns, topo):
    topology = spec.loads(small_topology(topo))
    target = ns.netns_path(f"{topo}-a")
    for mark in (None, names.owner_alias(topology="other", role="node", node="a")):
        with open(target, "x") as handle:
            if mark:
                os.setxattr(handle.fileno(), ns.OWNER_XATTR, mark.encode())
        try:
            with pytest.raises(AlreadyExists, match=f"namespace file .* {topo}-a already exists and was not"):
                converge.apply(topology)
            assert converge.destroy(topology).changes == ()
            assert os.path.exists(target) and host_links(topo) == []
        finally:
            os.unlink(target)


def test_link_cut_off_before_its_alias_is_adopted_only_with_the_group(host_ns, topo):
    """The kernel ignores an alias in the creating request: the device group is the mark until it follows."""
    topology = spec.loads(small_topology(topo))
    bridge = names.bridge_name(topo, "lan")
    sock = NetlinkSocket.open()
    try:
        sock.run([rq.bridge_create(name=bridge, devgroup=names.owner_group(topo))])
        result = converge.apply(topology)
        assert any(c.name == bridge and "owner alias" in c.detail for c in result.changes)
        assert converge.plan(topology).changes == ()
        converge.destroy(topology)
        for group, alias in ((0, None), (names.owner_group(topo), "someone else's")):
            sock.run([rq.bridge_create(name=bridge, devgroup=group)])
            if alias:
                sock.run([rq.link_set(name=bridge, alias=alias)])
            with pytest.raises(AlreadyExists, match=f"link {bridge} already exists"):
                converge.apply(topology)
            assert converge.destroy(topology).changes == ()
            sock.run([rq.link_delete(name=bridge)])
    finally:
        sock.close()
        converge.destroy(topology)
