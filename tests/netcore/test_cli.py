"""`python -m netcore` as a user runs it: a subprocess inside the test's throwaway host namespace."""

from __future__ import annotations

import json
import os
import re
import selectors
import subprocess
import sys
import time
from pathlib import Path

import pytest

from netcore import names
from tests.conftest import ours, tcp_echo

SUMMARY = re.compile(r"^topology (\S+): (\d+) (?:to create|created), (\d+) (?:to change|changed), (\d+)")


def write_topology(tmp_path: Path, topo: str) -> Path:
    path = tmp_path / f"{topo}.yaml"
    path.write_text(f"""\
name: {topo}
networks:
  lan: {{subnet: 198.18.10.0/24}}
nodes:
  a: {{networks: [lan]}}
  b: {{networks: {{lan: {{address: 198.18.10.20}}}}}}
routes:
  - {{node: a, to: 198.18.11.0/24, via: 198.18.10.254}}
""")
    return path


def node_namespaces(topo: str) -> list[str]:
    return [f"{topo}-a", f"{topo}-b"]


def ours_in_run_netns() -> list[str]:
    """Namespaces of this run other than the fixtures' host namespaces."""
    return sorted(n for n in os.listdir("/run/netns") if ours(n) and not n.startswith("sbt-"))


def host_links(host_ns) -> list[str]:
    return sorted(x["ifname"] for x in json.loads(host_ns.run("ip -j link show").stdout))


def ok(proc: subprocess.CompletedProcess) -> subprocess.CompletedProcess:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc


def test_validate_names_the_topology_and_touches_nothing(host_ns, topo, tmp_path):
    path = write_topology(tmp_path, topo)
    out = ok(host_ns.netcore("validate", str(path))).stdout
    assert any(
        str(path) in line and f"topology {topo}" in line and "valid" in line for line in out.splitlines()
    )
    data = json.loads(ok(host_ns.netcore("validate", "--json", str(path))).stdout)
    assert data["valid"] is True and data["name"] == topo and data["nodes"] == 2 and data["networks"] == 1
    assert data["services"] == 0
    assert host_links(host_ns) == ["lo"] and ours_in_run_netns() == []
    with_service = path.read_text() + "services:\n  web: {network: lan, port: 80, instances: [a]}\n"
    path.write_text(with_service)
    assert "1 service)" in ok(host_ns.netcore("validate", str(path))).stdout
    path.write_text(with_service.replace("instances: [a]", "instances: [nobody]"))
    refused = host_ns.netcore("validate", str(path))
    assert refused.returncode != 0 and "services.web.instances[0].node" in refused.stderr, refused.stderr


def test_plan_lists_changes_and_a_summary(host_ns, topo, tmp_path):
    path = write_topology(tmp_path, topo)
    lines = ok(host_ns.netcore("plan", str(path))).stdout.splitlines()
    changes = [line for line in lines if line.startswith(("+ ", "~ ", "- "))]
    assert all(line.startswith("+ ") for line in changes)
    assert f"+ bridge {topo}-lan" in "\n".join(changes)
    for netns in node_namespaces(topo):
        assert any(line.startswith(f"+ namespace {netns}") for line in changes)
    assert any(line.startswith(f"+ veth {names.host_veth_name(topo, 'b', 'lan')}") for line in changes)
    summary = SUMMARY.match(lines[-1])
    assert summary, lines[-1]
    assert summary.group(1) == topo and int(summary.group(2)) == len(changes)
    assert summary.group(3) == summary.group(4) == "0"

    plan = json.loads(ok(host_ns.netcore("plan", "--json", str(path))).stdout)
    assert plan["topology"] == topo and plan["applied"] is False
    assert plan["counts"] == {"create": len(changes), "update": 0, "delete": 0}
    assert len(plan["changes"]) == len(changes)
    shown = [
        f"+ {c['kind']} {c['name']}" + (f" ({c['detail']})" if c["detail"] else "") for c in plan["changes"]
    ]
    assert shown == changes
    # plan changes nothing
    assert host_links(host_ns) == ["lo"] and ours_in_run_netns() == []


