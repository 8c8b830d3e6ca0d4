"""Writes of desired state: topologies created, updated and deleted, validated by netcore's parser.

A topology arrives as a netcore topology file, as YAML text or as the same document as a JSON
object. netcore.topology.spec validates it and resolves its addresses (one validator for forms, the
API and the agent); its problems become InvalidInput naming each field by its path in the file
(``networks.front.subnet``). Writes hold a lock on the host row (SELECT ... FOR UPDATE; SQLite
transactions begin IMMEDIATE), so the checks against the host's other topologies (names, subnets)
and the rows written agree even under concurrent requests; the (host, address) constraint on
Attachment is the last guard.

topology_document compiles the rows back into a netcore document: what the agent applies.
"""

from __future__ import annotations

import copy
import enum
import json
import re
from collections.abc import Mapping
from ipaddress import ip_network
from typing import Any, TypeAlias

import yaml
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef

from netcore import names
from netcore.errors import InvalidSpec
from netcore.ipam import parse_address, parse_subnet
from netcore.topology import spec as topology_spec
from netcore.topology.scope import FORWARDING_KEYS, changed_nodes
from netcore.topology.span import Span, span_split, spans_hosts
from netcore.topology.spec import TopologySpec
from webapp.audit.services import audit_record, refusals_audited
from webapp.catalog.from_topology import (
    topology_services_document,
    topology_services_forget,
    topology_services_sync,
)
from webapp.catalog.services import catalog_topology_changed
from webapp.errors import Conflict, InvalidInput
from webapp.hosts.models import Host
from webapp.networks.models import Attachment, Network, Node, PublishedPort, Route, Topology
from webapp.networks.selectors import plan_changes
from webapp.operations.models import Operation
from webapp.operations.services import operation_create
from webapp.topology.models import HostState

#: The input field a problem without a path in the file (or a YAML syntax error) is reported under.
DOCUMENT_FIELD = "topology"

_PATH = re.compile(r"((?:name|networks|nodes|routes|services)(?:[.\[][^\s:]*)?): (.*)", re.DOTALL)

Document: TypeAlias = str | Mapping[str, Any]
User: TypeAlias = AbstractBaseUser | AnonymousUser | None


class InvalidTopology(InvalidInput):
    """netcore refused the topology: every problem, by field path."""

    def __init__(self, problems: Mapping[str, list[str]]) -> None:
        lines = [f"{field}: {text}" for field, texts in problems.items() for text in texts]
        super().__init__("invalid topology: " + "; ".join(lines[:20]) + ("; …" if len(lines) > 20 else ""))
        self.problems = dict(problems)

    def to_dict(self) -> dict:
        return {"error": "InvalidInput", "message": self.message, "fields": self.problems}


def problem_fields(problems: list[str]) -> dict[str, list[str]]:
    """netcore's problems ("networks.front.subnet: missing") by field path; those without one
    (an unknown top-level key, an empty file) under DOCUMENT_FIELD."""
    fields: dict[str, list[str]] = {}
    for problem in problems:
        match = _PATH.fullmatch(problem)
        field, text = (match.group(1), match.group(2)) if match else (DOCUMENT_FIELD, problem)
        fields.setdefault(field, []).append(text)
    return fields


def _invalid(exc: InvalidSpec) -> InvalidTopology:
    problems = getattr(exc, "problems", None)
    if problems is None:  # YAML or size: one message, prefixed with the source
        text = str(exc).removeprefix(f"{DOCUMENT_FIELD}:").removeprefix(" ")
        return InvalidTopology({DOCUMENT_FIELD: [text]})
    return InvalidTopology(problem_fields(problems))


def _data(document: Document) -> Any:
    """A document as data: YAML text read with netcore's limits (no anchors, no oversized text); not
    yet validated (so it may be anything YAML holds)."""
    if isinstance(document, Mapping):
        return document
    if not isinstance(document, str):
        raise InvalidInput("a topology is YAML text or a JSON object", field=DOCUMENT_FIELD)
    try:
        return topology_spec.load_data(document, source=DOCUMENT_FIELD)
    except InvalidSpec as exc:
        raise _invalid(exc) from None


def _parse(document: Document) -> tuple[TopologySpec, Mapping[str, Any]]:
    """The validated spec and the document as data (for what the spec does not keep: which addresses
    were given, and the ports as written)."""
    data = _data(document)
    try:
        return topology_spec.parse(data, source=DOCUMENT_FIELD), data
    except InvalidSpec as exc:
        raise _invalid(exc) from None


