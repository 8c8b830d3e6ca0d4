"""Static discovery: the services a topology file declares (its `services:` section) kept as catalog
rows of source "topology", written with the topology and given back when its file is read.

The file is their desired state: a write of the topology makes its services and their instances what
the file says (instances registered through the API beside them stay), and the catalog API refuses
to change them elsewhere. Names are global, as every service's: one the catalog already has from
elsewhere is a conflict that names the file's field.
"""

from __future__ import annotations

from typing import Any

from netcore.topology.services_section import FileInstance, FileService, address_name
from netcore.topology.spec import TopologySpec
from webapp.catalog.docker_networks import network_text
from webapp.catalog.models import Instance, Service, Source
from webapp.catalog.services import catalog_changed, catalog_check, served_clash_check, vip_check
from webapp.errors import Conflict
from webapp.networks.models import Network, Topology


def topology_services_sync(*, topology: Topology, spec: TopologySpec) -> None:
    """Make the topology's file services what `spec` declares (in the caller's transaction, after
    its networks and nodes are written); the catalog moves only when something changed."""
    rows = {
        s.name: s
        for s in Service.objects.filter(
            host_id=topology.host_id, topology=topology.name, source=Source.TOPOLOGY
        )
    }
    changed = False
    for gone in rows.keys() - spec.services.keys():
        rows.pop(gone).delete()
        changed = True
    networks = {n.name: n for n in Network.objects.filter(topology=topology).select_related("topology")}
    for declared in spec.services.values():
        changed |= _service_sync(topology, declared, rows.get(declared.name), networks[declared.network])
    if changed:
        catalog_check(topology.host_id)
        catalog_changed([topology.host_id])


def _service_sync(topology: Topology, declared: FileService, row: Service | None, network: Network) -> bool:
    field = f"services.{declared.name}"
    if row is None:
        other = Service.objects.filter(name=declared.name).select_related("host").first()
        if other is not None:
            raise Conflict(
                f"service {declared.name} already exists ({other.source}, on {network_text(other)} of host"
                f" {other.host.name}): name the file's service otherwise, or delete that one",
                field=field,
            )
    served_clash_check(topology.host, network, declared.name)
    if declared.vip is not None:
        vip_check(topology.host, network, str(declared.vip), service=row)
    wanted = {
        "network": declared.network,
        "port": declared.port,
        "protocol": declared.protocol,
        "vip": "" if declared.vip is None else str(declared.vip),
        "tags": list(declared.tags),
        "meta": dict(declared.meta),
        "health_check": dict(declared.check) if declared.check is not None else None,
    }
    changed = row is None or any(getattr(row, key) != value for key, value in wanted.items())
    if row is None:
        row = Service.objects.create(
            name=declared.name,
            host_id=topology.host_id,
            topology=topology.name,
            source=Source.TOPOLOGY,
            **wanted,
        )
    elif changed:
        for key, value in wanted.items():
            setattr(row, key, value)
        row.save()
    return _instances_sync(row, declared.instances, field=f"{field}.instances") or changed


def _instances_sync(service: Service, declared: tuple[FileInstance, ...], *, field: str) -> bool:
    rows = {i.name: i for i in Instance.objects.filter(service=service)}
    changed = False
    for name in [
        n for n, row in rows.items() if row.source == Source.TOPOLOGY and n not in {d.name for d in declared}
    ]:
        rows.pop(name).delete()
        changed = True
    for instance in declared:
        wanted = {
            "node": instance.node or "",
            "address": "" if instance.address is None else str(instance.address),
            "port": instance.port,
            "weight": instance.weight,
        }
        row = rows.get(instance.name)
        if row is not None and row.source != Source.TOPOLOGY:
            raise Conflict(
                f"service {service.name} has an instance {instance.name} registered through the"
                f" {row.source}: deregister it or name the file's instance otherwise",
                field=field,
            )
        if row is None:
            Instance.objects.create(service=service, name=instance.name, source=Source.TOPOLOGY, **wanted)
            changed = True
        elif any(getattr(row, key) != value for key, value in wanted.items()):
            for key, value in wanted.items():
                setattr(row, key, value)
            row.save()
            changed = True
    return changed


def topology_services_forget(*, topology: Topology) -> None:
    """The topology is being deleted: its file's services go with it."""
    gone = Service.objects.filter(host_id=topology.host_id, topology=topology.name, source=Source.TOPOLOGY)
    if gone.delete()[0]:
        catalog_changed([topology.host_id])


def topology_services_document(*, topology: Topology) -> dict[str, Any]:
    """The file's `services:` section from the rows (defaults left out, as a person writes it)."""
    section: dict[str, Any] = {}
    services = Service.objects.filter(
        host_id=topology.host_id, topology=topology.name, source=Source.TOPOLOGY
    )
    instances: dict[int, list[Instance]] = {}
    for instance in Instance.objects.filter(service__in=services, source=Source.TOPOLOGY).order_by("id"):
        instances.setdefault(instance.service_id, []).append(instance)
    for service in services.order_by("name"):
        body: dict[str, Any] = {"network": service.network, "port": service.port}
        if service.protocol != Service.Protocol.TCP:
            body["protocol"] = service.protocol
        for key, value in (("vip", service.vip), ("tags", service.tags), ("meta", service.meta)):
            if value:
                body[key] = value
        if service.health_check:
            body["check"] = service.health_check
        body["instances"] = [_instance_item(i) for i in instances.get(service.id, [])]
        section[service.name] = body
    return section


def _instance_item(instance: Instance) -> str | dict[str, Any]:
    """A node with nothing else is written by its name alone."""
    if instance.node and instance.name == instance.node and instance.port is None and instance.weight == 1:
        return instance.node
    item: dict[str, Any] = {"node": instance.node} if instance.node else {"address": instance.address}
    if instance.name != (instance.node or address_name(instance.address, instance.port)):
        item["name"] = instance.name
    if instance.port is not None:
        item["port"] = instance.port
    if instance.weight != 1:
        item["weight"] = instance.weight
    return item