def test_apply_twice_traffic_and_destroy(host_ns, topo, tmp_path):
    path = write_topology(tmp_path, topo)
    planned = json.loads(ok(host_ns.netcore("plan", "--json", str(path))).stdout)
    try:
        applied = json.loads(ok(host_ns.netcore("apply", "--json", str(path))).stdout)
        assert applied["applied"] is True
        assert applied["changes"] == planned["changes"] and applied["counts"] == planned["counts"]
        assert sorted(ours_in_run_netns()) == node_namespaces(topo)

        tcp_echo(server_ns=f"{topo}-b", client_ns=f"{topo}-a", address="198.18.10.20")
        tcp_echo(server_ns="host", client_ns=f"{topo}-b", address="198.18.10.1")

        again = ok(host_ns.netcore("apply", str(path)))
        assert "no changes" in again.stdout
        assert not [line for line in again.stdout.splitlines() if line.startswith(("+ ", "~ ", "- "))]
        again_json = json.loads(ok(host_ns.netcore("apply", "--json", str(path))).stdout)
        assert again_json["changes"] == [] and set(again_json["counts"].values()) == {0}
    finally:
        destroyed = ok(host_ns.netcore("destroy", str(path)))
    removed = [line for line in destroyed.stdout.splitlines() if line.startswith("- ")]
    assert any(line.startswith(f"- namespace {topo}-a") for line in removed)
    assert SUMMARY.match(destroyed.stdout.splitlines()[-1]).group(4) == str(len(removed))
    assert ours_in_run_netns() == []
    assert host_links(host_ns) == ["lo"]
    # destroying again finds nothing
    assert json.loads(ok(host_ns.netcore("destroy", "--json", str(path))).stdout)["changes"] == []


@pytest.fixture
def applied(host_ns, topo, tmp_path):
    path = write_topology(tmp_path, topo)
    ok(host_ns.netcore("apply", str(path)))
    yield path
    ok(host_ns.netcore("destroy", str(path)))


def test_snapshot_json_has_nodes_host_and_resolved_peers(host_ns, topo, applied):
    snap = json.loads(ok(host_ns.netcore("snapshot", "--json")).stdout)
    spaces = {n["name"]: n for n in snap["namespaces"]}
    assert spaces["host"]["kind"] == "host"
    for netns in node_namespaces(topo):
        assert spaces[netns]["kind"] == "named"
    links = {(x["netns"], x["name"]): x for x in snap["links"]}
    for node in ("a", "b"):
        host_side = names.host_veth_name(topo, node, "lan")
        outside = links[("host", host_side)]
        inside = links[(f"{topo}-{node}", "eth0")]
        assert outside["master"] == f"{topo}-lan"
        assert outside["peer"] == {"netns": f"{topo}-{node}", "index": inside["index"], "name": "eth0"}
        assert inside["peer"] == {"netns": "host", "index": outside["index"], "name": host_side}
    addresses = {(a["netns"], a["ifname"], a["address"]) for a in snap["addresses"]}
    assert (f"{topo}-b", "eth0", "198.18.10.20") in addresses
    assert ("host", f"{topo}-lan", "198.18.10.1") in addresses


def test_snapshot_tables_show_host_and_nodes(host_ns, topo, applied):
    out = ok(host_ns.netcore("snapshot", "--named-only")).stdout
    headers = [line for line in out.splitlines() if line.startswith("namespace ")]
    assert any(line.startswith("namespace host (host,") for line in headers)
    for netns in node_namespaces(topo):
        assert any(line.startswith(f"namespace {netns} (named,") for line in headers)
    host_side = names.host_veth_name(topo, "b", "lan")
    # the host's block lists the veth with its bridge and its peer inside the node
    row = next(line for line in out.splitlines() if line.split()[1:2] == [host_side])
    assert f"{topo}-lan" in row.split() and f"{topo}-b:eth0" in row.split()


