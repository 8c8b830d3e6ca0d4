"""IPAM: pools, gateways, claims, allocation order, overlap; pure Python."""

from __future__ import annotations

from ipaddress import ip_address, ip_network

import pytest
from hypothesis import given
from hypothesis import strategies as st

from netcore.errors import InvalidSpec
from netcore.ipam import Ipam, Pool, parse_subnet


def test_gateway_defaults_to_first_host_and_is_reserved():
    pool = Pool(network="front", subnet="198.18.1.0/24")
    assert pool.gateway == ip_address("198.18.1.1")
    assert pool.reserved == {ip_address("198.18.1.1"): "gateway"}
    assert pool.allocate(owner="a") == ip_address("198.18.1.2")


def test_explicit_gateway_is_skipped_by_allocation():
    pool = Pool(network="front", subnet="198.18.1.0/29", gateway="198.18.1.2")
    assert pool.gateway == ip_address("198.18.1.2")
    assert [str(pool.allocate(owner=f"n{i}")) for i in range(3)] == ["198.18.1.1", "198.18.1.3", "198.18.1.4"]


@pytest.mark.parametrize(
    ("gateway", "said"),
    [
        ("198.18.2.1", "gateway 198.18.2.1 is outside subnet 198.18.1.0/24 of network front"),
        ("198.18.1.0", "gateway 198.18.1.0 is the network address of subnet 198.18.1.0/24 of network front"),
        ("198.18.1.255", "gateway 198.18.1.255 is the broadcast address of subnet 198.18.1.0/24"),
        ("fd00::1", "gateway fd00::1 is outside subnet 198.18.1.0/24"),
        ("nonsense", "gateway 'nonsense' is not an IP address"),
    ],
)
def test_bad_gateway_is_refused(gateway, said):
    with pytest.raises(InvalidSpec, match=said):
        Pool(network="front", subnet="198.18.1.0/24", gateway=gateway)


def test_ipv6_gateway_cannot_be_the_subnet_router_anycast():
    with pytest.raises(InvalidSpec, match="subnet-router anycast address of subnet fd00:1::/64"):
        Pool(network="v6", subnet="fd00:1::/64", gateway="fd00:1::")


@pytest.mark.parametrize("subnet", ["198.18.1.0/31", "198.18.1.1/32", "fd00::/127"])
def test_subnet_without_room_for_gateway_and_a_host_is_refused(subnet):
    with pytest.raises(InvalidSpec, match=r"network tiny: subnet .* is too small"):
        Pool(network="tiny", subnet=subnet)


@pytest.mark.parametrize(
    ("text", "said"),
    [
        ("198.18.1.5/24", r"198.18.1.5/24 has host bits set \(the subnet would be 198.18.1.0/24\)"),
        ("198.18.1.0/33", "'198.18.1.0/33' is not a CIDR subnet: '33' is not a valid netmask"),
        ("fd00::/129", "'fd00::/129' is not a CIDR subnet"),
        ("banana", "'banana' is not a CIDR subnet"),
        (24, "24 is not a CIDR subnet"),
    ],
)
def test_parse_subnet_says_what_is_wrong(text, said):
    with pytest.raises(InvalidSpec, match=said):
        parse_subnet(text)


def test_allocation_is_lowest_first_and_skips_claims_and_reservations():
    pool = Pool(network="front", subnet="198.18.1.0/24")
    pool.claim("198.18.1.3", owner="static")
    pool.reserve("198.18.1.4", reason="router")
    got = [str(pool.allocate(owner=f"n{i}")) for i in range(3)]
    assert got == ["198.18.1.2", "198.18.1.5", "198.18.1.6"]
    assert pool.in_use[ip_address("198.18.1.3")] == "static"
    assert list(pool.in_use) == sorted(pool.in_use)


def test_claim_after_allocation_of_a_higher_address_still_works():
    pool = Pool(network="front", subnet="198.18.1.0/24")
    pool.allocate(owner="a")
    assert pool.claim("198.18.1.200", owner="b") == ip_address("198.18.1.200")
    assert pool.allocate(owner="c") == ip_address("198.18.1.3")


def test_claim_refusals_name_the_reason():
    pool = Pool(network="front", subnet="198.18.1.0/24")
    pool.claim("198.18.1.20", owner="web2")
    pool.reserve("198.18.1.30", reason="load balancer")
    cases = {
        "198.18.3.5": "198.18.3.5 is outside subnet 198.18.1.0/24 of network front",
        "198.18.1.0": "is the network address",
        "198.18.1.255": "is the broadcast address",
        "198.18.1.1": "198.18.1.1 is the gateway of network front",
        "198.18.1.30": r"198.18.1.30 is reserved in network front \(load balancer\)",
        "198.18.1.20": "198.18.1.20 is already held by web2 in network front",
    }
    for address, said in cases.items():
        with pytest.raises(InvalidSpec, match=said):
            pool.claim(address, owner="web3")


def test_claiming_again_for_the_same_owner_is_fine():
    pool = Pool(network="front", subnet="198.18.1.0/24")
    assert pool.claim("198.18.1.20", owner="web2") == pool.claim("198.18.1.20", owner="web2")
    assert pool.in_use == {ip_address("198.18.1.20"): "web2"}


def test_reserve_refuses_a_held_address():
    pool = Pool(network="front", subnet="198.18.1.0/24")
    pool.claim("198.18.1.20", owner="web2")
    with pytest.raises(InvalidSpec, match="already held by web2"):
        pool.reserve("198.18.1.20", reason="vip")


