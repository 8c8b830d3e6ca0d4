"""Edits of one object of a topology: add, change or remove a network, a node, an attachment, a route.

Each edit is a change to the topology's document: the rows are compiled to a netcore document
(services.topology_file, addresses given by users only), the edit is made to it, and the result
goes through services.topology_update like a new version of the file. So an edit is validated by
netcore exactly like a file (one validator), keeps allocated addresses where they were, is refused
with 409 on a stale version, and is audited with what changed. Problems are reported by the edit's
own field names (`subnet`, `networks.front.address`, `ports[0]`), not by paths in the file.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from ipaddress import ip_network
from typing import Any

from webapp.errors import Conflict, InvalidInput, NotFound
from webapp.networks.models import Topology
from webapp.networks.services import (
    DOCUMENT_FIELD,
    InvalidTopology,
    User,
    check_version,
    topology_file,
    topology_update,
)

Document = dict[str, Any]


def _relative(field: str | None, prefix: str, whole: str) -> str | None:
    """A field path of the document as the edit's own field: `networks.front.subnet` → `subnet`
    for an edit of network front; the object itself (`networks.front`) → `whole`."""
    if field is None or field == prefix:
        return whole if field is not None else None
    return field.removeprefix(f"{prefix}.") if field.startswith(f"{prefix}.") else field


def _edit(
    *,
    topology: Topology,
    version: int,
    user: User,
    change: str,
    edit: Callable[[Document], None],
    prefix: str | Callable[[Document], str],
    whole: str = "name",
) -> Topology:
    """Make `edit` to the topology's document and store the result as its next version."""
    check_version(topology, version)  # before editing rows the caller never saw
    document = topology_file(topology=topology)
    edit(document)
    if callable(prefix):
        prefix = prefix(document)
    try:
        return topology_update(
            topology=topology, document=document, version=version, user=user, change=change
        )
    except InvalidTopology as exc:
        problems: dict[str, list[str]] = {}
        for field, texts in exc.problems.items():
            for text in texts:
                path = field
                if field == DOCUMENT_FIELD and text.startswith(f"{prefix}: "):
                    # a path the field pattern cannot read (a name with spaces): it is the object's
                    path, text = prefix, text.removeprefix(f"{prefix}: ")
                problems.setdefault(_relative(path, prefix, whole) or path, []).append(text)
        raise InvalidTopology(problems) from None
    except Conflict as exc:
        if exc.field is not None and exc.field != "version":
            exc.field = _relative(exc.field, prefix, whole)
        raise


_SECTION = {"network": "networks", "node": "nodes"}


def _section(document: Document, kind: str) -> dict[str, Any]:
    """The networks or the nodes of the document (kind: network or node)."""
    return document.setdefault(_SECTION[kind], {})


def _networks(document: Document) -> dict[str, Any]:
    return _section(document, "network")


def _nodes(document: Document) -> dict[str, Any]:
    return _section(document, "node")


def _existing(document: Document, topology: Topology, kind: str, name: str) -> dict[str, Any]:
    body = _section(document, kind).get(name)
    if body is None:
        raise NotFound(f"topology {topology.name} has no {kind} {name}")
    return body


def _object_add(
    kind: str, *, topology: Topology, version: int, user: User, name: str, body: Mapping[str, Any]
) -> Topology:
    def edit(document: Document) -> None:
        if name in _section(document, kind):
            raise Conflict(f"topology {topology.name} already has a {kind} {name}", field="name")
        _section(document, kind)[name] = dict(body)

    return _edit(
        topology=topology,
        version=version,
        user=user,
        change=f"add {kind} {name}",
        edit=edit,
        prefix=f"{_SECTION[kind]}.{name}",
    )


def _object_change(
    kind: str, *, topology: Topology, version: int, user: User, name: str, body: Mapping[str, Any]
) -> Topology:
    def edit(document: Document) -> None:
        target = _existing(document, topology, kind, name)
        for key, value in body.items():
            if value is None:
                target.pop(key, None)
            else:
                target[key] = value

    return _edit(
        topology=topology,
        version=version,
        user=user,
        change=f"change {kind} {name}",
        edit=edit,
        prefix=f"{_SECTION[kind]}.{name}",
    )


def _attachments(body: Mapping[str, Any]) -> dict[str, Any]:
    """A node's networks as a mapping of network to options (the file allows a list too)."""
    wanted = body.get("networks") or {}
    if isinstance(wanted, Mapping):
        return {network: dict(options or {}) for network, options in wanted.items()}
    return {network: {} for network in wanted}


def _using(document: Document, network: str) -> list[str]:
    return [name for name, body in _nodes(document).items() if network in _attachments(body)]


def network_add(
    *, topology: Topology, version: int, user: User, name: str, body: Mapping[str, Any]
) -> Topology:
    """Add network `name` (body: the file's keys: subnet, gateway, mtu, nat, driver, vxlan options)."""
    return _object_add("network", topology=topology, version=version, user=user, name=name, body=body)


def network_change(
    *, topology: Topology, version: int, user: User, name: str, body: Mapping[str, Any]
) -> Topology:
    """Change keys of network `name`; a key given as None goes back to its default."""
    return _object_change("network", topology=topology, version=version, user=user, name=name, body=body)