def test_snapshot_of_one_namespace(host_ns, topo, applied):
    netns = f"{topo}-b"
    snap = json.loads(ok(host_ns.netcore("snapshot", "--json", "--netns", netns)).stdout)
    assert [n["name"] for n in snap["namespaces"]] == [netns]
    for section in ("links", "addresses", "routes", "neighbours", "fdb"):
        assert {x["netns"] for x in snap[section]} <= {netns}, section
    assert {x["name"] for x in snap["links"]} == {"lo", "eth0"}
    assert "198.18.10.20" in {a["address"] for a in snap["addresses"]}

    text = ok(host_ns.netcore("snapshot", "--netns", netns)).stdout
    assert [line.split()[1] for line in text.splitlines() if line.startswith("namespace ")] == [netns]

    missing = f"{topo}-nope"
    failed = host_ns.netcore("snapshot", "--netns", missing)
    assert failed.returncode == 1 and failed.stdout == ""
    assert missing in failed.stderr


def _read_json_lines(proc: subprocess.Popen, *, until, deadline: float, on_idle=None) -> list[dict]:
    """Read JSON lines from proc.stdout until until(event) holds; on_idle() runs every idle half second."""
    selector = selectors.DefaultSelector()
    selector.register(proc.stdout, selectors.EVENT_READ)
    buffer = b""
    seen: list[dict] = []
    try:
        while time.monotonic() < deadline:
            if not selector.select(timeout=0.5):
                if proc.poll() is not None:
                    raise AssertionError(f"watch exited with {proc.returncode}: {proc.stderr.read()!r}")
                if on_idle:
                    on_idle()
                continue
            chunk = os.read(proc.stdout.fileno(), 1 << 16)
            if not chunk:
                raise AssertionError(f"watch closed its output: {proc.stderr.read()!r}")
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                event = json.loads(line)  # every line is JSON: nothing else is printed into --json output
                seen.append(event)
                if until(event):
                    return seen
    finally:
        selector.close()
    raise AssertionError(
        f"not seen in time; last host events: {[e for e in seen if e['netns'] == 'host'][-10:]}"
    )


