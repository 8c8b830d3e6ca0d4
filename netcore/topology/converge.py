"""plan, apply and destroy: make the kernel match a topology file, or remove what it owns.

plan and apply run the same code; plan only records the changes. apply is idempotent (a
second run finds nothing to change), checks every conflict before the first change, and
if the kernel refuses something half-way it removes everything that run created before
raising. The caller may cancel a run: it stops at its next safe point (before the first change,
and before each chunk of nodes), removes what it created and raises Cancelled. New endpoints are
built in chunks with every request for one namespace
pipelined on one socket, which is where netcore's speed comes from. Published ports and
NAT (netcore.topology.nat) are one nftables transaction, checked by the kernel before the
first change and committed last.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import os
import socket
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

from netcore import names
from netcore import netns as ns
from netcore import requests as rq
from netcore.docker import firewall
from netcore.errors import AlreadyExists, Cancelled, NetcoreError, from_oserror
from netcore.netlink.parse import RawLink
from netcore.netlink.socket import NetlinkSocket, Request
from netcore.objects import link_index, link_lookup
from netcore.topology import nat, overlay, overlay_entries, state
from netcore.topology.desired import Desired, NodeWant, PortWant, RouteWant, VxlanWant, desired
from netcore.topology.spec import TopologySpec, netns_of

log = logging.getLogger("netcore")

CHUNK = 128
Progress = Callable[[int, int], None]
CancelCheck = Callable[[], bool]  # true once the caller wants the run stopped
_SYMBOL = {"create": "+", "update": "~", "delete": "-"}


@dataclass(frozen=True, slots=True)
class Change:
    """One change to the kernel, as plan prints it."""

    action: str
    kind: str
    name: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{_SYMBOL[self.action]} {self.kind} {self.name}" + (
            f" ({self.detail})" if self.detail else ""
        )

    def to_dict(self) -> dict:
        return {"action": self.action, "kind": self.kind, "name": self.name, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class Result:
    """The changes a plan would make, or an apply/destroy made."""

    topology: str
    changes: tuple[Change, ...]
    applied: bool

    def counts(self) -> dict[str, int]:
        return {a: sum(1 for c in self.changes if c.action == a) for a in ("create", "update", "delete")}

    def summary(self) -> str:
        if not self.changes:
            return f"topology {self.topology}: no changes; the kernel already matches"
        n = self.counts()
        words = ("created", "changed", "removed") if self.applied else ("to create", "to change", "to remove")
        actions = ("create", "update", "delete")
        parts = (f"{n[action]} {word}" for action, word in zip(actions, words, strict=True))
        return f"topology {self.topology}: " + ", ".join(parts)

    def to_dict(self) -> dict:
        return {
            "topology": self.topology,
            "applied": self.applied,
            "counts": self.counts(),
            "changes": [c.to_dict() for c in self.changes],
        }


@dataclass
class _Undo:
    """What this run created, so a failure can take it all back."""

    host_links: list[str] = field(default_factory=list)
    namespaces: list[str] = field(default_factory=list)
    route_localnet: list[tuple[str, int]] = field(default_factory=list)  # (bridge, value before)
    entries: list[Request] = field(default_factory=list)  # deletes of entries added to existing devices

    def rollback(self, host_sock: NetlinkSocket, *, group: int | None) -> None:
        """Remove what was created; `group` deletes the whole device group when it held nothing before.

        The nftables batch needs nothing: it is one transaction, the last step, and all or nothing.
        """
        for bridge, before in reversed(self.route_localnet):
            with contextlib.suppress(FileNotFoundError):  # a bridge this run created, deleted below
                nat.write_route_localnet(bridge, before)
        if self.entries:
            host_sock.send(list(reversed(self.entries)))
        if group is not None and self.host_links:
            host_sock.send([rq.link_group_delete(group=group, what="links created by this run")])
        host_sock.send([rq.link_delete(name=n, missing_ok=True) for n in reversed(self.host_links)])
        ns.netns_delete_many(reversed(self.namespaces), missing_ok=True)


def _interface(addr) -> str:
    return f"{addr.ip}/{addr.network.prefixlen}"


class _Run:
    """One plan/apply/destroy run against the host namespace it was started in."""

    def __init__(
        self,
        want: Desired,
        actual: state.Actual,
        host_sock: NetlinkSocket,
        *,
        execute: bool,
        progress: Progress | None,
        cancelled: CancelCheck | None,
        action: str,
        scope: frozenset[str] | None = None,
    ) -> None:
        self.want = want
        self.scope = scope  # the namespaces of the nodes this run converges (None: every node's)
        self.actual = actual
        self.host = host_sock
        self.execute = execute
        self.progress = progress or (lambda done, total: None)
        self.cancelled = cancelled or (lambda: False)
        self.action = action  # plan, apply or destroy: named when it is cancelled
        self.changes: list[Change] = []
        self.undo = _Undo()
        self.index: dict[str, int] = {name: link.index for name, link in actual.host_links.items()}
        self.group = names.owner_group(want.topology)
        self.stripped: set[str] = set()  # host links that stale addresses were deleted from
        self.fresh_vxlans: set[str] = set()  # VXLAN devices this run creates (so holding no entries)
        self.nat_plan = nat.NatPlan()

    def record(self, action: str, kind: str, name: str, detail: str = "") -> None:
        self.changes.append(Change(action, kind, name, detail))

    def check_cancelled(self) -> None:
        """A safe point: stop here when the caller cancelled (what the run created is then rolled back)."""
        if self.cancelled():
            raise Cancelled(
                f"{self.action} of topology {self.want.topology} was cancelled"
                + ("; what it had created was removed" if self.execute else ""),
                obj=self.want.topology,
            )

    def report(self, done: int, total: int) -> None:
        """Tell the caller how many nodes are built; while some are left, a safe point."""
        self.progress(done, total)
        if done < total:
            self.check_cancelled()

    def send_host(self, requests: Sequence[Request], *, created: Iterable[str] = ()) -> None:
        """Run requests in the host namespace; `created` names the links they make, for rollback."""
        if not self.execute or not requests:
            return
        results = self.host.send(requests)
        failed = next((r for r in results if r is not None), None)
        made = list(created)
        if failed is None:
            self.undo.host_links.extend(made)
        else:
            self.undo.host_links.extend(n for n in made if link_lookup(self.host, n))
            raise failed

    def docker_user(self, *, add: Sequence[str] = (), remove: Sequence[str] = ()) -> None:
        """On a Docker host, its FORWARD policy DROP would drop frames crossing the topology's bridges:
        accept them in DOCKER-USER as they are made (and stop as they go). A failure here fails
        nothing: the agent keeps these rules in step too (netcore.agent.docker_watch)."""
        if not self.execute or not (add or remove):
            return
        try:
            firewall.bridges_accept_more(add=add, remove=remove)
        except NetcoreError as exc:
            log.warning("DOCKER-USER rules for %s: %s", ", ".join([*add, *remove]), exc)

    def lookup_indexes(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in self.index and self.execute:
                found = link_lookup(self.host, name)
                if found:
                    self.index[name] = found.index

    # -- checks -------------------------------------------------------------------------------

    def check_conflicts(self) -> None:
        """Refuse before touching anything when a name we need belongs to someone else."""
        topo = self.want.topology
        for name in sorted(self.want.host_link_names()):
            if name in self.actual.host_links and self.actual.owned(name) is None:
                raise AlreadyExists(
                    f"link {name} already exists in the host namespace and was not made by topology {topo}; "
                    "rename the network or node, or remove that link",
                    obj=name,
                )
        for node in self.want.nodes:
            existing = self.actual.namespaces.get(node.netns)
            if existing and not (existing.owner and existing.owner.topology == topo):
                what = "namespace" if existing.mounted else "namespace file (holding no namespace)"
                raise AlreadyExists(
                    f"{what} {node.netns} already exists and was not made by topology {topo}; "
                    "rename the node, or remove that namespace",
                    obj=node.netns,
                )

    def prepare_nat(self) -> None:
        """Read the topology's nftables table, refuse a conflicting chain, work out the one batch that
        makes it match, and have the kernel check that batch without committing it (`nft -c`): missing
        nft or kernel support is found here, before anything changes."""
        want = self.want.nat
        have = nat.read(want.topology, needed=bool(want.rules))
        nat.check_conflicts(want, have)
        nat.check_host_conflicts(want)
        self.nat_plan = nat.plan(want, have)
        if self.nat_plan.batch:
            nat.apply_batch(self.nat_plan.batch, topology=want.topology, check=True)

    # -- removal ------------------------------------------------------------------------------

    def remove_unwanted(self) -> None:
        """Delete what this topology owns but the file no longer asks for."""
        wanted = self.want.host_link_names()
        owned = self.actual.owned_host_links()
        order = ("veth", "segment", "vxlan", "bridge")
        unwanted = sorted(
            (n for n in owned if n not in wanted), key=lambda n: (order.index(owned[n].role), n)
        )
        doomed = [n for n in unwanted if not self._peer_already_doomed(n, unwanted, owned)]
        for name in doomed:
            self.record("delete", owned[name].role, name)
        requests = []
        members = {n for n, link in self.actual.host_links.items() if link.group == self.group}
        if members and members <= set(unwanted):
            requests.append(rq.link_group_delete(group=self.group, what=f"topology {self.want.topology}"))
        self.send_host(requests + [rq.link_delete(name=n, missing_ok=True) for n in doomed])
        self.docker_user(remove=[n for n in unwanted if owned[n].role == "bridge"])
        self.remove_stale_addresses(wanted, owned)
        wanted_ns = {n.netns for n in self.want.nodes}
        stale = [
            name
            for name, s in self.actual.namespaces.items()
            if name not in wanted_ns and s.owner and s.owner.topology == self.want.topology
        ]
        for name in stale:
            self.record("delete", "namespace", name)
        if self.execute and stale:
            ns.netns_delete_many(stale, missing_ok=True)

    def remove_stale_addresses(self, wanted: set[str], owned: dict[str, names.OwnerTag]) -> None:
        """Delete the global addresses on the topology's host links that the file does not ask for:
        a moved subnet's old gateway, or one added by hand. Only a network's bridge holds one."""
        keep = {
            (b.name, str(b.gateway.ip), b.gateway.network.prefixlen) for b in self.want.bridges if b.gateway
        }
        name_of = {link.index: name for name, link in self.actual.host_links.items()}
        stale = sorted(
            (name_of[a.ifindex], a.address, a.prefixlen)
            for a in self.actual.host_addresses
            if a.scope == "universe" and name_of.get(a.ifindex) in wanted and name_of[a.ifindex] in owned
        )
        requests = []
        for name, address, prefixlen in stale:
            if (name, address, prefixlen) in keep:
                continue
            self.record("delete", "address", f"{address}/{prefixlen} on {name}")
            self.stripped.add(name)
            requests.append(
                rq.address_delete(
                    index=self.index[name],
                    ifname=name,
                    address=ipaddress.ip_address(address),
                    prefixlen=prefixlen,
                    missing_ok=True,  # deleting an IPv4 primary deletes the secondaries of its subnet
                )
            )
        self.send_host(requests)

    @staticmethod
    def _peer_already_doomed(name: str, doomed: list[str], owned: dict) -> bool:
        """A segment uplink is one veth pair: deleting the root side removes the segment side."""
        tag = owned[name]
        if tag.role != "segment" or tag.network is None or tag.segment is None:
            return False
        root_side, segment_side = names.segment_link_names(tag.topology, tag.network, tag.segment)
        return name == segment_side and root_side in doomed

    # -- host side ----------------------------------------------------------------------------

    def bridges(self) -> None:
        requests, created = [], []
        for b in self.want.bridges:
            have = self.actual.host_links.get(b.name)
            if have is None:
                detail = f"network {b.network}" + (f", segment {b.segment}" if b.segment else "")
                self.record(
                    "create",
                    "bridge",
                    b.name,
                    detail + (f", gateway {_interface(b.gateway)}" if b.gateway else ""),
                )
                requests += [
                    rq.bridge_create(name=b.name, mtu=b.mtu, devgroup=self.group, mac=b.mac),
                    rq.link_set(name=b.name, alias=b.alias),
                ]
                created.append(b.name)
                continue
            wrong = {
                "owner alias": have.alias != b.alias,
                f"mtu {b.mtu}": bool(b.mtu and have.mtu != b.mtu),
                f"mac {b.mac}": bool(b.mac and have.mac != b.mac),
                "up": not have.up,
            }
            if any(wrong.values()):
                self.record("update", "bridge", b.name, ", ".join(k for k, bad in wrong.items() if bad))
                requests.append(
                    rq.link_set(index=have.index, name=b.name, up=True, mtu=b.mtu, alias=b.alias, mac=b.mac)
                )
        self.send_host(requests, created=created)
        self.docker_user(add=created)
        self.lookup_indexes(b.name for b in self.want.bridges)
        requests = []
        for b in self.want.bridges:
            if b.gateway is None:
                continue
            index = self.index.get(b.name, 0)
            present = {(a.address, a.prefixlen) for a in self.actual.host_addresses if a.ifindex == index}
            missing = (str(b.gateway.ip), b.gateway.network.prefixlen) not in present
            if missing:
                self.record("create", "address", f"{_interface(b.gateway)} on {b.name}", "gateway")
            if missing or b.name in self.stripped:  # a deleted IPv4 primary may have taken the gateway along
                requests.append(
                    rq.address_add(
                        index=index,
                        ifname=b.name,
                        address=b.gateway.ip,
                        prefixlen=b.gateway.network.prefixlen,
                        exist_ok=True,
                    )
                )
        self.send_host(requests)

    def vxlans(self) -> None:
        requests, created = [], []
        for v in self.want.vxlans:
            have = self.actual.host_links.get(v.name)
            if have is not None and _vxlan_matches(have, v):
                wrong = {
                    f"port of {v.bridge}": have.master != self.index.get(v.bridge),
                    "owner alias": have.alias != v.alias,
                    f"mtu {v.mtu}": bool(v.mtu and have.mtu != v.mtu),  # in place
                }
                if any(wrong.values()):
                    self.record("update", "vxlan", v.name, ", ".join(k for k, bad in wrong.items() if bad))
                    requests.append(
                        rq.link_set(
                            index=have.index,
                            name=v.name,
                            master=self.index.get(v.bridge, 0),
                            alias=v.alias,
                            mtu=v.mtu,
                        )
                    )
                continue
            action = "update" if have else "create"
            mtu = f", mtu {v.mtu}" if v.mtu else ""
            self.record(action, "vxlan", v.name, f"vni {v.vni}, dstport {v.dstport}{_vxlan_peer(v)}{mtu}")
            self.fresh_vxlans.add(v.name)
            if have:
                requests.append(rq.link_delete(name=v.name))
                self.index.pop(v.name, None)
            requests += [
                rq.vxlan_create(
                    devgroup=self.group,
                    name=v.name,
                    vni=v.vni,
                    dstport=v.dstport,
                    local=v.local,
                    remote=v.remote,
                    group=v.group,
                    learning=v.learning,
                    proxy=v.proxy,
                    mtu=v.mtu,
                    master=self.index.get(v.bridge),
                ),
                rq.link_set(name=v.name, alias=v.alias),
            ]
            created.append(v.name)
        self.send_host(requests, created=created)
        self.lookup_indexes(v.name for v in self.want.vxlans)
        self.vxlan_entries()

    def vxlan_entries(self) -> None:
        """The forwarding and neighbour entries of each VXLAN device: a peer's all-zeros entry, each
        remote node's MAC -> VTEP and address -> MAC; only the entries change, never the device."""
        requests: list[Request] = []
        for v in self.want.vxlans:
            fresh = v.name in self.fresh_vxlans  # a new device holds none
            fdb = () if fresh else self.actual.vxlan_fdb.get(v.name, ())
            neighbours = () if fresh else self.actual.vxlan_neighbours.get(v.name, ())
            changes = overlay_entries.entry_changes(
                device=v.name,
                peers=v.peers,
                remote_nodes=v.remote_nodes,
                default_dst=v.remote or v.group,
                fdb=overlay.held_fdb(fdb),
                neighbours=overlay.held_neighbours(neighbours),
            )
            index = self.index.get(v.name, 0)
            for change in changes:
                self.record(change.action, change.kind, change.name, change.detail)
                requests.append(overlay.change_request(change, index=index))
                if change.action == "create" and not fresh and self.execute:
                    self.undo.entries.append(overlay.undo_request(change, index=index))
        self.send_host(requests)

    def uplinks(self) -> None:
        requests, created = [], []
        links = self.actual.host_links
        for u in self.want.uplinks:
            if u.root_side in links and u.segment_side in links:
                unmarked = [n for n in (u.root_side, u.segment_side) if links[n].alias != u.alias]
                for name in unmarked:
                    self.record("update", "segment", name, "owner alias")
                    requests.append(rq.link_set(index=links[name].index, name=name, alias=u.alias))
                continue
            self.record("create", "segment", u.root_side, f"joins {u.segment_bridge} to {u.root_bridge}")
            if u.root_side in links or u.segment_side in links:
                requests += [
                    rq.link_delete(name=u.root_side, missing_ok=True),
                    rq.link_delete(name=u.segment_side, missing_ok=True),
                ]
            requests += [
                rq.veth_create(
                    devgroup=self.group,
                    name=u.root_side,
                    peer=u.segment_side,
                    mtu=u.mtu,
                    master=self.index.get(u.root_bridge),
                ),
                *rq.link_bring_up(
                    name=u.segment_side, master=self.index.get(u.segment_bridge), alias=u.alias, ipv6_ll=False
                ),
                *rq.link_bring_up(name=u.root_side, alias=u.alias, ipv6_ll=False),
            ]
            created.append(u.root_side)
        self.send_host(requests, created=created)

    # -- published ports and NAT --------------------------------------------------------------

    def nat(self) -> None:
        """route_localnet where ports are published on 127.0.0.1, then the nftables batch: last, as
        one transaction, so that a failure leaves the table as it was and only the rest is rolled back."""
        self.route_localnet()
        for change in self.nat_plan.changes:
            self.record(change.action, change.kind, change.name, change.detail)
        if self.execute and self.nat_plan.batch:
            nat.apply_batch(self.nat_plan.batch, topology=self.want.topology, check=False)

    def route_localnet(self) -> None:
        """Set net.ipv4.conf.<bridge>.route_localnet to 1 on the bridges of networks with ports
        published on 127.0.0.1, and back to 0 on the topology's other bridges."""
        wanted = {want.bridge for want in self.want.nat.localnet}
        for b in self.want.bridges:
            if b.segment:
                continue  # a further segment is only L2; the network's addresses are on segment 0
            existed = b.name in self.actual.host_links
            now = nat.read_route_localnet(b.name) or 0  # None: a bridge plan has not created
            need = int(b.name in wanted)
            if now == need:
                continue
            sysctl = f"net.ipv4.conf.{b.name}.route_localnet"
            why = "ports published on 127.0.0.1" if need else "no port published on 127.0.0.1 any more"
            self.record("update" if existed else "create", "sysctl", sysctl, f"{need}: {why}")
            if not self.execute:
                continue
            try:
                nat.write_route_localnet(b.name, need)
            except OSError as exc:
                raise from_oserror(exc, obj=sysctl, action="set") from None
            self.undo.route_localnet.append((b.name, now))

    # -- nodes --------------------------------------------------------------------------------

    def nodes(self) -> None:
        spaces = self.actual.namespaces
        wanted = [n for n in self.want.nodes if self.scope is None or n.netns in self.scope]
        fresh = [n for n in wanted if n.netns not in spaces or not spaces[n.netns].mounted]
        existing = [n for n in wanted if n.netns in spaces and spaces[n.netns].mounted]
        total = len(wanted)
        done = 0
        self.report(done, total)
        for node in existing:
            self.converge_node(node)
            done += 1
            if done % CHUNK == 0:
                self.report(done, total)
        for start in range(0, len(fresh), CHUNK):
            chunk = fresh[start : start + CHUNK]
            for node in chunk:
                self.record_fresh(node)
            if self.execute:
                self.build_fresh(chunk)
            done += len(chunk)
            self.report(done, total)

    def record_fresh(self, node: NodeWant) -> None:
        shared = f", shared by {', '.join(node.shared)}" if node.shared else ""
        self.record("create", "namespace", node.netns, f"node {node.name}{shared}")
        for p in node.ports:
            self.record(
                "create", "veth", p.host_name, f"{p.netns}:{p.ifname} {_interface(p.address)} on {p.bridge}"
            )
        for r in node.routes:
            self.record("create", "route", f"{r.to} in {node.netns}", _route_detail(r))

    def build_fresh(self, chunk: Sequence[NodeWant]) -> None:
        leftovers = [n.netns for n in chunk if n.netns in self.actual.namespaces]  # mount points only
        ns.netns_delete_many(leftovers, missing_ok=True)
        handles = ns.netns_create_many((n.netns for n in chunk), marks={n.netns: n.alias for n in chunk})
        self.undo.namespaces.extend(n.netns for n in chunk)
        try:
            host_requests, created = [], []
            for node, handle in zip(chunk, handles, strict=True):
                for p in node.ports:
                    host_requests += self.port_requests(p, netns_fd=handle.fd)
                    created.append(p.host_name)
            self.send_host(host_requests, created=created)
            for node, handle in zip(chunk, handles, strict=True):
                handle.sock.run(_inside_requests(node))
        finally:
            for handle in handles:
                handle.close()

    def port_requests(self, p: PortWant, *, netns_fd: int) -> list[Request]:
        """An endpoint's veth: the host side a port of its bridge, the other end straight into the node."""
        create = rq.veth_create(
            name=p.host_name,
            peer=p.ifname,
            peer_netns_fd=netns_fd,
            mtu=p.mtu,
            master=self.index[p.bridge],
            devgroup=self.group,
            peer_mac=p.mac,
        )
        return [create, *rq.link_bring_up(name=p.host_name, alias=p.alias, ipv6_ll=False)]

    def converge_node(self, node: NodeWant) -> None:
        """Bring an existing namespace of the topology in line with the file."""
        have = self.actual.namespaces[node.netns]
        sock = ns.netns_open_socket(path=ns.netns_path(node.netns)) if self.execute else None
        try:
            inside: list[Request] = []
            lo = have.links.get("lo")
            wrong = {
                "lo up": lo is None or not lo.up,
                _node_alias_detail(node): lo is None or lo.alias != node.alias,
            }
            if any(wrong.values()):
                detail = ", ".join(k for k, bad in wrong.items() if bad)
                self.record("update", "namespace", node.netns, detail)
                inside.append(rq.link_set(index=1, name="lo", up=True, alias=node.alias))
            index_of: dict[str, int] = {}
            rebuilt: list[PortWant] = []
            for p in node.ports:
                host = self.actual.host_links.get(p.host_name)
                peer = have.links.get(p.ifname)
                if host is None or peer is None or not _paired(host, peer):
                    rebuilt.append(p)
                    continue
                index_of[p.ifname] = peer.index
                bridge = self.index.get(p.bridge, 0)
                wrong = {
                    f"port of {p.bridge}": host.master != bridge,
                    "owner alias": host.alias != p.alias,
                    "up": not host.up or not peer.up,
                    # in place, both ends: the node keeps its interface and its connections
                    f"mtu {p.mtu}": bool(p.mtu and (host.mtu != p.mtu or peer.mtu != p.mtu)),
                }
                if any(wrong.values()):
                    detail = ", ".join(k for k, bad in wrong.items() if bad)
                    self.record("update", "veth", p.host_name, detail)
                    self.send_host(
                        rq.link_bring_up(
                            index=host.index,
                            name=p.host_name,
                            master=bridge,
                            alias=p.alias,
                            ipv6_ll=False,
                            mtu=p.mtu,
                        )
                    )
                    inside += rq.link_bring_up(
                        index=peer.index, name=p.ifname, ipv6_ll=p.address.version == 6, mtu=p.mtu
                    )
            if rebuilt:
                index_of.update(self.rebuild_ports(node, rebuilt, have, sock))
            removals: list[Request] = []
            additions: list[Request] = []
            for p in node.ports:
                gone, new = self.converge_addresses(node, p, index_of[p.ifname], have)
                removals += gone
                additions += new
            # stale addresses first (an IPv4 primary deleted after its replacement in the same subnet
            # takes it along); deleting them can take routes with them, so every route is then re-sent
            inside += removals + additions
            inside += self.converge_routes(node, have, index_of, resend=bool(removals))
            if sock is not None and inside:
                sock.run(inside)
        finally:
            if sock is not None:
                sock.close()

    def rebuild_ports(
        self,
        node: NodeWant,
        ports: Sequence[PortWant],
        have: state.NamespaceState,
        sock: NetlinkSocket | None,
    ) -> dict[str, int]:
        """Recreate endpoint veths that are missing or broken; returns their new indexes."""
        host_requests: list[Request] = []
        stale_inside: list[Request] = []
        for p in ports:
            existed = p.host_name in self.actual.host_links
            detail = f"{p.netns}:{p.ifname} {_interface(p.address)} on {p.bridge}"
            self.record("update" if existed else "create", "veth", p.host_name, detail)
            if existed:
                host_requests.append(rq.link_delete(name=p.host_name, missing_ok=True))
            if p.ifname in have.links:
                stale_inside.append(rq.link_delete(name=p.ifname, missing_ok=True))
            have.links.pop(p.ifname, None)
        rebuilt = {p.ifname for p in ports}
        have.addresses = [a for a in have.addresses if a.ifname not in rebuilt]
        if sock is None:
            return {p.ifname: p.index for p in ports}
        sock.run(stale_inside)
        fd = os.open(ns.netns_path(node.netns), os.O_RDONLY | os.O_CLOEXEC)
        try:
            for p in ports:
                host_requests += self.port_requests(p, netns_fd=fd)
            self.send_host(host_requests, created=[p.host_name for p in ports])
        finally:
            os.close(fd)
        index_of = {p.ifname: link_index(sock, p.ifname, netns=node.netns) for p in ports}
        sock.run(
            [
                request
                for p in ports
                for request in rq.link_bring_up(
                    index=index_of[p.ifname], name=p.ifname, ipv6_ll=p.address.version == 6
                )
            ]
        )
        return index_of

    def converge_addresses(
        self, node: NodeWant, p: PortWant, index: int, have: state.NamespaceState
    ) -> tuple[list[Request], list[Request]]:
        """The requests removing an endpoint's addresses the file no longer asks for, and adding its own."""
        removals: list[Request] = []
        additions: list[Request] = []
        want = (str(p.address.ip), p.address.network.prefixlen)
        present = [a for a in have.addresses if a.ifindex == index and a.scope == "universe"]
        for a in present:
            if (a.address, a.prefixlen) != want:
                self.record("delete", "address", f"{a.address}/{a.prefixlen} on {node.netns}:{p.ifname}")
                removals.append(
                    rq.address_delete(
                        index=index,
                        ifname=p.ifname,
                        address=ipaddress.ip_address(a.address),
                        prefixlen=a.prefixlen,
                        missing_ok=True,
                    )
                )
        missing = want not in {(a.address, a.prefixlen) for a in present}
        if missing:
            self.record("create", "address", f"{_interface(p.address)} on {node.netns}:{p.ifname}")
        if missing:  # the MAC follows the address, so no other endpoint ever gets the same one
            additions.append(rq.link_set(index=index, name=p.ifname, mac=p.mac))
        if missing or removals:  # a deleted IPv4 primary may have taken the wanted address along
            additions.append(
                rq.address_add(
                    index=index,
                    ifname=p.ifname,
                    address=p.address.ip,
                    prefixlen=p.address.network.prefixlen,
                    exist_ok=True,
                )
            )
        return removals, additions

    def converge_routes(
        self, node: NodeWant, have: state.NamespaceState, index_of: dict[str, int], *, resend: bool = False
    ) -> list[Request]:
        """Routes netcore put in the namespace (proto static) that differ from the file are replaced.

        `resend`: send every wanted route again (replacing), because address changes just made
        may have made the kernel drop some of them; only the ones that differed are reported.
        """
        out: list[Request] = []
        current = {(r.family, r.dst): r for r in have.routes if r.protocol == "static"}
        wanted = set()
        for r in node.routes:
            key = (
                socket.AF_INET if r.to.version == 4 else socket.AF_INET6,
                "default" if r.to.prefixlen == 0 else str(r.to),
            )
            wanted.add(key)
            now = current.get(key)
            via = str(r.via) if r.via else None
            same = now is not None and now.gateway == via and (r.dev is None or now.dev == r.dev)
            if same and not resend:
                continue
            if not same:
                self.record(
                    "update" if now else "create", "route", f"{r.to} in {node.netns}", _route_detail(r)
                )
            oif = index_of.get(r.dev) if r.dev in index_of else (have.links[r.dev].index if r.dev else None)
            out.append(
                rq.route_add(to=r.to, via=r.via, oif=oif, replace=True, what=f"{r.to} in {node.netns}")
            )
        for family, dst in current:
            if (family, dst) not in wanted:
                self.record("delete", "route", f"{dst} in {node.netns}")
                default = "0.0.0.0/0" if family == socket.AF_INET else "::/0"
                to = ipaddress.ip_network(default if dst == "default" else dst)
                out.append(rq.route_delete(to=to, what=f"{dst} in {node.netns}", missing_ok=True))
        return out


