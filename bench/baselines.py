"""The iproute2 baselines as text: shell scripts and `ip -batch` files, generated, never run here.

P1's network is 198.18.0.0/16 with the gateway 198.18.0.1 on the bridge and endpoints from
198.18.0.2 on; each endpoint is a namespace holding `eth0`, whose veth peer is a bridge port.
"""

from __future__ import annotations

import ipaddress
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

SUBNET = ipaddress.IPv4Network("198.18.0.0/16")
GATEWAY = SUBNET.network_address + 1
BRIDGE = "br-bench"
MAX_ENDPOINTS = SUBNET.num_addresses - 3


@dataclass(frozen=True)
class Endpoint:
    """One endpoint: its namespace, the host side of its veth, and its address."""

    ns: str
    host_if: str
    addr: ipaddress.IPv4Address


def endpoints(ns_prefix: str, count: int) -> list[Endpoint]:
    """`count` endpoints with namespaces `<ns_prefix>00001`... and host veths `ve1`..."""
    if not 0 < count <= MAX_ENDPOINTS:
        raise ValueError(f"endpoints must be 1..{MAX_ENDPOINTS}, not {count}")
    return [Endpoint(f"{ns_prefix}{i:05d}", f"ve{i}", GATEWAY + i) for i in range(1, count + 1)]


def _bridge_lines(cmd: str) -> list[str]:
    return [
        f"{cmd}link add {BRIDGE} type bridge",
        f"{cmd}addr add {GATEWAY}/{SUBNET.prefixlen} dev {BRIDGE}",
        f"{cmd}link set {BRIDGE} up",
    ]


def per_step_script(eps: Sequence[Endpoint]) -> str:
    """Baseline A: a shell script with one `ip` process per step (the bridge first)."""
    lines = ["set -e", *_bridge_lines("ip ")]
    for ep in eps:
        n = shlex.quote(ep.ns)
        lines += [
            f"ip netns add {n}",
            f"ip link add {ep.host_if} type veth peer name eth0 netns {n}",
            f"ip link set {ep.host_if} master {BRIDGE}",
            f"ip link set {ep.host_if} up",
            f"ip -n {n} link set lo up",
            f"ip -n {n} addr add {ep.addr}/{SUBNET.prefixlen} dev eth0",
            f"ip -n {n} link set eth0 up",
            f"ip -n {n} route add default via {GATEWAY}",
        ]
    return "\n".join(lines) + "\n"


def host_batch(eps: Sequence[Endpoint]) -> str:
    """Baseline B, host side: one `ip -batch` file (bridge, namespaces, veths, ports, up)."""
    lines = _bridge_lines("")
    lines += [f"netns add {ep.ns}" for ep in eps]
    for ep in eps:
        lines += [
            f"link add {ep.host_if} type veth peer name eth0 netns {ep.ns}",
            f"link set {ep.host_if} master {BRIDGE}",
            f"link set {ep.host_if} up",
        ]
    return "\n".join(lines) + "\n"


def inside_batch(ep: Endpoint) -> str:
    """Baseline B, inside one namespace: the file for `ip -n NS -batch`."""
    return (
        f"link set lo up\naddr add {ep.addr}/{SUBNET.prefixlen} dev eth0\nlink set eth0 up\n"
        f"route add default via {GATEWAY}\n"
    )


def batch_script(eps: Sequence[Endpoint], directory: Path) -> str:
    """Baseline B: write the batch files into `directory`; return the shell script that runs them."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "host.batch").write_text(host_batch(eps))
    lines = ["set -e", f"ip -batch {directory / 'host.batch'}"]
    for ep in eps:
        path = directory / f"{ep.ns}.batch"
        path.write_text(inside_batch(ep))
        lines.append(f"ip -n {shlex.quote(ep.ns)} -batch {path}")
    return "\n".join(lines) + "\n"


def teardown_batch(eps: Sequence[Endpoint]) -> str:
    """Baseline B's teardown: one `ip -batch` deleting the veths, the namespaces and the bridge."""
    lines = [f"link del {ep.host_if}" for ep in eps]
    lines += [f"netns del {ep.ns}" for ep in eps]
    lines.append(f"link del {BRIDGE}")
    return "\n".join(lines) + "\n"


INSPECT_HOST = [
    "ip -j -d link show",
    "ip -j addr show",
    "ip -j route show",
    "ip -j neigh show",
    "bridge -j fdb show",
]
INSPECT_NS = ["-j -d link show", "-j addr show", "-j route show", "-j neigh show"]


def inspect_script(endpoint_ns: Sequence[str]) -> str:
    """P2 baseline: what a script does to see everything, one `ip` process per question."""
    lines = [f"{cmd} >/dev/null" for cmd in INSPECT_HOST]
    for ns in endpoint_ns:
        lines += [f"ip -n {shlex.quote(ns)} {args} >/dev/null" for args in INSPECT_NS]
    return "\n".join(lines) + "\n"


def many_links_batch(count: int) -> str:
    """P2b set-up: `count` veth pairs v<i>/w<i>, all up, every other v with an address."""
    lines = []
    for i in range(count):
        lines += [f"link add v{i} type veth peer name w{i}", f"link set v{i} up", f"link set w{i} up"]
        if i % 2 == 0:
            lines.append(f"addr add {ipaddress.IPv4Address('198.19.0.0') + i}/32 dev v{i}")
    return "\n".join(lines) + "\n"