def network_delete(*, topology: Topology, version: int, user: User, name: str) -> Topology:
    """Remove network `name`; refused while nodes are attached to it (they would lose an interface)."""

    def edit(document: Document) -> None:
        _existing(document, topology, "network", name)
        attached = _using(document, name)
        if attached:
            raise Conflict(
                f"network {name} of topology {topology.name} has nodes attached ({', '.join(attached)}):"
                " detach or delete them first",
                field="network",
            )
        del _networks(document)[name]

    return _edit(
        topology=topology,
        version=version,
        user=user,
        change=f"delete network {name}",
        edit=edit,
        prefix=f"networks.{name}",
    )


def node_add(*, topology: Topology, version: int, user: User, name: str, body: Mapping[str, Any]) -> Topology:
    """Add node `name` (body: the file's keys: mode, networks, ports)."""
    return _object_add("node", topology=topology, version=version, user=user, name=name, body=body)


def node_change(
    *, topology: Topology, version: int, user: User, name: str, body: Mapping[str, Any]
) -> Topology:
    """Replace keys of node `name` (networks replaces its attachments); None removes a key."""
    return _object_change("node", topology=topology, version=version, user=user, name=name, body=body)


def node_delete(*, topology: Topology, version: int, user: User, name: str) -> Topology:
    """Remove node `name` and its routes; refused while another node shares its namespace."""

    def edit(document: Document) -> None:
        _existing(document, topology, "node", name)
        sharing = [
            other for other, body in _nodes(document).items() if body.get("mode") == f"container:{name}"
        ]
        if sharing:
            raise Conflict(
                f"node {name} of topology {topology.name} shares its namespace with {', '.join(sharing)}:"
                " delete those first",
                field="node",
            )
        del _nodes(document)[name]
        _drop_instances(document, name)
        routes = [route for route in document.get("routes", []) if route.get("node") != name]
        if routes:
            document["routes"] = routes
        else:
            document.pop("routes", None)

    return _edit(
        topology=topology,
        version=version,
        user=user,
        change=f"delete node {name}",
        edit=edit,
        prefix=f"nodes.{name}",
    )


def node_attach(
    *, topology: Topology, version: int, user: User, name: str, network: str, address: str | None = None
) -> Topology:
    """Attach node `name` to `network` (a new interface), with `address` or an allocated one."""

    def edit(document: Document) -> None:
        node = _existing(document, topology, "node", name)
        attachments = _attachments(node)
        if network in attachments:
            raise Conflict(f"node {name} is already on network {network}", field="network")
        attachments[network] = {} if address is None else {"address": address}
        node["networks"] = attachments

    return _edit(
        topology=topology,
        version=version,
        user=user,
        change=f"attach node {name} to {network}",
        edit=edit,
        prefix=f"nodes.{name}.networks.{network}",
        whole="network",
    )


def node_detach(*, topology: Topology, version: int, user: User, name: str, network: str) -> Topology:
    """Detach node `name` from `network` (its interface there goes)."""

    def edit(document: Document) -> None:
        node = _existing(document, topology, "node", name)
        attachments = _attachments(node)
        if network not in attachments:
            raise InvalidInput(f"node {name} is not on network {network}", field="network")
        del attachments[network]
        node["networks"] = attachments
        _drop_instances(document, name, network=network)

    return _edit(
        topology=topology,
        version=version,
        user=user,
        change=f"detach node {name} from {network}",
        edit=edit,
        prefix=f"nodes.{name}.networks.{network}",
        whole="network",
    )


def _drop_instances(document: Document, node: str, *, network: str | None = None) -> None:
    """A node leaving (a network): it stops being an instance of the file's services (there)."""
    for body in (document.get("services") or {}).values():
        if not isinstance(body, dict) or not isinstance(body.get("instances"), list):
            continue
        if network is None or body.get("network") == network:
            body["instances"] = [
                item
                for item in body["instances"]
                if (item.get("node") if isinstance(item, dict) else item) != node
            ]


def _same_destination(route: Mapping[str, Any], to: str) -> bool:
    try:
        return ip_network(str(route.get("to")), strict=False) == ip_network(to, strict=False)
    except ValueError:
        return False


def route_add(
    *, topology: Topology, version: int, user: User, node: str, body: Mapping[str, Any]
) -> Topology:
    """Add a route to node `node` (body: to, via, dev)."""

    def edit(document: Document) -> None:
        _existing(document, topology, "node", node)
        document.setdefault("routes", []).append({"node": node, **body})

    return _edit(
        topology=topology,
        version=version,
        user=user,
        change=f"add route {body.get('to')} to node {node}",
        edit=edit,
        prefix=lambda document: f"routes[{len(document['routes']) - 1}]",
        whole="to",
    )


def route_delete(*, topology: Topology, version: int, user: User, node: str, to: str) -> Topology:
    """Remove node `node`'s route to `to`."""

    def edit(document: Document) -> None:
        _existing(document, topology, "node", node)
        routes = document.get("routes", [])
        kept = [route for route in routes if not (route.get("node") == node and _same_destination(route, to))]
        if len(kept) == len(routes):
            raise NotFound(f"node {node} of topology {topology.name} has no route to {to}")
        if kept:
            document["routes"] = kept
        else:
            document.pop("routes", None)

    return _edit(
        topology=topology,
        version=version,
        user=user,
        change=f"delete route {to} of node {node}",
        edit=edit,
        prefix="routes",
    )