def _overlaps(*, host: Host, spec: TopologySpec, exclude: Topology | None) -> None:
    """Conflict when a network of `spec` overlaps a network of another topology on the host."""
    others = Network.objects.filter(topology__host=host).select_related("topology").order_by("id")
    if exclude is not None:
        others = others.exclude(topology=exclude)
    existing = [(other, ip_network(other.subnet)) for other in others]
    for network in spec.networks.values():
        for other, subnet in existing:
            if subnet.version == network.subnet.version and subnet.overlaps(network.subnet):
                raise Conflict(
                    f"network {network.name} {network.subnet} of topology {spec.name} overlaps network"
                    f" {other.name} {other.subnet} of topology {other.topology.name} on host {host.name}",
                    field=f"networks.{network.name}.subnet",
                )


def _route_clashes(*, host: Host, spec: TopologySpec) -> None:
    """Conflict when a network of `spec` overlaps a route the host already has (by its last known
    state) on an interface Switchboard did not make: the host would then have two ways to the same
    addresses. Routes of topologies' own bridges are left to _overlaps (and to the topology itself)."""
    # the three parts read, not the whole state (its addresses, neighbours and FDB): this runs on
    # every create and edit, and a host with 1000 nodes has a state of megabytes
    parts = ("namespaces", "links", "routes")
    row = HostState.objects.filter(host=host).values_list(*(f"state__{part}" for part in parts)).first()
    state = {part: value or {} for part, value in zip(parts, row or (None,) * len(parts), strict=True)}
    spaces = state["namespaces"].values()
    home = next((space.get("name") for space in spaces if space.get("kind") == "host"), None)
    owned = {
        link.get("name")
        for link in state["links"].values()
        if link.get("netns") == home and names.parse_owner_alias(link.get("alias")) is not None
    }
    for route in state["routes"].values():
        dst = route.get("dst")
        if route.get("netns") != home or dst in (None, "default") or route.get("dev") in owned:
            continue
        try:
            destination = ip_network(dst, strict=False)
        except ValueError:
            continue
        for network in spec.networks.values():
            if destination.version == network.subnet.version and destination.overlaps(network.subnet):
                raise Conflict(
                    f"network {network.name} {network.subnet} of topology {spec.name} overlaps the route"
                    f" {dst} (dev {route.get('dev') or '?'}) that host {host.name} already has: pick a"
                    " subnet the host does not route yet",
                    field=f"networks.{network.name}.subnet",
                )


def _node_bodies(data: Mapping[str, Any]) -> Mapping[str, Any]:
    nodes = data.get("nodes")
    return nodes if isinstance(nodes, Mapping) else {}


def _static(data: Mapping[str, Any], node: str, network: str) -> bool:
    return _given_address(_node_bodies(data).get(node), network) is not None


def _given_address(body: object, network: str) -> object:
    """The address a node's body gives itself on `network`, if any (as written)."""
    wanted = body.get("networks") if isinstance(body, Mapping) else None
    options = wanted.get(network) if isinstance(wanted, Mapping) else None
    return options.get("address") if isinstance(options, Mapping) else None


def _wanted_networks(body: object) -> list[str]:
    """The networks a node's body puts it on, as written (a list, or a mapping of options)."""
    wanted = body.get("networks") if isinstance(body, Mapping) else None
    return [str(network) for network in wanted] if isinstance(wanted, list | Mapping) else []


def _normal(parse: Any, text: object) -> str | None:
    """`text` as netcore writes it (parse_subnet, parse_address), or None when it is not one."""
    try:
        return str(parse(str(text)))
    except (InvalidSpec, ValueError):
        return None


def _with_kept_addresses(*, data: Mapping[str, Any], topologies: list[Topology]) -> Mapping[str, Any] | None:
    """`data` with the addresses the current rows allocated written in, for every attachment the new
    document keeps without an address of its own, on a network whose subnet stays the same; None when
    there is none to keep. So an edit never moves a running node's address (netcore's IPAM allocates
    in file order: without this, deleting one node would renumber the nodes after it). `topologies`:
    the row, or every host's row of a spanning topology (whose shares pin every address: what the
    whole file gave is told by `data`, below, not by the rows).

    Read from the document as written, before netcore parses it (once, with these addresses in): what
    is malformed here is kept from no address, and the parse names it."""
    rows = Attachment.objects.filter(node__topology__in=topologies)
    if len(topologies) == 1 and topologies[0].span_document is None:
        rows = rows.filter(static=False)
    allocated = {
        (node, network): (address, subnet)
        for node, network, address, subnet in rows.values_list(
            "node__name", "network__name", "address", "network__subnet"
        )
    }
    if not allocated:
        return None
    networks = data.get("networks")
    subnets = {
        str(name): _normal(parse_subnet, body.get("subnet"))
        for name, body in (networks.items() if isinstance(networks, Mapping) else ())
        if isinstance(body, Mapping)
    }
    nodes = _node_bodies(data)
    claimed = {
        _normal(parse_address, address)
        for body in nodes.values()
        for network in _wanted_networks(body)
        if (address := _given_address(body, network)) is not None
    }
    kept: dict[str, dict[str, str]] = {}
    for name, body in nodes.items():
        for network in _wanted_networks(body):
            previous = allocated.get((str(name), network))
            if (
                previous is not None
                and previous[1] == subnets.get(network)
                and previous[0] not in claimed
                and _given_address(body, network) is None
            ):
                kept.setdefault(name, {})[network] = previous[0]
    if not kept:
        return None
    changed = dict(nodes)
    for name, addresses in kept.items():
        body = dict(changed[name])
        wanted = body["networks"]
        items = wanted.items() if isinstance(wanted, Mapping) else ((network, None) for network in wanted)
        body["networks"] = {
            network: {**(options or {}), "address": addresses[network]} if network in addresses else options
            for network, options in items
        }
        changed[name] = body
    return {**data, "nodes": changed}


