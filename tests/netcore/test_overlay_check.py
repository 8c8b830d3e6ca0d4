"""The overlay consistency check over hosts' live states (netcore objects as agents report them).

These states are built from netcore's own model objects, the way a snapshot serialises them; the
same check over real kernels, broken by hand, is in the lab's stack tests."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from netcore import names
from netcore.model import Address, FdbEntry, Link, LinkRef, Neighbour, Route, VxlanInfo
from netcore.topology.desired import endpoint_mac
from netcore.topology.overlay_check import FINDING_KINDS, HostView, overlay_check

VNI, PORT = 5000, 4789
VTEPS = {"lab1": "198.18.254.11", "lab2": "198.18.254.12"}
ENDPOINTS = {"lab1": "198.18.50.2", "lab2": "198.18.50.3"}
VX = names.vxlan_name("ov", "mesh")


def _add(state: dict[str, dict[str, Any]], kind: str, obj: Any) -> None:
    state.setdefault(kind, {})[str(len(state.get(kind, {})))] = obj.to_dict()


def _link(**fields: Any) -> Link:
    defaults = {
        "kind": None,
        "mtu": 1500,
        "mac": None,
        "up": True,
        "state": "up",
        "master": None,
        "alias": None,
    }
    return Link(**{**defaults, **fields})


def host_state(host: str) -> dict:
    """A host of the lab as its agent reports it: underlay eth0, the network's bridge and VXLAN
    device, one endpoint in a node namespace, and the forwarding state for the other host."""
    state: dict[str, dict[str, Any]] = {}
    me, other = host, next(h for h in VTEPS if h != host)
    bridge = names.bridge_name("ov", "mesh")
    _add(state, "links", _link(netns="host", index=2, name="eth0", kind="veth"))
    _add(state, "addresses", Address("host", 2, "eth0", 2, VTEPS[me], 24, "global"))
    _add(
        state,
        "routes",
        Route("host", 2, "198.18.254.0/24", None, "eth0", 2, "kernel", "link", None, None, False),
    )
    _add(state, "links", _link(netns="host", index=3, name=bridge, kind="bridge", mtu=1450))
    info = VxlanInfo(
        vni=VNI, local=VTEPS[me], group=None, remote=None, dstport=PORT, learning=False, underlay=2
    )
    _add(
        state,
        "links",
        _link(netns="host", index=4, name=VX, kind="vxlan", mtu=1450, master=bridge, vxlan=info),
    )
    mac = endpoint_mac(ipaddress.ip_address(ENDPOINTS[me]))
    _add(state, "links", _link(netns="host", index=5, name="ov-n-mesh", kind="veth", master=bridge,
                              peer=LinkRef("ov-n", 2, "eth0")))  # fmt: skip
    _add(
        state,
        "links",
        _link(netns="ov-n", index=2, name="eth0", kind="veth", mac=mac, peer=LinkRef("host", 5, None)),
    )
    _add(state, "addresses", Address("ov-n", 2, "eth0", 2, ENDPOINTS[me], 24, "global"))
    _add(
        state,
        "fdb",
        FdbEntry("host", 4, VX, bridge, "00:00:00:00:00:00", VTEPS[other], None, None, "permanent", True),
    )
    other_mac = endpoint_mac(ipaddress.ip_address(ENDPOINTS[other]))
    _add(
        state,
        "fdb",
        FdbEntry("host", 4, VX, bridge, other_mac, VTEPS[other], None, None, "permanent", True),
    )
    _add(state, "neighbours", Neighbour("host", 4, VX, ENDPOINTS[other], other_mac, "permanent"))
    return state


def check(states: dict[str, dict]) -> list[tuple[str, str]]:
    views = [HostView(name=h, vtep=VTEPS[h], state=states[h]) for h in VTEPS]
    findings = overlay_check(
        topology="ov",
        network="mesh",
        subnet="198.18.50.0/24",
        vni=VNI,
        dstport=PORT,
        learning=False,
        hosts=views,
    )
    assert all(f.kind in FINDING_KINDS for f in findings)
    return [(f.host, f.kind) for f in findings]


def test_a_consistent_overlay_has_no_findings() -> None:
    assert check({h: host_state(h) for h in VTEPS}) == []


def _no_flood(states: dict) -> None:
    fdb = states["lab1"]["fdb"]
    for key in [k for k, e in fdb.items() if e["mac"] == "00:00:00:00:00:00"]:
        del fdb[key]


def _no_neighbours(states: dict) -> None:
    states["lab2"]["neighbours"] = {}


def _small_underlay(states: dict) -> None:
    next(link for link in states["lab1"]["links"].values() if link["name"] == "eth0")["mtu"] = 1400


def _no_routes(states: dict) -> None:
    states["lab2"]["routes"] = {}


def _vtep_gone(states: dict) -> None:
    addresses = states["lab2"]["addresses"]
    states["lab2"]["addresses"] = {k: a for k, a in addresses.items() if a["netns"] != "host"}


@pytest.mark.parametrize(
    ("break_it", "expected"),
    [
        (_no_flood, ("lab1", "MISSING_FLOOD")),
        (_no_neighbours, ("lab2", "MISSING_NEIGHBOUR")),
        (_small_underlay, ("lab1", "MTU_TOO_BIG")),
        (_no_routes, ("lab2", "NO_UNDERLAY_ROUTE")),
        (_vtep_gone, ("lab2", "VTEP_NOT_LOCAL")),
    ],
)
def test_each_break_is_found_on_its_host(break_it: Any, expected: tuple[str, str]) -> None:
    states = {h: host_state(h) for h in VTEPS}
    break_it(states)
    assert expected in check(states)


def test_wrong_and_stale_entries_and_a_duplicate_mac() -> None:
    states = {h: host_state(h) for h in VTEPS}
    entry = next(e for e in states["lab1"]["fdb"].values() if e["mac"] != "00:00:00:00:00:00")
    entry["dst"] = "198.18.254.99"
    assert ("lab1", "WRONG_VTEP") in check(states)
    entry["mac"] = "02:42:00:00:00:99"  # a MAC that lives nowhere: stale, and lab2's MAC has no entry
    found = check(states)
    assert ("lab1", "STALE_FDB") in found and ("lab1", "MISSING_FDB") in found
    states = {h: host_state(h) for h in VTEPS}
    lab1_mac = next(link for link in states["lab1"]["links"].values() if link["netns"] == "ov-n")["mac"]
    next(link for link in states["lab2"]["links"].values() if link["netns"] == "ov-n")["mac"] = lab1_mac
    assert {("lab1", "DUPLICATE_MAC"), ("lab2", "DUPLICATE_MAC")} <= set(check(states))


def test_a_host_without_the_device_is_told_to_apply() -> None:
    states = {h: host_state(h) for h in VTEPS}
    states["lab2"]["links"] = {k: v for k, v in states["lab2"]["links"].items() if v["name"] != VX}
    assert ("lab2", "DEVICE_MISSING") in check(states)
