"""Deterministic IP address management over the standard `ipaddress` module.

A :class:`Pool` holds one network's subnet: its gateway (reserved), static claims, other
reservations and allocations. Allocation hands out the lowest free address from a cursor, so the
same calls in the same order always give the same addresses, and large subnets (IPv6 /64s) are never
enumerated. :class:`Ipam` keeps the pools of several networks and refuses overlapping subnets.
"""

from __future__ import annotations

import bisect
import ipaddress
from typing import TypeAlias

from netcore.errors import InvalidSpec

IPAddress: TypeAlias = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork: TypeAlias = ipaddress.IPv4Network | ipaddress.IPv6Network

#: Longest prefixes that still leave room for the gateway and one more address.
MAX_PREFIX = {4: 30, 6: 126}


def _quote_hint(value: object) -> str:
    return " (quote addresses in YAML)" if isinstance(value, int | float) else ""


def parse_address(value: object) -> IPAddress:
    """Parse an IPv4 or IPv6 address ("198.18.1.1", "fd00::1"); no zone index."""
    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
        return value
    if not isinstance(value, str):
        raise InvalidSpec(f"{value!r} is not an IP address{_quote_hint(value)}")
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise InvalidSpec(f"{value!r} is not an IP address") from None
    if getattr(address, "scope_id", None):
        raise InvalidSpec(f"{value!r} has a zone index; give a plain address")
    return address


def parse_subnet(value: object) -> IPNetwork:
    """Parse a CIDR subnet ("198.18.1.0/24", "fd00:1::/64"); host bits must be clear."""
    if isinstance(value, ipaddress.IPv4Network | ipaddress.IPv6Network):
        return value
    if not isinstance(value, str):
        raise InvalidSpec(f"{value!r} is not a CIDR subnet such as 198.18.1.0/24{_quote_hint(value)}")
    try:
        subnet = ipaddress.ip_network(value)
    except ValueError:
        family = ipaddress.IPv6Network if ":" in value else ipaddress.IPv4Network
        try:
            loose = family(value, strict=False)
        except ValueError as exc:
            raise InvalidSpec(f"{value!r} is not a CIDR subnet: {exc}") from None
        raise InvalidSpec(f"{value} has host bits set (the subnet would be {loose})") from None
    if getattr(subnet.network_address, "scope_id", None):
        raise InvalidSpec(f"{value!r} has a zone index; give a plain subnet")
    return subnet


def parse_host(value: object, *, subnet: IPNetwork, network: str) -> IPAddress:
    """Parse `value` as an address a host may use in `subnet` of `network`.

    Refuses addresses outside the subnet, its network address (the IPv6 subnet-router anycast) and,
    for IPv4, its broadcast address.
    """
    address = parse_address(value)
    where = f"subnet {subnet} of network {network}"
    if address.version != subnet.version or address not in subnet:
        raise InvalidSpec(f"{address} is outside {where}", obj=network)
    if address == subnet.network_address:
        kind = "network" if subnet.version == 4 else "subnet-router anycast"
        raise InvalidSpec(f"{address} is the {kind} address of {where}", obj=network)
    if subnet.version == 4 and address == subnet.broadcast_address:
        raise InvalidSpec(f"{address} is the broadcast address of {where}", obj=network)
    return address