def _write(*, topology: Topology, spec: TopologySpec, data: Mapping[str, Any]) -> None:
    """The rows of `spec` under `topology` (which has none)."""
    catalog_topology_changed(host_id=topology.host_id, topology=topology.name)  # nodes' addresses may move
    networks = Network.objects.bulk_create(
        Network(
            topology=topology,
            position=position,
            name=network.name,
            driver=network.driver,
            subnet=str(network.subnet),
            gateway=str(network.gateway),
            mtu=network.mtu,
            nat=network.nat,
            options=_vxlan_options(network, (data.get("networks") or {}).get(network.name)),
        )
        for position, network in enumerate(spec.networks.values())
    )
    network_ids = {network.name: network for network in networks}
    nodes = Node.objects.bulk_create(
        Node(
            topology=topology,
            position=position,
            name=node.name,
            mode=node.mode,
            container_of=node.container or "",
        )
        for position, node in enumerate(spec.nodes.values())
    )
    node_ids = {node.name: node for node in nodes}
    try:
        with transaction.atomic():  # a savepoint: the transaction stays usable to say which address
            Attachment.objects.bulk_create(
                Attachment(
                    node=node_ids[node.name],
                    network=network_ids[attachment.network],
                    host_id=topology.host_id,
                    position=position,
                    ifname=attachment.ifname,
                    address=str(attachment.address),
                    static=_static(data, node.name, attachment.network),
                )
                for node in spec.nodes.values()
                for position, attachment in enumerate(node.attachments)
            )
    except IntegrityError:
        raise _address_conflict(topology=topology, spec=spec) from None
    Route.objects.bulk_create(
        Route(
            node=node_ids[route.node],
            position=position,
            to=str(route.to),
            via="" if route.via is None else str(route.via),
            dev=route.dev or "",
        )
        for position, route in enumerate(spec.routes)
    )
    PublishedPort.objects.bulk_create(
        _port(node_ids[name], position, text)
        for name, body in _node_bodies(data).items()
        if isinstance(body, Mapping)
        for position, text in enumerate(body.get("ports") or ())
    )
    topology_services_sync(topology=topology, spec=spec)


def _port(node: Node, position: int, text: str) -> PublishedPort:
    # netcore's own reading of one item (the document was validated already)
    item = topology_spec.parse_port_item(text, f"nodes.{node.name}.ports[{position}]")
    return PublishedPort(
        node=node,
        position=position,
        text=text,
        protocol=item.protocol,
        host_ip="" if item.host_ip is None else str(item.host_ip),
        host_port_first=item.host_ports[0],
        host_port_last=item.host_ports[-1],
        container_port_first=item.container_ports[0],
        container_port_last=item.container_ports[-1],
    )


def _vxlan_options(network: topology_spec.NetworkSpec, body: object) -> dict[str, Any]:
    """A vxlan network's options; the static forwarding state of a spanning network's share (peers,
    remote_nodes) as the share gives it."""
    if network.driver != "vxlan":
        return {}
    options: dict[str, Any] = {"vni": network.vni}
    for key in ("local", "remote", "group"):
        value = getattr(network, key)
        if value is not None:
            options[key] = str(value)
    options["dstport"] = network.dstport
    options["learning"] = network.learning
    return {**options, **_forwarding(body)}


def _forwarding(body: object) -> dict[str, Any]:
    """The static forwarding state (FORWARDING_KEYS) a spanning network's share body gives."""
    return {key: body[key] for key in FORWARDING_KEYS if key in body} if isinstance(body, Mapping) else {}