def test_watch_json_streams_link_events(host_ns, topo):
    probe, va, vb = f"{topo}pr", f"{topo}va", f"{topo}vb"
    proc = subprocess.Popen(
        ["nsenter", f"--net={host_ns.path}", sys.executable, "-u", "-m", "netcore", "watch", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        # watch reports changes from the moment it has loaded every namespace, with no "ready" line: poke a
        # bridge of our own until its change is reported (what existed before is not an event)
        host_ns.run(f"ip link add {probe} type bridge")
        mtu = iter(range(1280, 1500))
        _read_json_lines(
            proc,
            until=lambda e: e["netns"] == "host" and e["object"].get("name") == probe,
            deadline=time.monotonic() + 60,
            on_idle=lambda: host_ns.run(f"ip link set {probe} mtu {next(mtu)}"),
        )
        host_ns.run(f"ip link add {va} type veth peer name {vb}")
        seen = _read_json_lines(
            proc,
            until=lambda e: e["type"] == "link.new" and e["netns"] == "host" and e["object"]["name"] == va,
            deadline=time.monotonic() + 10,
        )
        event = seen[-1]["object"]
        assert event["kind"] == "veth" and event["netns"] == "host"
        assert event["peer"]["name"] == vb
        host_ns.run(f"ip link del {va}")
        _read_json_lines(
            proc,
            until=lambda e: e["type"] == "link.del" and e["netns"] == "host" and e["object"]["name"] == vb,
            deadline=time.monotonic() + 10,
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        host_ns.run(f"ip link del {probe}; ip link del {va}", check=False)


def test_progress_only_on_a_terminal_and_never_in_json(host_ns, topo, tmp_path):
    path = write_topology(tmp_path, topo)

    def apply_with_tty_stderr(*args: str) -> tuple[subprocess.CompletedProcess, str]:
        master, slave = os.openpty()
        try:
            proc = subprocess.run(
                ["nsenter", f"--net={host_ns.path}", sys.executable, "-m", "netcore", *args],
                stdout=subprocess.PIPE,
                stderr=slave,
                text=True,
            )
            os.close(slave)
            slave = -1
            output = b""
            while True:
                try:
                    chunk = os.read(master, 1 << 16)
                except OSError:  # EIO: no writer left
                    break
                if not chunk:
                    break
                output += chunk
            return proc, output.decode()
        finally:
            os.close(master)
            if slave >= 0:
                os.close(slave)

    try:
        # on a terminal the bar is shown...
        proc, tty = apply_with_tty_stderr("apply", str(path))
        ok(proc)
        assert "apply [" in tty and "2/2 nodes" in tty
        assert "[" not in proc.stdout.splitlines()[-1]
        ok(host_ns.netcore("destroy", str(path)))
        # ...but not with --json, even on a terminal, and stdout is pure JSON
        proc, tty = apply_with_tty_stderr("apply", "--json", str(path))
        ok(proc)
        assert "nodes" not in tty and "#" not in tty
        assert json.loads(proc.stdout)["counts"]["create"] > 0
        ok(host_ns.netcore("destroy", str(path)))
        # ...and not when stderr is a pipe
        piped = ok(host_ns.netcore("apply", str(path)))
        assert piped.stderr == ""
    finally:
        ok(host_ns.netcore("destroy", str(path)))


def test_invalid_file_exits_2_naming_it(host_ns, topo, tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text(f"name: {topo}\nnetworks: [unclosed\n")
    missing = tmp_path / "missing.yaml"
    for path in (broken, missing):
        for command in ("validate", "plan", "apply", "destroy"):
            proc = host_ns.netcore(command, str(path))
            assert proc.returncode == 2, (command, path, proc.stderr)
            assert str(path) in proc.stderr and proc.stdout == ""
    assert host_links(host_ns) == ["lo"] and ours_in_run_netns() == []


def test_existing_namespace_not_ours_exits_1(host_ns, topo, tmp_path):
    path = write_topology(tmp_path, topo)
    squatter = f"{topo}-b"
    host_ns.run(f"ip netns add {squatter}")
    try:
        proc = host_ns.netcore("apply", str(path))
        assert proc.returncode == 1, proc.stderr
        assert "already exists" in proc.stderr and squatter in proc.stderr
        # refused before touching anything: no bridge, no other node
        assert host_links(host_ns) == ["lo"]
        assert ours_in_run_netns() == [squatter]
        # and destroy leaves the stranger's namespace alone
        ok(host_ns.netcore("destroy", str(path)))
        assert ours_in_run_netns() == [squatter]
    finally:
        host_ns.run(f"ip netns del {squatter}", check=False)


def test_not_root_is_told_to_run_as_root(host_ns, topo, tmp_path):
    path = write_topology(tmp_path, topo)
    # tmp_path's directories are private to root: the file is opened here and handed over as /dev/fd/N
    # (reopening through /proc checks the file's own permissions, not its directories')
    fd = os.open(path, os.O_RDONLY)
    try:
        proc = subprocess.run(
            ["nsenter", f"--net={host_ns.path}"]
            + ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
            + [sys.executable, "-m", "netcore", "apply", f"/dev/fd/{fd}"],
            capture_output=True,
            text=True,
            pass_fds=(fd,),
        )
    finally:
        os.close(fd)
    assert proc.returncode == 1, (proc.returncode, proc.stderr)
    assert "run it as root" in proc.stderr
    assert "error: " in proc.stderr and "not permitted" in proc.stderr
    # (a stray "Exception in thread netcore-netns" traceback may also appear, depending on timing:
    # test_namespace_worker_survives_a_refused_setns)
    assert host_links(host_ns) == ["lo"] and ours_in_run_netns() == []


def test_namespace_worker_survives_a_refused_setns(host_ns):
    """Without CAP_SYS_ADMIN every namespace job fails with EPERM (the CLI then says to run as root, but
    also prints a stray "Exception in thread netcore-netns" traceback, depending on timing). The worker
    thread must report the error and stay alive for the next job, as a long-running agent needs."""
    program = (
        "from netcore import netns\n"
        "from netcore.errors import PermissionDenied\n"
        "for _ in range(2):\n"
        "    try:\n"
        "        netns.netns_open_sockets([])\n"
        "    except PermissionDenied:\n"
        "        print('denied', flush=True)\n"
    )
    proc = subprocess.run(
        ["nsenter", f"--net={host_ns.path}"]
        + ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", sys.executable, "-c", program],
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert proc.stdout.split() == ["denied", "denied"]
    assert "Exception in thread" not in proc.stderr
