"""reach.py against the kernel: apply a topology, try every pair with real TCP, and compare each
outcome with the prediction, with forwarding off and on in the host and in a router node."""

from __future__ import annotations

import errno
import itertools
import select
import socket
import subprocess
import time

from netcore import netns as ns
from netcore.topology import converge, reach, spec
from tests.conftest import wait_for_dad

PROBE_SECONDS = 2.0


def topology(topo: str) -> spec.TopologySpec:
    """Two networks joined by a router node r and by the host; a network of its own; a node without
    networks, one in a's namespace, one in the host's. red masquerades what the host forwards out of it.
    a and c route to each other's network through r; b only has its default route."""
    return spec.loads(f"""
name: {topo}
networks:
  red: {{subnet: 198.18.6.0/24, nat: true}}
  blue: {{subnet: 198.18.7.0/24}}
  green: {{subnet: 198.18.8.0/24}}
nodes:
  a: {{networks: [red]}}
  b: {{networks: [red]}}
  r: {{networks: {{red: {{address: 198.18.6.254}}, blue: {{address: 198.18.7.254}}}}}}
  c: {{networks: [blue]}}
  iso: {{networks: [green]}}
  n: {{mode: none}}
  s: {{mode: "container:a"}}
  h: {{mode: host}}
routes:
  - {{node: a, to: 198.18.7.0/24, via: 198.18.6.254}}
  - {{node: c, to: 198.18.6.0/24, via: 198.18.7.254}}
""")


def _socket_in(topology_spec: spec.TopologySpec, node: str, family: socket.AddressFamily) -> socket.socket:
    """A TCP socket made in the namespace of `node` (the caller's for host mode)."""
    where = spec.netns_of(topology_spec, node)
    if where is None:
        return socket.socket(family, socket.SOCK_STREAM)
    return ns.netns_run(path=ns.netns_path(where), fn=lambda: socket.socket(family, socket.SOCK_STREAM))


def measure(topology_spec: spec.TopologySpec, pairs: list[reach.Pair], ports: itertools.count) -> dict:
    """{pair key: True if a TCP connection from its source to its address completed}, every pair at
    once: a listener on the target's address, a non-blocking connect from the source's namespace."""
    opened: list[socket.socket] = []
    pending: dict[socket.socket, tuple] = {}
    outcome: dict[tuple, bool] = {}
    try:
        for pair in pairs:
            family = socket.AF_INET6 if pair.address.version == 6 else socket.AF_INET
            port = next(ports)
            listener = _socket_in(topology_spec, pair.target, family)
            opened.append(listener)
            listener.bind((str(pair.address), port))
            listener.listen(4)
            client = _socket_in(topology_spec, pair.source, family)
            opened.append(client)
            client.setblocking(False)
            code = client.connect_ex((str(pair.address), port))
            if code in (0, errno.EINPROGRESS):
                pending[client] = pair.key
            else:
                outcome[pair.key] = False  # refused at once: no route
        deadline = time.monotonic() + PROBE_SECONDS
        while pending and time.monotonic() < deadline:
            _, done, _ = select.select([], list(pending), [], max(0.0, deadline - time.monotonic()))
            for client in done:
                key = pending.pop(client)
                outcome[key] = client.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
        outcome.update({key: False for key in pending.values()})
    finally:
        for sock in opened:
            sock.close()
    return outcome


def set_forwarding(where: str | None, on: bool) -> None:
    """net.ipv4.ip_forward in a namespace by name (None: the caller's)."""
    command = ["sysctl", "-qw", f"net.ipv4.ip_forward={int(on)}"]
    subprocess.run(command if where is None else ["ip", "netns", "exec", where, *command], check=True)


def test_measured_reachability_is_the_predicted_one_for_every_pair(host_ns, topo):
    t = topology(topo)
    router = spec.netns_of(t, "r")
    ports = itertools.count(20000)
    converge.apply(t)
    try:
        seen_hows: set[str | None] = set()
        for host_forwards, router_forwards in itertools.product((False, True), repeat=2):
            set_forwarding(None, host_forwards)
            set_forwarding(router, router_forwards)
            predicted = reach.reach(
                t, host_forwards=host_forwards, forwarding=["r"] if router_forwards else []
            )
            measured = measure(t, list(predicted), ports)
            wrong = [
                f"{p.source} → {p.target} {p.address}: predicted {p.how or 'unreachable'}"
                f" ({' '.join(p.path)}{'; ' + p.reason if p.reason else ''}), measured"
                f" {'reachable' if measured[p.key] else 'unreachable'}"
                for p in predicted
                if bool(p.how) != measured[p.key]
            ]
            assert not wrong, f"host forwards {host_forwards}, r forwards {router_forwards}:\n" + "\n".join(
                wrong
            )
            seen_hows |= {p.how for p in predicted}
        assert seen_hows == {"local", "L2", "L3", None}  # the topology exercises every outcome
    finally:
        converge.destroy(t)


def test_neighbours_answer_as_predicted_in_both_families(host_ns, topo):
    """An on-link route to another network's subnet: over IPv4 the router node answers ARP for its
    address on the other network (any address of its namespace), over IPv6 it does not."""
    t = spec.loads(f"""
name: {topo}
networks:
  x4: {{subnet: 198.18.6.0/24}}
  y4: {{subnet: 198.18.7.0/24}}
  x6: {{subnet: "fd00:6::/64"}}
  y6: {{subnet: "fd00:7::/64"}}
nodes:
  a: {{networks: [x4, x6]}}
  r: {{networks: [x4, y4, x6, y6]}}
routes:
  - {{node: a, to: 198.18.7.0/24, dev: eth0}}
  - {{node: a, to: "fd00:7::/64", dev: eth1}}
""")
    converge.apply(t)
    try:
        for node in ("a", "r"):
            wait_for_dad(ns.netns_path(spec.netns_of(t, node)))
        predicted = reach.reach(t)
        to_r = {str(p.address): p.how for p in predicted if p.source == "a"}
        assert to_r == {"198.18.6.3": "L2", "198.18.7.2": "L2", "fd00:6::3": "L2", "fd00:7::2": None}
        measured = measure(t, list(predicted), itertools.count(21000))
        assert {p.key: bool(p.how) for p in predicted} == measured
    finally:
        converge.destroy(t)