def _address_conflict(*, topology: Topology, spec: TopologySpec) -> Conflict:
    """The Conflict for an address another topology on the host already has (the constraint said so)."""
    mine = {
        str(attachment.address): (node.name, attachment.network)
        for node in spec.nodes.values()
        for attachment in node.attachments
    }
    taken = (
        Attachment.objects.filter(host_id=topology.host_id, address__in=list(mine))
        .exclude(node__topology=topology)
        .select_related("node__topology", "network")
        .first()
    )
    if taken is None:
        return Conflict(f"an address of topology {spec.name} is already taken on the host; try again")
    node, network = mine[taken.address]
    return Conflict(
        f"address {taken.address} of node {node} on network {network} of topology {spec.name} is already"
        f" taken by node {taken.node.name} on network {taken.network.name} of topology"
        f" {taken.node.topology.name}",
        field=f"nodes.{node}.networks.{network}.address",
    )


def _locked_host(host: Host) -> Host:
    return Host.objects.select_for_update().get(pk=host.pk)


_NAME_LINE = re.compile(r"^name:[ \t]*['\"]?([^'\"\s#]+)", re.MULTILINE)


def _document_name(document: object) -> str:
    """The name a (possibly invalid) document gives, for the audit entry of a refused create."""
    if isinstance(document, Mapping):
        return str(document.get("name") or "")
    match = _NAME_LINE.search(document) if isinstance(document, str) else None
    return match.group(1) if match else ""


def _audited_topology(kwargs: Mapping[str, Any]) -> tuple[str, str, str]:
    topology = kwargs["topology"]
    return topology.host.name, topology.name, topology.name


def _audited_new_topology(kwargs: Mapping[str, Any]) -> tuple[str, str, str]:
    name = _document_name(kwargs.get("document"))
    return kwargs["host"].name, name, name


@refusals_audited("topology.create", object_kind="topology", target=_audited_new_topology)
def topology_create(
    *, host: Host, document: Document, user: User, auto_repair: bool = False, source: str | None = None
) -> Topology:
    """Record a topology on the host: validated by netcore, its subnets clear of the host's other
    topologies', its name free there. Nothing is written when anything is refused (but the audit
    log's entry of the refusal). `source`: ui, api, agent or system (default: from the request)."""
    data = _data(document)
    if spans_hosts(data):
        return _span_save(home=host, data=data, root=None, user=user, auto_repair=auto_repair, source=source)
    spec, data = _parse(data)
    with transaction.atomic():
        return _create_row(host=host, spec=spec, data=data, user=user, auto_repair=auto_repair, source=source)


def _create_row(
    *,
    host: Host,
    spec: TopologySpec,
    data: Mapping[str, Any],
    user: User,
    auto_repair: bool,
    source: str | None,
    span_root: Topology | None = None,
    span_share: Mapping[str, Any] | None = None,
) -> Topology:
    """The new row of one topology on one host (in the caller's transaction)."""
    host = _locked_host(host)
    if host.revoked:
        raise Conflict(f"host {host.name} is revoked: give it a new token before giving it topologies")
    if Topology.objects.filter(host=host, name=spec.name).exists():
        raise Conflict(f"topology {spec.name} already exists on host {host.name}", field="name")
    _overlaps(host=host, spec=spec, exclude=None)
    _route_clashes(host=host, spec=spec)
    topology = Topology.objects.create(
        host=host,
        name=spec.name,
        auto_repair=auto_repair,
        span_root=span_root,
        span_share=span_share,
        created_by=user if user is not None and user.is_authenticated else None,
    )
    _write(topology=topology, spec=spec, data=data)
    _record("create", topology, {"version": topology.version, "auto_repair": auto_repair}, user, source)
    return topology


def _record(action: str, topology: Topology, details: dict[str, Any], user: User, source: str | None) -> None:
    """The audit entry of a change to a topology (topology.create, .update, .delete)."""
    audit_record(
        action=f"topology.{action}",
        object_kind="topology",
        host=topology.host.name,
        name=topology.name,
        topology=topology.name,
        details=details,
        user=user,
        source=source,
    )


def check_version(topology: Topology, version: int) -> None:
    """Conflict (field version) unless the topology is at `version`."""
    if topology.version != version:
        raise Conflict(
            f"topology {topology.name} on host {topology.host.name} is at version {topology.version}, not"
            f" {version}: someone changed it meanwhile; read it again and redo the change",
            field="version",
        )


