"""netcore.netns against the real kernel: create, delete, list and the namespace netcore calls "host"."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from netcore import netns as ns
from netcore.errors import AlreadyExists, NotFound


def inode_of(path: str) -> int:
    return os.stat(path).st_ino


def ip_netns_names(host_ns) -> set[str]:
    out = host_ns.run("ip -j netns list").stdout.strip()
    return {x["name"] for x in json.loads(out)} if out else set()


@pytest.fixture
def cleanup():
    """Names added to the returned list are removed with `ip netns del` after the test."""
    names: list[str] = []
    yield names
    for name in names:
        subprocess.run(["ip", "netns", "del", name], check=False, capture_output=True)


@pytest.fixture
def process_in(host_ns):
    """process_in(argv) starts a process; it is killed after the test."""
    procs: list[subprocess.Popen] = []

    def start(argv: list[str]) -> subprocess.Popen:
        proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def wait_for_netns_inode(pid: int, *, not_equal: int, timeout: float = 5.0) -> int:
    """The inode of pid's network namespace once it has left the one with inode `not_equal`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        inode = inode_of(f"/proc/{pid}/ns/net")
        if inode != not_equal:
            return inode
        time.sleep(0.01)
    raise AssertionError(f"process {pid} never left namespace {not_equal}")


def test_create_exists_delete(host_ns, topo, cleanup):
    name = f"{topo}-a"
    cleanup.append(name)
    assert not ns.netns_exists(name)
    ns.netns_create(name=name)
    assert ns.netns_exists(name)
    assert name in ip_netns_names(host_ns)
    # a namespace of its own, not the one the test runs in, with only lo (down) as `ip netns add` leaves it
    assert inode_of(ns.netns_path(name)) != inode_of(host_ns.path)
    links = json.loads(host_ns.run(f"ip -n {name} -j link show").stdout)
    assert [(x["ifname"], x["operstate"]) for x in links] == [("lo", "DOWN")]

    ns.netns_delete(name=name)
    assert not ns.netns_exists(name)
    assert name not in ip_netns_names(host_ns)
    assert not os.path.exists(ns.netns_path(name))


def test_created_namespace_is_usable_by_iproute2(host_ns, topo, cleanup):
    name = f"{topo}-a"
    cleanup.append(name)
    ns.netns_create(name=name)
    host_ns.run(f"ip -n {name} link add {topo}br type bridge")
    links = json.loads(host_ns.run(f"ip -n {name} -j link show").stdout)
    assert sorted(x["ifname"] for x in links) == sorted(["lo", f"{topo}br"])
    ns.netns_delete(name=name)


def test_create_twice_is_already_exists_and_keeps_the_first(host_ns, topo, cleanup):
    name = f"{topo}-a"
    cleanup.append(name)
    ns.netns_create(name=name)
    first = inode_of(ns.netns_path(name))
    with pytest.raises(AlreadyExists, match=f"namespace {name} already exists"):
        ns.netns_create(name=name)
    assert inode_of(ns.netns_path(name)) == first
    ns.netns_delete(name=name)


def test_create_many_rolls_back_when_one_fails(host_ns, topo, cleanup):
    taken, fresh = f"{topo}-taken", f"{topo}-fresh"
    cleanup.extend([taken, fresh])
    ns.netns_create(name=taken)
    with pytest.raises(AlreadyExists, match=taken):
        ns.netns_create_many([fresh, taken])
    assert not ns.netns_exists(fresh)
    assert ns.netns_exists(taken)
    ns.netns_delete(name=taken)


def test_delete_missing_is_not_found(host_ns, topo):
    with pytest.raises(NotFound, match=f"namespace {topo}-nope does not exist"):
        ns.netns_delete(name=f"{topo}-nope")
    ns.netns_delete_many([f"{topo}-nope"], missing_ok=True)