class Pool:
    """The addresses of one network: gateway, reservations, claims and allocations."""

    def __init__(
        self, *, network: str, subnet: str | IPNetwork, gateway: str | IPAddress | None = None
    ) -> None:
        try:
            self.subnet: IPNetwork = parse_subnet(subnet)
        except InvalidSpec as exc:
            raise InvalidSpec(f"network {network}: {exc}", obj=network) from None
        self.network = network
        if self.subnet.prefixlen > MAX_PREFIX[self.subnet.version]:
            raise InvalidSpec(
                f"network {network}: subnet {self.subnet} is too small"
                " (it needs room for the gateway and at least one more address)",
                obj=network,
            )
        self._family = type(self.subnet.network_address)
        self._first = int(self.subnet.network_address) + 1
        self._last = int(self.subnet.broadcast_address) - (1 if self.subnet.version == 4 else 0)
        if gateway is None:
            self.gateway: IPAddress = self._family(self._first)
        else:
            try:
                self.gateway = parse_host(gateway, subnet=self.subnet, network=network)
            except InvalidSpec as exc:
                raise InvalidSpec(f"gateway {exc}", obj=network) from None
        self._reserved: dict[int, str] = {int(self.gateway): "gateway"}
        self._held: dict[int, str] = {}
        self._cursor = self._first

    def __repr__(self) -> str:
        return f"Pool(network={self.network!r}, subnet='{self.subnet}', gateway='{self.gateway}')"

    @property
    def in_use(self) -> dict[IPAddress, str]:
        """Claimed and allocated addresses, lowest first, with their owners."""
        return {self._family(value): owner for value, owner in sorted(self._held.items())}

    @property
    def reserved(self) -> dict[IPAddress, str]:
        """Reserved addresses (the gateway among them), lowest first, with the reason."""
        return {self._family(value): reason for value, reason in sorted(self._reserved.items())}

    def claim(self, address: object, *, owner: str) -> IPAddress:
        """Take a static address for `owner`; claiming it again for the same owner is a no-op.

        `address` is as parse_host takes it: anything not an address in the subnet is InvalidSpec."""
        parsed = parse_host(address, subnet=self.subnet, network=self.network)
        value = int(parsed)
        if parsed == self.gateway:
            raise InvalidSpec(f"{parsed} is the gateway of network {self.network}", obj=self.network)
        if value in self._reserved:
            reason = self._reserved[value]
            raise InvalidSpec(f"{parsed} is reserved in network {self.network} ({reason})", obj=self.network)
        holder = self._held.setdefault(value, owner)
        if holder != owner:
            raise InvalidSpec(
                f"{parsed} is already held by {holder} in network {self.network}", obj=self.network
            )
        return parsed

    def allocate(self, *, owner: str) -> IPAddress:
        """Give `owner` the lowest free address."""
        while self._cursor <= self._last:
            value = self._cursor
            self._cursor += 1
            if value not in self._held and value not in self._reserved:
                self._held[value] = owner
                return self._family(value)
        raise InvalidSpec(f"network {self.network}: subnet {self.subnet} is full", obj=self.network)

    def reserve(self, address: str | IPAddress, *, reason: str) -> None:
        """Keep `address` out of allocation and claims; reserving it again keeps the first reason."""
        parsed = parse_host(address, subnet=self.subnet, network=self.network)
        value = int(parsed)
        holder = self._held.get(value)
        if holder is not None:
            raise InvalidSpec(
                f"{parsed} is already held by {holder} in network {self.network}", obj=self.network
            )
        self._reserved.setdefault(value, reason)

    def release(self, address: str | IPAddress) -> None:
        """Free a claimed, allocated or reserved address (not the gateway); freeing a free one is a no-op."""
        parsed = parse_host(address, subnet=self.subnet, network=self.network)
        value = int(parsed)
        if value == int(self.gateway):
            raise InvalidSpec(
                f"{parsed} is the gateway of network {self.network} and cannot be released", obj=self.network
            )
        self._held.pop(value, None)
        self._reserved.pop(value, None)
        self._cursor = min(self._cursor, value)


class Ipam:
    """The pools of several networks, by network name; their subnets never overlap."""

    def __init__(self) -> None:
        self._pools: dict[str, Pool] = {}
        # Per IP version: pools sorted by first address (disjoint, so also by last address).
        self._starts: dict[int, list[int]] = {4: [], 6: []}
        self._sorted: dict[int, list[Pool]] = {4: [], 6: []}

    def add_network(
        self, *, name: str, subnet: str | IPNetwork, gateway: str | IPAddress | None = None
    ) -> Pool:
        """Create the pool of network `name`; refuses a duplicate name or an overlapping subnet."""
        if name in self._pools:
            raise InvalidSpec(f"network {name} is already defined", obj=name)
        pool = Pool(network=name, subnet=subnet, gateway=gateway)
        starts, pools = self._starts[pool.subnet.version], self._sorted[pool.subnet.version]
        index = bisect.bisect_right(starts, int(pool.subnet.network_address))
        for neighbour in pools[max(index - 1, 0) : index + 1]:
            if neighbour.subnet.overlaps(pool.subnet):
                raise InvalidSpec(
                    f"subnet {pool.subnet} of network {name} overlaps subnet {neighbour.subnet}"
                    f" of network {neighbour.network}",
                    obj=name,
                )
        starts.insert(index, int(pool.subnet.network_address))
        pools.insert(index, pool)
        self._pools[name] = pool
        return pool

    def pool(self, name: str) -> Pool:
        """The pool of network `name`."""
        try:
            return self._pools[name]
        except KeyError:
            raise InvalidSpec(f"unknown network {name}", obj=name) from None