@refusals_audited("topology.update", object_kind="topology", target=_audited_topology)
def topology_update(
    *,
    topology: Topology,
    document: Document,
    version: int,
    user: User,
    auto_repair: bool | None = None,
    source: str | None = None,
    change: str = "",
) -> Topology:
    """Replace the topology's rows with `document` if it is still at `version` (else Conflict).
    Addresses allocated before stay where they were (_with_kept_addresses). `change` says what
    changed, for the audit log (the object edits of webapp.networks.edits)."""
    _not_a_share(topology)
    data = _data(document)
    if spans_hosts(data) or topology.span_document is not None:
        return _span_save(
            home=topology.host,
            data=data,
            root=topology,
            version=version,
            user=user,
            auto_repair=auto_repair,
            source=source,
            change=change,
        )
    with transaction.atomic():
        current = _current(topology)
        check_version(current, version)
        spec = _parse(_with_kept_addresses(data=data, topologies=[current]) or data)[0]
        _same_name(spec, topology)
        _update_row(
            current=current, spec=spec, data=data, user=user, auto_repair=auto_repair, source=source,
            change=change,
        )  # fmt: skip
    return current


def _not_a_share(topology: Topology) -> None:
    """Conflict for a host's share of a spanning topology: it changes with the whole file only."""
    if topology.span_root_id is not None:
        root = Topology.objects.select_related("host").get(pk=topology.span_root_id)
        raise Conflict(
            f"topology {topology.name} on host {topology.host.name} is that host's share of topology"
            f" {root.name} spanning hosts from {root.host.name}: change it there"
        )


def _same_name(spec: TopologySpec, topology: Topology) -> None:
    if spec.name != topology.name:
        raise InvalidInput(
            f"the topology is named {topology.name}; a new name is a new topology (create it, then"
            f" delete this one)",
            field="name",
        )


def _current(topology: Topology) -> Topology:
    """The topology's row, read again under its host's lock (in the caller's transaction)."""
    host = _locked_host(topology.host)
    current = Topology.objects.select_related("host").filter(pk=topology.pk).first()
    if current is None:
        raise Conflict(f"topology {topology.name} on host {host.name} was deleted meanwhile")
    return current


def _update_row(
    *,
    current: Topology,
    spec: TopologySpec,
    data: Mapping[str, Any],
    user: User,
    auto_repair: bool | None,
    source: str | None,
    change: str = "",
) -> None:
    """Replace the rows of one topology on one host by `spec`, one version up (in the caller's
    transaction, the host locked)."""
    _overlaps(host=current.host, spec=spec, exclude=current)
    _route_clashes(host=current.host, spec=spec)
    current.networks.all().delete()
    current.nodes.all().delete()
    _version_up(current=current, user=user, auto_repair=auto_repair, source=source, change=change)
    _write(topology=current, spec=spec, data=data)


def _version_up(
    *, current: Topology, user: User, auto_repair: bool | None, source: str | None, change: str
) -> None:
    """Save the row one version up, with its audit entry (topology.update)."""
    previous = current.version
    current.version += 1
    if auto_repair is not None:
        current.auto_repair = auto_repair
    current.save(update_fields=["version", "auto_repair", "span_share", "updated"])
    details = {"version": current.version, "previous_version": previous}
    if change:
        details["change"] = change
    _record("update", current, {**details, "auto_repair": current.auto_repair}, user, source)


# Topologies spanning hosts (netcore.topology.span): the home row keeps the whole file; each host of
# it has a row of its own holding its share, written here with the home row in one transaction.


def _span_save(
    *,
    home: Host,
    data: Any,
    root: Topology | None,
    user: User,
    auto_repair: bool | None,
    source: str | None,
    version: int | None = None,
    change: str = "",
) -> Topology:
    """Create or update a spanning topology: split the file by host, then create, update or delete each
    host's row so that they hold exactly the shares (a host whose share is unchanged is left alone)."""
    if isinstance(data, Mapping) and data.get("services"):
        raise InvalidInput(
            "services of a topology spanning hosts are not served yet: register them on each host's"
            " network through the catalog API",
            field="services",
        )
    with transaction.atomic():
        if root is not None:
            root = _current(root)
            check_version(root, version if version is not None else root.version)
            span_rows = _span_rows(root)
            kept = _with_kept_addresses(data=data, topologies=span_rows)
            split = _span_split(home=home, data=kept or data)
            _same_name(split.spec, root)
        else:
            split, span_rows = _span_split(home=home, data=data), []
        hosts = {host.name: host for host in Host.objects.filter(name__in=split.shares)}
        unknown = [name for name in split.shares if name not in hosts]
        if unknown:
            raise InvalidTopology({DOCUMENT_FIELD: [f"no host named {', '.join(unknown)}: add it first"]})
        rows = {row.host.name: row for row in span_rows}
        repair = auto_repair if auto_repair is not None else root is not None and root.auto_repair
        common = {"user": user, "auto_repair": repair, "source": source}
        for name, share in split.shares.items():
            row = rows.pop(name, None)
            if row is None:
                spec = topology_spec.parse(share, source=DOCUMENT_FIELD)
                row = _create_row(
                    host=hosts[name], spec=spec, data=share, span_root=root, span_share=share, **common
                )
                root = root or row  # the home host's share comes first: its row is the home row
                continue
            if row.span_share == share and row != root:
                continue  # untouched: its version (what its host last applied) stays
            if row is not root:  # another host's row: read again under that host's lock
                row = _current(row)
            same_objects = changed_nodes(row.span_share, share) == []
            row.span_share = share
            if same_objects:  # the same rows; at most other hosts' endpoints moved (peers, remote_nodes)
                _forwarding_write(topology=row, share=share)
                _version_up(current=row, change=change, **common)
            else:
                spec = topology_spec.parse(share, source=DOCUMENT_FIELD)
                _update_row(current=row, spec=spec, data=share, change=change, **common)
        assert root is not None
        root.span_document = dict(data)
        root.save(update_fields=["span_document"])
        for name, row in rows.items():  # hosts the topology no longer reaches
            if last_applied(row.id) is not None:
                raise Conflict(
                    f"topology {row.name} is applied on host {name}, which it would no longer reach:"
                    f" destroy it there first (POST /api/v1/topologies/{row.name}/destroy/?host={name})"
                )
            _record("delete", row, {"version": row.version, "span": root.name}, user, source)
            row.delete()
    return root


