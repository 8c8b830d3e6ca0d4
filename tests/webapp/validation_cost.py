"""What checking agent frames costs: `python -m tests.webapp.validation_cost` (figures in ms).

A 1000-endpoint host's snapshot as the agent sends it (compact JSON) and a 500-event delta, through
the web app's parse (size and nesting pre-check, integer limits) and schema checks; jsonschema's
validator on the same objects for comparison. Not a test: timings are never asserted.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import jsonschema

from tests.browser.frames import HostState
from webapp.hosts import protocol
from webapp.topology.schema import SCHEMA
from webapp.topology.state import LiveState, events_check, state_check


def endpoints(count: int, *, per_bridge: int = 125) -> HostState:
    """Namespaces on segment bridges with what the kernel shows for each: lo's and eth0's addresses,
    the on-link, default and IPv6 routes, neighbours on both sides, FDB entries of both veth ends."""
    s = HostState()
    bridges = [s.link("host", f"big-net.{n}", kind="bridge") for n in range(-(-count // per_bridge))]
    for i in range(count):
        bridge, node = bridges[i // per_bridge], f"big-n{i}"
        s.namespace(node)
        lo = s.state["links"][f"{node}|1"]
        s.address(lo, "127.0.0.1/8", scope="host")
        s.address(lo, "::1/128", scope="host")
        port, eth0 = s.veth("host", f"big-n{i}-p", node, "eth0", master=bridge["name"])
        cidr = f"198.18.{16 + i // 250}.{i % 250 + 2}/20"
        s.address(eth0, cidr)
        s.address(eth0, f"fd00:18::{i + 2:x}/64")
        s.route(eth0, "198.18.16.0/20", protocol="kernel", scope="link")
        s.route(eth0, "fd00:18::/64", protocol="kernel")
        s.route(eth0, "default", gateway="198.18.16.1")
        s.neighbour(eth0, "198.18.16.1", "02:aa:00:00:00:01")
        s.neighbour(bridge, cidr.split("/")[0], eth0["mac"])
        s.fdb(port, eth0["mac"])
        s.fdb(port, port["mac"], self_entry=True)
        for mac in ("33:33:00:00:00:01", "01:00:5e:00:00:01", "33:33:ff:00:00:01"):
            s.fdb(port, mac, self_entry=True)
            s.fdb(eth0, mac, self_entry=True)
    return s


def best_ms(run: Callable[[], object], rounds: int = 7) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times) * 1000


def main() -> None:
    state = endpoints(1000).state
    objects = sum(len(v) for v in state.values())
    snapshot = json.dumps({"v": 1, "type": "snapshot", "seq": 1, "state": state}, separators=(",", ":"))
    events = [
        {"kind": kind, "action": "set", "key": key, "object": obj}
        for kind in ("links", "addresses", "routes")
        for key, obj in list(state[kind].items())[:167]
    ][:500]
    delta = json.dumps({"v": 1, "type": "delta", "seq": 2, "events": events}, separators=(",", ":"))
    parsed = json.loads(snapshot)

    def live_replace() -> None:
        LiveState().replace(seq=1, state=protocol.frame_parse(snapshot)["state"])

    validator = jsonschema.Draft202012Validator(SCHEMA)
    as_lists = {"version": 1, **{kind: list(objs.values()) for kind, objs in state.items()}}
    rows = [
        (f"snapshot: {len(snapshot) / 2**20:.1f} MiB, {objects} objects", None),
        ("  json.loads alone", best_ms(lambda: json.loads(snapshot))),
        ("  nesting pre-check", best_ms(lambda: protocol._nesting_check(snapshot))),
        (
            "  frame_parse (pre-check, limits, json.loads, envelope)",
            best_ms(lambda: protocol.frame_parse(snapshot)),
        ),
        ("  schema check of every object (state_check)", best_ms(lambda: state_check(parsed["state"]))),
        ("  total, text to LiveState", best_ms(live_replace)),
        (
            "  jsonschema on the same objects, for comparison",
            best_ms(lambda: validator.validate(as_lists), 1),
        ),
        (f"delta: {len(events)} events, {len(delta) / 2**10:.0f} KiB", None),
        ("  json.loads alone", best_ms(lambda: json.loads(delta))),
        (
            "  frame_parse + events_check",
            best_ms(lambda: events_check(protocol.frame_parse(delta)["events"])),
        ),
    ]
    for label, ms in rows:
        print(label if ms is None else f"{label:<60} {ms:8.1f}")


if __name__ == "__main__":
    main()