def test_list_has_host_first_then_named(host_ns, topo, cleanup):
    names = [f"{topo}-b", f"{topo}-a"]
    cleanup.extend(names)
    for name in names:
        ns.netns_create(name=name)
    listed = ns.netns_list(processes=False)
    assert listed[0].name == "host" and listed[0].kind == "host"
    assert listed[0].inode == inode_of("/proc/thread-self/ns/net") == inode_of(host_ns.path)
    by_name = {i.name: i for i in listed}
    for name in names:
        assert by_name[name].kind == "named"
        assert by_name[name].inode == inode_of(ns.netns_path(name))
        assert by_name[name].path == ns.netns_path(name)
    # the namespace the test runs in is "host", never listed a second time under its /run/netns name
    assert host_ns.name not in by_name
    inodes = [i.inode for i in listed]
    assert len(inodes) == len(set(inodes))
    for name in names:
        ns.netns_delete(name=name)
    assert not {i.name for i in ns.netns_list(processes=False)} & set(names)


def test_list_finds_a_namespace_held_only_by_a_process(host_ns, process_in):
    proc = process_in(["unshare", "--net", "sleep", "30"])
    inode = wait_for_netns_inode(proc.pid, not_equal=inode_of(host_ns.path))
    matches = [i for i in ns.netns_list() if i.inode == inode]
    assert len(matches) == 1
    [found] = matches
    assert found.kind == "process"
    assert found.name == f"pid:{proc.pid}"
    assert found.path == f"/proc/{proc.pid}/ns/net"
    assert ns.netns_resolve(f"pid:{proc.pid}") == found
    # without processes it is not there
    assert inode not in {i.inode for i in ns.netns_list(processes=False)}


def test_list_deduplicates_a_named_namespace_a_process_sits_in(host_ns, topo, cleanup, process_in):
    name = f"{topo}-a"
    cleanup.append(name)
    ns.netns_create(name=name)
    proc = process_in(["ip", "netns", "exec", name, "sleep", "30"])
    wait_for_netns_inode(proc.pid, not_equal=inode_of(host_ns.path))
    assert inode_of(f"/proc/{proc.pid}/ns/net") == inode_of(ns.netns_path(name))
    listed = ns.netns_list()
    same = [i for i in listed if i.inode == inode_of(ns.netns_path(name))]
    assert [(i.name, i.kind) for i in same] == [(name, "named")]
    assert f"pid:{proc.pid}" not in {i.name for i in listed}
    inodes = [i.inode for i in listed]
    assert len(inodes) == len(set(inodes))
    proc.kill()
    proc.wait()
    ns.netns_delete(name=name)


def test_host_is_the_callers_namespace_under_nsenter(host_ns):
    code = (
        "import json; from netcore.netns import netns_list; "
        "print(json.dumps([[i.name, i.inode, i.kind] for i in netns_list(processes=False)]))"
    )
    result = host_ns.run([sys.executable, "-c", code])
    listed = json.loads(result.stdout)
    assert listed[0] == ["host", inode_of(host_ns.path), "host"]
    assert host_ns.name not in {name for name, _, _ in listed}


def test_a_mark_is_on_lo_and_on_the_mount_point_from_the_start(host_ns, topo, cleanup):
    name = f"{topo}-m"
    cleanup.append(name)
    mark = f"switchboard:{topo}:node:node=m"
    ns.netns_create(name=name, mark=mark)
    (lo,) = json.loads(host_ns.run(f"ip -n {name} -j -d link show lo").stdout)
    assert lo["ifalias"] == mark and lo["operstate"] == "DOWN"
    assert ns.netns_placeholder_mark(name) is None  # a namespace is mounted there: not a leftover
    # what a kill between umount and unlink leaves: the mount point, still carrying the mark
    host_ns.run(f"umount {ns.netns_path(name)}")
    assert ns.netns_placeholder_mark(name) == mark
    with pytest.raises(AlreadyExists, match=f"namespace {name} already exists"):
        ns.netns_create(name=name, mark=mark)
    ns.netns_delete(name=name)
    assert not os.path.lexists(ns.netns_path(name))


def test_creating_a_marked_namespace_over_a_taken_name_leaves_the_other_alone(host_ns, topo, cleanup):
    name = f"{topo}-t"
    cleanup.append(name)
    ns.netns_create(name=name)
    with pytest.raises(AlreadyExists):
        ns.netns_create(name=name, mark=f"switchboard:{topo}:node:node=t")
    # the mount point was never named: nothing else of ours appeared
    assert [n for n in os.listdir(ns.NETNS_DIR) if n.startswith(topo)] == [name]
    (lo,) = json.loads(host_ns.run(f"ip -n {name} -j -d link show lo").stdout)
    assert "ifalias" not in lo
    ns.netns_delete(name=name)