def _forwarding_write(*, topology: Topology, share: Mapping[str, Any]) -> None:
    """The static forwarding state (FORWARDING_KEYS) of the share's spanning networks onto their rows."""
    bodies = share.get("networks") or {}
    for network in topology.networks.filter(driver=Network.Driver.VXLAN):
        options = {key: value for key, value in network.options.items() if key not in FORWARDING_KEYS}
        options.update(_forwarding(bodies.get(network.name)))
        if options != network.options:
            network.options = options
            network.save(update_fields=["options"])


def _span_split(*, home: Host, data: Any) -> Span:
    vteps = dict(Host.objects.exclude(underlay=None).values_list("name", "underlay"))
    try:
        return span_split(data, home=home.name, vteps=vteps)
    except InvalidSpec as exc:
        raise _invalid(exc) from None


def _span_rows(root: Topology) -> list[Topology]:
    """The home row and every host's share row of a spanning topology (a row of one host: itself)."""
    return [root, *Topology.objects.filter(span_root=root).select_related("host").order_by("id")]


@refusals_audited("topology.delete", object_kind="topology", target=_audited_topology)
def topology_delete(
    *, topology: Topology, version: int | None = None, user: User = None, source: str | None = None
) -> None:
    """Forget the topology (at `version`, if given), with every host's share when it spans hosts. What
    an apply created stays on the hosts: destroy it first."""
    _not_a_share(topology)
    with transaction.atomic():
        _locked_host(topology.host)
        current = Topology.objects.select_related("host").filter(pk=topology.pk).first()
        if current is None:
            return
        if version is not None:
            check_version(current, version)
        _record("delete", current, {"version": current.version}, user, source)
        catalog_topology_changed(host_id=current.host_id, topology=current.name)
        topology_services_forget(topology=current)
        current.delete()


def topology_document(*, topology: Topology, pinned: bool = False) -> dict[str, Any]:
    """The netcore topology document of the rows. Addresses given in the file are written; with
    `pinned`, allocated ones too, so that the agent applies exactly the addresses recorded here
    (netcore resolves either document to the same TopologySpec). Read with values() queries: this
    runs on every plan and apply, and model instances of 500 nodes cost a quarter of a second."""
    document: dict[str, Any] = {"name": topology.name, "networks": {}, "nodes": {}}
    for name, driver, subnet, gateway, mtu, nat, options in topology.networks.order_by(
        "position"
    ).values_list("name", "driver", "subnet", "gateway", "mtu", "nat", "options"):
        body: dict[str, Any] = {"driver": driver, "subnet": subnet, "gateway": gateway}
        if mtu is not None:
            body["mtu"] = mtu
        if nat:
            body["nat"] = True
        body.update(options)
        document["networks"][name] = body
    nodes: dict[int, dict[str, Any]] = {}
    for node_id, name, mode, container_of in topology.nodes.order_by("position").values_list(
        "id", "name", "mode", "container_of"
    ):
        item: dict[str, Any] = {}
        if mode == Node.Mode.CONTAINER:
            item["mode"] = f"container:{container_of}"
        elif mode != Node.Mode.BRIDGE:
            item["mode"] = mode
        nodes[node_id] = item
        document["nodes"][name] = item
    attachments: dict[int, list[tuple[str, str, bool]]] = {}
    for node_id, network, address, static in (
        Attachment.objects.filter(node__topology=topology)
        .order_by("node_id", "position")
        .values_list("node_id", "network__name", "address", "static")
    ):
        attachments.setdefault(node_id, []).append((network, address, static))
    for node_id, wanted in attachments.items():
        if any(static or pinned for _, _, static in wanted):
            nodes[node_id]["networks"] = {
                network: ({"address": address} if static or pinned else {})
                for network, address, static in wanted
            }
        else:
            nodes[node_id]["networks"] = [network for network, _, _ in wanted]
    for node_id, text in (
        PublishedPort.objects.filter(node__topology=topology)
        .order_by("node_id", "position")
        .values_list("node_id", "text")
    ):
        nodes[node_id].setdefault("ports", []).append(text)
    routes = []
    for node, to, via, dev in (
        Route.objects.filter(node__topology=topology)
        .order_by("position")
        .values_list("node__name", "to", "via", "dev")
    ):
        entry: dict[str, Any] = {"node": node, "to": to}
        if via:
            entry["via"] = via
        if dev:
            entry["dev"] = dev
        routes.append(entry)
    if routes:
        document["routes"] = routes
    if not pinned:  # the agent applies the kernel's part; the catalog is sent on its own
        services = topology_services_document(topology=topology)
        if services:
            document["services"] = services
    return document