def _paired(host: RawLink, peer: RawLink) -> bool:
    """The host-side veth and the namespace-side interface are the two ends of one veth pair."""
    return peer.kind == "veth" and host.link == peer.index and peer.link == host.index


def _inside_requests(node: NodeWant) -> list[Request]:
    """Everything inside a fresh namespace, pipelined: lo up (its alias was set at creation), addresses,
    routes."""
    out = [rq.link_set(index=1, name=f"{node.netns}:lo", up=True)]
    for p in node.ports:
        v6 = p.address.version == 6
        out += rq.link_bring_up(index=p.index, name=f"{node.netns}:{p.ifname}", ipv6_ll=v6)
        out.append(
            rq.address_add(
                index=p.index,
                ifname=f"{node.netns}:{p.ifname}",
                address=p.address.ip,
                prefixlen=p.address.network.prefixlen,
            )
        )
    for r in node.routes:
        out.append(rq.route_add(to=r.to, via=r.via, oif=r.index, what=f"{r.to} in {node.netns}"))
    return out


def _node_alias_detail(node: NodeWant) -> str:
    """What a node namespace's owner alias says beyond its owner: the nodes sharing the namespace."""
    shared = f"shared by {', '.join(node.shared)}" if node.shared else "not shared"
    return f"owner alias: {shared}"