def test_release_makes_the_address_allocatable_again():
    pool = Pool(network="front", subnet="198.18.1.0/24")
    first = pool.allocate(owner="a")
    pool.allocate(owner="b")
    pool.release(first)
    assert pool.allocate(owner="c") == first
    pool.reserve("198.18.1.9", reason="x")
    pool.release("198.18.1.9")
    pool.release("198.18.1.9")  # already free: no-op
    assert ip_address("198.18.1.9") not in pool.reserved
    with pytest.raises(InvalidSpec, match="is the gateway of network front and cannot be released"):
        pool.release("198.18.1.1")


def test_exhaustion_of_a_slash_30():
    pool = Pool(network="p2p", subnet="198.18.1.0/30")
    assert pool.allocate(owner="a") == ip_address("198.18.1.2")
    with pytest.raises(InvalidSpec, match=r"^network p2p: subnet 198.18.1.0/30 is full$"):
        pool.allocate(owner="b")


def test_ipv6_allocation_in_a_slash_64():
    pool = Pool(network="v6", subnet="fd00:1::/64")
    assert pool.gateway == ip_address("fd00:1::1")
    assert [str(pool.allocate(owner=str(i))) for i in range(3)] == ["fd00:1::2", "fd00:1::3", "fd00:1::4"]
    last = ip_address("fd00:1::ffff:ffff:ffff:ffff")
    assert pool.claim(last, owner="top") == last  # no broadcast in IPv6


def test_ten_thousand_allocations_in_a_slash_16():
    pool = Pool(network="big", subnet="198.18.0.0/16")
    got = [pool.allocate(owner=f"n{i}") for i in range(10_000)]
    assert len(set(got)) == 10_000
    assert got[-1] == ip_address("198.18.39.17")  # .0 network, .1 gateway: the 10,000th is 2 + 9,999


def test_ipam_refuses_overlap_naming_both_networks():
    ipam = Ipam()
    ipam.add_network(name="front", subnet="198.18.1.0/24")
    ipam.add_network(name="v6", subnet="fd00:1::/64")
    with pytest.raises(InvalidSpec) as caught:
        ipam.add_network(name="wide", subnet="198.18.0.0/16")
    assert (
        str(caught.value)
        == "subnet 198.18.0.0/16 of network wide overlaps subnet 198.18.1.0/24 of network front"
    )
    with pytest.raises(
        InvalidSpec,
        match="subnet 198.18.1.128/25 of network inner overlaps subnet 198.18.1.0/24 of network front",
    ):
        ipam.add_network(name="inner", subnet="198.18.1.128/25")
    with pytest.raises(InvalidSpec, match="of network v6b overlaps subnet fd00:1::/64 of network v6"):
        ipam.add_network(name="v6b", subnet="fd00:1::/48")


def test_ipam_overlap_check_looks_at_both_neighbours():
    ipam = Ipam()
    for name, subnet in [("a", "198.18.0.0/24"), ("c", "198.18.2.0/24"), ("b", "198.18.1.0/24")]:
        ipam.add_network(name=name, subnet=subnet)
    for subnet, other in [("198.18.0.128/25", "a"), ("198.18.1.4/30", "b"), ("198.18.2.0/23", "c")]:
        with pytest.raises(InvalidSpec, match=f"of network {other}$"):
            ipam.add_network(name="x", subnet=ip_network(subnet))


def test_ipam_duplicate_and_unknown_names():
    ipam = Ipam()
    front = ipam.add_network(name="front", subnet="198.18.1.0/24", gateway="198.18.1.254")
    assert ipam.pool("front") is front
    with pytest.raises(InvalidSpec, match="network front is already defined"):
        ipam.add_network(name="front", subnet="198.18.2.0/24")
    with pytest.raises(InvalidSpec, match="unknown network back"):
        ipam.pool("back")


@st.composite
def pools_and_steps(draw):
    version = draw(st.sampled_from([4, 6]))
    if version == 4:
        prefix = draw(st.integers(min_value=24, max_value=30))
        subnet = ip_network(f"198.18.{draw(st.integers(0, 255))}.0/{prefix}", strict=False)
    else:
        prefix = draw(st.integers(min_value=116, max_value=126))
        subnet = ip_network(f"fd00:{draw(st.integers(0, 0xFFFF)):x}::/{prefix}")
    hosts = [subnet.network_address + i for i in range(1, min(subnet.num_addresses - 1, 64))]
    gateway = draw(st.none() | st.sampled_from(hosts))
    steps = draw(st.lists(st.none() | st.sampled_from(hosts), max_size=40))
    return subnet, gateway, steps


def run_steps(subnet, gateway, steps):
    """Apply claims (an address) and allocations (None); return what each step gave."""
    pool = Pool(network="n", subnet=subnet, gateway=gateway)
    out = []
    for i, step in enumerate(steps):
        try:
            got = pool.allocate(owner=f"o{i}") if step is None else pool.claim(step, owner=f"o{i}")
        except InvalidSpec as exc:
            got = str(exc)
        out.append(got)
    return pool, out


@given(pools_and_steps())
def test_allocated_addresses_are_unique_usable_and_deterministic(case):
    subnet, gateway, steps = case
    pool, out = run_steps(subnet, gateway, steps)
    assert run_steps(subnet, gateway, steps)[1] == out
    handed = [got for got in out if not isinstance(got, str)]
    assert len(handed) == len(set(handed)) == len(pool.in_use)
    for address in handed:
        assert address in subnet
        assert address != pool.gateway
        assert address != subnet.network_address
        assert subnet.version == 6 or address != subnet.broadcast_address


@given(st.integers(min_value=0, max_value=200))
def test_allocation_fills_a_slash_24_in_order(count):
    pool = Pool(network="n", subnet="198.18.7.0/24")
    got = [pool.allocate(owner="x") for _ in range(count)]
    assert [int(a) - int(ip_address("198.18.7.0")) for a in got] == list(range(2, count + 2))