def topology_file(*, topology: Topology) -> dict[str, Any]:
    """The file a user edits: a spanning topology's whole file on its home row, else topology_document."""
    if topology.span_document is not None:
        return copy.deepcopy(topology.span_document)
    return topology_document(topology=topology)


def topology_yaml(*, topology: Topology, pinned: bool = False) -> str:
    """The topology file as YAML text: topology_file, or with `pinned` topology_document pinned (what
    the host's agent runs: for a spanning topology, that host's share)."""
    return document_yaml(
        topology_document(topology=topology, pinned=True) if pinned else topology_file(topology=topology)
    )


def document_yaml(document: Mapping[str, Any]) -> str:
    """A document as YAML text (libyaml's emitter where there is one: ten times the pure-Python one)."""
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    return yaml.dump(
        dict(document), Dumper=dumper, sort_keys=False, default_flow_style=False, allow_unicode=True
    )


def _apply_scope(*, topology: Topology, document: Mapping[str, Any]) -> list[str] | None:
    """The nodes an apply of `document` must converge (netcore.topology.scope), or None for all: when
    the last apply of the topology succeeded and its live state shows no drift from it since, the
    other nodes' namespaces still match and are not read again."""
    if topology.drift:
        return None
    applied = last_applied(topology.id)
    if applied is None:
        return None
    try:
        before = topology_spec.load_data(applied.document)
    except InvalidSpec:
        return None
    return changed_nodes(before, document)


def document_json(document: Mapping[str, Any]) -> str:
    """A document as JSON text, which is YAML too: what an operation runs. Written and read (netcore's
    load_data) at a fraction of YAML's cost, which for a few hundred nodes is a tenth of a second
    each way (more on an agent without libyaml)."""
    return json.dumps(document, ensure_ascii=False)


def topology_operation(
    *, topology: Topology, kind: str, user: User, reason: str = "", source: str | None = None
) -> Operation:
    """Queue plan, apply or destroy of the topology on its host: the compiled document, every address
    pinned, is what the agent runs (netcore's engine converges the host to it). An apply converges
    only the nodes that changed since the last apply when the host has not drifted (_apply_scope)."""
    document = topology_document(topology=topology, pinned=True)
    return operation_create(
        host=topology.host,
        kind=kind,
        topology_text=document_json(document),
        nodes=_apply_scope(topology=topology, document=document) if kind == Operation.Kind.APPLY else None,
        user=user,
        topology=topology,
        topology_version=topology.version,
        reason=reason,
        source=source,
    )


def topology_operations(*, topology: Topology, kind: str, user: User) -> list[Operation]:
    """Queue plan, apply or destroy of the topology on its host and, for a topology spanning hosts
    named by its home row, of every host's share on that host (home first): one operation each."""
    return [topology_operation(topology=row, kind=kind, user=user) for row in _span_rows(topology)]


# Reconcile (level-based): when a host's agent connects, every topology applied there is planned
# again; the plan's changes say whether the host merely lost what was applied (a reboot, a fresh
# host: only creations, restored by an apply) or someone changed the kernel by hand (changes or
# removals: drift, shown and left alone unless the topology has auto_repair).

RECONCILE_ON_CONNECT = "reconcile on connect"
RECONCILE_RESTORE = "reconcile: restore what the host lost"
RECONCILE_REPAIR = "reconcile: repair drift (auto_repair)"
REPAIR_ASKED = "repair drift"


class Reconcile(enum.Enum):
    """What a reconcile plan calls for."""

    READY = "ready"  # nothing to change: the kernel matches
    RESTORE = "restore"  # only creations: apply
    DRIFTED = "drifted"  # changes or removals: show them, do not apply
    REPAIR = "repair"  # changes or removals, and the topology has auto_repair: apply