def _route_detail(r: RouteWant) -> str:
    parts = [f"via {r.via}" if r.via else "", f"dev {r.dev}" if r.dev else ""]
    return " ".join(p for p in parts if p)


def _vxlan_matches(have, v: VxlanWant) -> bool:
    x = have.vxlan
    return (
        x is not None
        and x.vni == v.vni
        and x.dstport == v.dstport
        and x.learning == v.learning
        and have.vxlan_proxy == v.proxy
        and x.local == (str(v.local) if v.local else None)
        and x.remote == (str(v.remote) if v.remote else None)
        and x.group == (str(v.group) if v.group else None)
    )


def _vxlan_peer(v: VxlanWant) -> str:
    peer = f", remote {v.remote}" if v.remote else f", group {v.group}" if v.group else ""
    return peer + (", proxy" if v.proxy else "")


def _converge(
    spec: TopologySpec,
    *,
    action: str,
    execute: bool,
    progress: Progress | None,
    cancelled: CancelCheck | None,
    nodes: Collection[str] | None = None,
) -> Result:
    host_sock = NetlinkSocket.open()
    try:
        vxlans = [names.vxlan_name(spec.name, n.name) for n in spec.networks.values() if n.driver == "vxlan"]
        scope = None if nodes is None else _namespaces_of(spec, nodes)
        actual = state.read(topology=spec.name, host_sock=host_sock, vxlans=vxlans, scope=scope)
        # the MTU of an overlay and the check of its local address need the host's interfaces
        want = desired(
            overlay.resolve_underlay(spec, links=actual.host_links, addresses=actual.host_addresses)
        )
        run = _Run(
            want,
            actual,
            host_sock,
            execute=execute,
            progress=progress,
            cancelled=cancelled,
            action=action,
            scope=scope,
        )
        run.check_conflicts()
        run.prepare_nat()
        try:
            run.check_cancelled()
            run.remove_unwanted()
            run.bridges()
            run.vxlans()
            run.uplinks()
            run.nodes()
            run.nat()
        except BaseException as exc:
            if execute:
                _rollback(run, exc)
            raise
        return Result(spec.name, tuple(run.changes), execute)
    finally:
        host_sock.close()