def reconcile_decision(*, result: object, auto_repair: bool) -> Reconcile:
    """What to do after a reconcile plan of an applied topology came back with `result`."""
    actions = {change.get("action") for change in plan_changes(result)}
    if not actions:
        return Reconcile.READY
    if actions == {"create"}:
        return Reconcile.RESTORE
    return Reconcile.REPAIR if auto_repair else Reconcile.DRIFTED


def last_applied(topology_id: int) -> Operation | None:
    """Its latest apply or destroy (not cancelled), if that is an apply that succeeded: what the
    host should have of it now (plans in between, like reconcile's, change nothing)."""
    latest = (
        Operation.objects.filter(
            topology_id=topology_id, kind__in=[Operation.Kind.APPLY, Operation.Kind.DESTROY]
        )
        .exclude(status=Operation.Status.CANCELLED)
        .order_by("-created")
        .first()
    )
    applied = latest is not None and latest.kind == Operation.Kind.APPLY
    return latest if applied and latest.status == Operation.Status.SUCCEEDED else None


def _busy(topology: Topology) -> bool:
    return Operation.objects.filter(
        topology=topology, status__in=[Operation.Status.PENDING, Operation.Status.RUNNING]
    ).exists()


@refusals_audited("topology.repair", object_kind="topology", target=_audited_topology)
def topology_repair(
    *, topology: Topology, user: User, reason: str = REPAIR_ASKED, source: str | None = None
) -> Operation:
    """Queue an apply of the document last applied (not of edits made since: apply does that), which
    puts back what the host lost or someone changed by hand. Conflict when it is not applied."""
    applied = last_applied(topology.id)
    if applied is None:
        raise Conflict(
            f"topology {topology.name} is not applied on host {topology.host.name}: there is nothing to"
            " repair; apply it instead"
        )
    return operation_create(
        host=topology.host,
        kind="apply",
        topology_text=applied.document,
        user=user,
        topology=topology,
        topology_version=applied.topology_version,
        reason=reason,
        source=source,
    )


def topologies_auto_repair(topologies: list[Topology]) -> list[Operation]:
    """Repair those of `topologies` that drifted and have auto_repair, unless work is queued for
    them already (that work decides): called when live drift is recorded."""
    return [
        topology_repair(topology=topology, user=None, reason=RECONCILE_REPAIR)
        for topology in topologies
        if topology.drift and topology.auto_repair and not _busy(topology)
    ]


def topologies_reconcile_on_connect(*, host_id: int) -> list[Operation]:
    """Queue a plan (reason RECONCILE_ON_CONNECT) of every topology of the host that was applied
    there and has no operation pending or running: called when the host's agent says hello.

    The plan runs the document last applied, not the rows as they are now: reconcile restores what
    was applied; an edit nobody applied yet is never applied by it."""
    busy = Operation.objects.filter(
        topology_id=OuterRef("pk"), status__in=[Operation.Status.PENDING, Operation.Status.RUNNING]
    )
    queued = []
    for topology in (
        Topology.objects.filter(host_id=host_id).exclude(Exists(busy)).select_related("host").order_by("name")
    ):
        applied = last_applied(topology.id)
        if applied is not None:
            queued.append(
                operation_create(
                    host=topology.host,
                    kind="plan",
                    topology_text=applied.document,
                    user=None,
                    topology=topology,
                    topology_version=applied.topology_version,
                    reason=RECONCILE_ON_CONNECT,
                )
            )
    return queued


def topology_reconcile_after_plan(*, operation: Operation) -> Operation | None:
    """After a reconcile plan succeeded: queue the apply it calls for (restore, or repair with
    auto_repair) and return it; None when the kernel matches or drifted (the topology's status, derived
    from this plan, says so)."""
    if (
        operation.reason != RECONCILE_ON_CONNECT
        or operation.kind != Operation.Kind.PLAN
        or operation.status != Operation.Status.SUCCEEDED
        or operation.topology_id is None
    ):
        return None
    topology = Topology.objects.select_related("host").filter(id=operation.topology_id).first()
    if topology is None:
        return None
    decision = reconcile_decision(result=operation.result, auto_repair=topology.auto_repair)
    if decision not in (Reconcile.RESTORE, Reconcile.REPAIR):
        return None
    if _busy(topology):
        return None  # someone queued work meanwhile: that decides
    reason = RECONCILE_RESTORE if decision is Reconcile.RESTORE else RECONCILE_REPAIR
    # exactly what was planned (the document last applied), whatever the rows say now
    return operation_create(
        host=topology.host,
        kind="apply",
        topology_text=operation.document,
        user=None,
        topology=topology,
        topology_version=operation.topology_version,
        reason=reason,
    )