def _rollback(run: _Run, exc: BaseException) -> None:
    group_was_empty = not any(link.group == run.group for link in run.actual.host_links.values())
    try:
        run.undo.rollback(run.host, group=run.group if group_was_empty else None)
    except NetcoreError as undo_error:
        exc.add_note(f"rolling back also failed: {undo_error}")


def _namespaces_of(spec: TopologySpec, nodes: Collection[str]) -> frozenset[str]:
    """The namespaces of `nodes`: a node of the file's (container mode: its container's), or one the
    file no longer has (its namespace, to be removed if it is left)."""
    found = set()
    for node in nodes:
        found.add(names.namespace_name(spec.name, node))
        home = netns_of(spec, node) if node in spec.nodes else None
        if home is not None:
            found.add(home)
    return frozenset(found)


def plan(
    spec: TopologySpec, *, cancelled: CancelCheck | None = None, nodes: Collection[str] | None = None
) -> Result:
    """What apply would change, without changing anything (`cancelled`, `nodes`: see apply)."""
    return _converge(spec, action="plan", execute=False, progress=None, cancelled=cancelled, nodes=nodes)


def apply(
    spec: TopologySpec,
    *,
    progress: Progress | None = None,
    cancelled: CancelCheck | None = None,
    nodes: Collection[str] | None = None,
) -> Result:
    """Make the kernel match the file; on failure nothing this run created is left behind.

    `progress(done, total)` is called as nodes are built; `cancelled()` is asked at each safe
    point, and once it is true the run removes what it created and raises Cancelled.

    `nodes`, when given, limits the run to those nodes' namespaces (and everything in the host
    namespace: bridges, VXLAN devices and their entries, NAT): the other nodes' namespaces are
    neither read nor changed. For a caller that knows only these changed since an apply that
    succeeded, with nothing drifted since: a node added to 300 is then one namespace read, not 300.
    """
    return _converge(spec, action="apply", execute=True, progress=progress, cancelled=cancelled, nodes=nodes)


def destroy(
    spec: TopologySpec, *, progress: Progress | None = None, cancelled: CancelCheck | None = None
) -> Result:
    """Remove everything this topology owns (found by its owner aliases), and nothing else;
    `cancelled` is asked once, before the first removal."""
    empty = TopologySpec(name=spec.name)
    return _converge(empty, action="destroy", execute=True, progress=progress, cancelled=cancelled)
