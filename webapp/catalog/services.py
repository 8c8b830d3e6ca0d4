"""Writes of the service catalog: services, instance registrations and their leases, and the health
agents report.

Every registration is checked before anything is written: against the host's topologies (the network
and node must exist, an address must be in the network's subnet, a VIP must be free), then as a whole
through netcore.services.catalog.catalog_parse, the code the agent runs, so what is stored is what the
agent will serve. Each change raises the catalog index (blocking queries wake on it) and, once the
transaction commits, sends the host's agent its new catalog.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Iterable, Mapping
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from netcore.errors import InvalidSpec
from netcore.services.catalog import LABEL, catalog_parse
from netcore.topology.services_section import address_name
from webapp import layer
from webapp.audit.services import audit_record
from webapp.catalog.docker_networks import DOCKER, docker_vip_check, network_text, served_network
from webapp.catalog.models import CatalogIndex, Health, HealthPoint, HostCatalog, Instance, Service, Source
from webapp.catalog.selectors import catalog_for_host, instance_rows, live_instances, service_network
from webapp.errors import Conflict, InvalidInput, NotFound
from webapp.hosts.models import Host
from webapp.hosts.selectors import host_get
from webapp.networks.models import Attachment, Network

CATALOG_GROUP = "catalog"  # every blocking query and catalog page: `catalog.changed` {index}
MAX_TTL = 24 * 3600  # seconds a lease may run
SAMPLE_EVERY = dt.timedelta(seconds=5)  # history keeps every state change, other results this often
HISTORY_KEEP = 240  # points kept per instance

User = AbstractBaseUser | AnonymousUser | None


# -- index and notifications ------------------------------------------------------------------------


def catalog_changed(host_ids: Iterable[int]) -> int:
    """Raise the catalog index; once committed, wake blocking queries and send the hosts' agents their
    catalogs."""
    CatalogIndex.objects.get_or_create(pk=1)
    CatalogIndex.objects.filter(pk=1).update(value=F("value") + 1)
    index = CatalogIndex.objects.get(pk=1).value
    hosts = sorted(set(host_ids))

    def send() -> None:
        group_send = async_to_sync(get_channel_layer().group_send)
        group_send(CATALOG_GROUP, {"type": "catalog.changed", "index": index})
        for host_id in hosts:
            group_send(layer.agent_group(host_id), {"type": "catalog.push"})

    transaction.on_commit(send)
    return index


def catalog_topology_changed(*, host_id: int, topology: str) -> None:
    """A topology was written or removed: if services live on it, its host's agent gets the catalog
    again (node addresses and networks may have moved), once the transaction commits."""
    if Service.objects.filter(host_id=host_id, topology=topology).exists():
        catalog_changed([host_id])


# -- services ---------------------------------------------------------------------------------------


def _network_find(host: Host, network: str) -> Network:
    """A host's managed network, written `topology/network` or, when unambiguous, `network`."""
    topology, _, name = network.rpartition("/")
    found = Network.objects.filter(topology__host=host, name=name).select_related("topology")
    if topology:
        found = found.filter(topology__name=topology)
    matches = list(found)
    if not matches:
        raise NotFound(f"host {host.name} has no network {network}", field="network")
    if len(matches) > 1:
        options = ", ".join(f"{n.topology.name}/{n.name}" for n in matches)
        raise InvalidInput(
            f"network {name} is in several topologies on {host.name}: write one of {options}", field="network"
        )
    return matches[0]


def vip_check(host: Host, network: Network, vip: str, *, service: Service | None) -> None:
    """Refuse (naming `vip`) an address that is no free IPv4 host address of the network: outside its
    subnet, its gateway, a node's, or another service's than `service`."""
    try:
        address = ipaddress.ip_address(vip)
    except ValueError:
        raise InvalidInput(f"{vip!r} is not an IP address", field="vip") from None
    if address.version != 4:
        raise InvalidInput("service addresses are IPv4 for now", field="vip")
    subnet = ipaddress.ip_network(network.subnet)
    if address not in subnet or address in (subnet.network_address, subnet.broadcast_address):
        raise InvalidInput(f"{vip} is not a host address of network {network.name} ({subnet})", field="vip")
    if vip == network.gateway:
        raise Conflict(f"{vip} is network {network.name}'s gateway", field="vip")
    holder = Attachment.objects.filter(host=host, address=vip).select_related("node").first()
    if holder is not None:
        raise Conflict(f"{vip} is node {holder.node.name}'s address", field="vip")
    other = Service.objects.filter(host=host, vip=vip).exclude(pk=service.pk if service else None).first()
    if other is not None:
        raise Conflict(f"{vip} is service {other.name}'s address", field="vip")


def served_clash_check(host: Host, network: Network, name: str) -> None:
    """Two served networks of one host with the same name would answer the same DNS names."""
    other = (
        Service.objects.filter(host=host, network=network.name)
        .exclude(topology=network.topology.name)
        .exclude(name=name)
        .first()
    )
    if other is not None:
        raise Conflict(
            f"{network_text(other)} already serves "
            f"{other.name}.{network.name}: services of one host need networks of different names",
            field="network",
        )


def catalog_check(host_id: int) -> None:
    """Parse the host's whole catalog as its agent will (inside the caller's transaction)."""
    try:
        catalog_parse(catalog_for_host(host_id))
    except InvalidSpec as exc:
        raise InvalidInput(str(exc).split(": ", 1)[-1], field=_field_of(exc.obj)) from None


def _field_of(path: str | None) -> str:
    """The API field of a catalog path: networks[0].services[1].check.interval → check.interval."""
    if not path:
        return "non_field_errors"
    tail = path.rsplit("]", 1)[-1].lstrip(".")
    return tail or "non_field_errors"


@transaction.atomic
def service_create(
    *,
    user: User,
    name: str,
    host: str,
    network: str,
    port: int,
    protocol: str = "tcp",
    vip: str = "",
    tags: list[str] | None = None,
    meta: Mapping[str, str] | None = None,
    check: Mapping[str, Any] | None = None,
    source: str = Source.API,
) -> Service:
    """A new service on a host's managed network."""
    found_host = host_get(name=host)
    if Service.objects.filter(name=name).exists():
        raise Conflict(f"service {name} already exists", field="name")
    net = _network_find(found_host, network)
    if not LABEL.match(net.name):
        raise InvalidInput(
            f"network {net.name}'s name is not a DNS label (a-z, 0-9 and '-'): its DNS names cannot carry it",
            field="network",
        )
    served_clash_check(found_host, net, name)
    if vip:
        vip_check(found_host, net, vip, service=None)
    service = Service.objects.create(
        name=name,
        host=found_host,
        topology=net.topology.name,
        network=net.name,
        port=port,
        protocol=protocol,
        vip=vip,
        tags=list(tags or []),
        meta=dict(meta or {}),
        health_check=dict(check) if check else None,
        source=source,
    )
    catalog_check(found_host.id)
    catalog_changed([found_host.id])
    audit_record(
        action="create",
        object_kind="service",
        host=found_host.name,
        name=name,
        topology=net.topology.name,
        details={"network": net.name, "port": port, "vip": vip},
        user=user,
    )
    return service


@transaction.atomic
def service_update(*, user: User, service: Service, changes: Mapping[str, Any]) -> Service:
    """Change a service's port, protocol, VIP, tags, metadata or check."""
    service = Service.objects.select_for_update().get(pk=service.pk)
    _owned_elsewhere(service, "change")
    if changes.get("vip") and service.topology == DOCKER:
        docker_vip_check(service, changes["vip"])
    elif changes.get("vip"):
        network = service_network(service)
        if network is None:
            raise Conflict(f"{network_text(service)} is gone", field="vip")
        vip_check(service.host, network, changes["vip"], service=service)
    for key in ("port", "protocol", "vip", "tags", "meta", "check"):
        if key in changes:
            setattr(service, "health_check" if key == "check" else key, changes[key])
    service.save()
    catalog_check(service.host_id)
    catalog_changed([service.host_id])
    audit_record(
        action="update",
        object_kind="service",
        host=service.host.name,
        name=service.name,
        topology=service.topology,
        details={k: changes[k] for k in changes if k != "check"},
        user=user,
    )
    return service


@transaction.atomic
def service_delete(*, user: User, service: Service) -> None:
    _owned_elsewhere(service, "delete")
    host_id = service.host_id
    audit_record(action="delete", object_kind="service", host=service.host.name, name=service.name, user=user)
    service.delete()
    catalog_changed([host_id])


def _owned_elsewhere(service: Service, doing: str) -> None:
    """A topology file's service changes with its file (webapp.catalog.from_topology); one its
    containers made goes with them (webapp.catalog.docker), though its VIP and check are set here."""
    if service.source == Source.TOPOLOGY:
        raise Conflict(
            f"service {service.name} comes from topology {service.topology}'s file: {doing} it in the"
            " file's services: section",
            field="name",
        )
    if service.source == Source.DOCKER and doing == "delete":
        raise Conflict(
            f"service {service.name} comes from its containers' labels (switchboard.service): it goes"
            " when they stop or lose the label",
            field="name",
        )


# -- instances --------------------------------------------------------------------------------------


@transaction.atomic
def instance_register(
    *,
    user: User,
    service: Service,
    name: str = "",
    node: str = "",
    address: str = "",
    port: int | None = None,
    weight: int = 1,
    meta: Mapping[str, str] | None = None,
    ttl: int | None = None,
    source: str = Source.API,
) -> tuple[Instance, bool]:
    """Register an instance (node of the service's topology, or an address); (instance, created).

    Registering the same instance again (same name, node or address and port) renews its lease and
    changes its weight and metadata; another instance under a taken name, or the same address and port
    twice, is a conflict."""
    if bool(node) == bool(address):
        raise InvalidInput("give a node or an address, not both", field="node" if node else "address")
    if ttl is not None and not 1 <= ttl <= MAX_TTL:
        raise InvalidInput(f"a lease runs 1 to {MAX_TTL} seconds", field="ttl")
    if service.topology == DOCKER:
        raise Conflict(
            f"service {service.name} lives on {network_text(service)}: its instances come from its"
            " containers' labels (switchboard.service, switchboard.port)",
            field="network",
        )
    network = service_network(service)
    if network is None:
        raise Conflict(f"{network_text(service)} is gone: nowhere to serve it", field="network")
    if node:
        attachment = Attachment.objects.filter(network=network, node__name=node).first()
        if attachment is None:
            raise NotFound(
                f"node {node} is not on {network_text(service)}",
                field="node",
            )
    else:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            raise InvalidInput(f"{address!r} is not an IP address", field="address") from None
        if ip not in ipaddress.ip_network(network.subnet):
            raise InvalidInput(
                f"{address} is outside network {service.network} ({network.subnet})", field="address"
            )
        address = str(ip)
    name = name or node or address_name(address, port)
    if not LABEL.match(name):
        raise InvalidInput(
            f"{name!r} is not a DNS label (a-z, 0-9 and '-'): give the instance a name", field="name"
        )
    if address and (
        address == network.gateway or Service.objects.filter(host_id=service.host_id, vip=address).exists()
    ):
        raise Conflict(
            f"{address} is network {service.network}'s gateway or a service's VIP", field="address"
        )
    expires = timezone.now() + dt.timedelta(seconds=ttl) if ttl else None
    existing = Instance.objects.select_for_update().filter(service=service, name=name).first()
    if existing is not None and existing.expires is not None and existing.expires <= timezone.now():
        existing.delete()  # a lease that ran out: the name is free again
        existing = None
    if existing is not None:
        if (existing.node, existing.address, existing.port) != (node, address, port):
            raise Conflict(f"service {service.name} already has an instance {name}", field="name")
        existing.weight, existing.meta, existing.ttl, existing.expires = (
            weight,
            dict(meta or {}),
            ttl,
            expires,
        )
        existing.save(update_fields=["weight", "meta", "ttl", "expires"])
        catalog_check(service.host_id)
        catalog_changed([service.host_id])
        return existing, False
    wanted = attachment.address if node else address
    effective_port = port or service.port
    for other in instance_rows(service, list(live_instances().filter(service=service))):
        if other["address"] == wanted and other["port"] == effective_port:
            raise Conflict(
                f"{wanted}:{effective_port} is already instance {other['name']} of service {service.name}",
                field="node" if node else "address",
            )
    instance = Instance.objects.create(
        service=service,
        name=name,
        node=node,
        address=address,
        port=port,
        weight=weight,
        meta=dict(meta or {}),
        ttl=ttl,
        expires=expires,
        source=source,
    )
    catalog_check(service.host_id)
    catalog_changed([service.host_id])
    audit_record(
        action="register",
        object_kind="instance",
        host=service.host.name,
        name=f"{service.name}/{name}",
        details={"node": node, "address": address, "port": port, "ttl": ttl},
        user=user,
    )
    return instance, True


@transaction.atomic
def instance_renew(*, instance: Instance) -> Instance:
    """Extend an instance's lease by its TTL (a client's heartbeat)."""
    if instance.ttl is None:
        raise InvalidInput(
            f"instance {instance.name} has no lease to renew (registered without ttl)", field="ttl"
        )
    instance.expires = timezone.now() + dt.timedelta(seconds=instance.ttl)
    instance.save(update_fields=["expires"])
    return instance


@transaction.atomic
def instance_deregister(*, user: User, instance: Instance) -> None:
    service = instance.service
    if instance.source == Source.TOPOLOGY:
        raise Conflict(
            f"instance {instance.name} of {service.name} comes from topology {service.topology}'s file:"
            " take it out of the file's services: section",
            field="name",
        )
    if instance.source == Source.DOCKER:
        raise Conflict(
            f"instance {instance.name} of {service.name} is container {instance.meta.get('container')}:"
            " it goes when the container stops or loses its switchboard.service label",
            field="name",
        )
    audit_record(
        action="deregister",
        object_kind="instance",
        host=service.host.name,
        name=f"{service.name}/{instance.name}",
        user=user,
    )
    instance.delete()
    catalog_changed([service.host_id])


@transaction.atomic
def leases_expire(*, host_id: int | None = None) -> int:
    """Remove the instances whose lease ran out (of one host, or all); how many went."""
    expired = Instance.objects.filter(expires__lte=timezone.now())
    if host_id is not None:
        expired = expired.filter(service__host_id=host_id)
    hosts = set(expired.values_list("service__host_id", flat=True))
    count, _ = expired.delete()
    if count:
        catalog_changed(hosts)
    return count


# -- health from agents -----------------------------------------------------------------------------


def _when(ms: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(ms / 1000, tz=dt.UTC)


@transaction.atomic
def health_apply(*, host_id: int, reports: Mapping[str, dict[str, Any] | None], whole: bool = False) -> bool:
    """Store what a host's agent reports of its instances' health (`reports`: protocol key → object,
    None when deleted; `whole`: the reports are the agent's entire health state). True when a state
    changed (the catalog index was raised)."""
    found = Instance.objects.filter(service__host_id=host_id).select_related("service")
    if not whole:  # a delta names a few instances: only their services' rows are read
        found = found.filter(service__name__in={r["service"] for r in reports.values() if r})
    instances = {(served_network(i.service), i.service.name, i.name): i for i in found}
    changed = False
    points = []
    seen = set()
    for report in reports.values():
        if report is None:
            continue
        instance = instances.get((report["network"], report["service"], report["instance"]))
        if instance is None:
            continue
        seen.add(instance.pk)
        checked = _when(report["checked_ms"])
        status = report["status"]
        state_changed = status != instance.status
        sampled = instance.sampled
        fields = []
        if state_changed or sampled is None or checked - sampled >= SAMPLE_EVERY:
            points.append(
                HealthPoint(
                    instance=instance,
                    at=checked,
                    status=status,
                    rtt_us=report["rtt_us"],
                    output=report["output"][:512],
                )
            )
            instance.sampled = checked
            fields.append("sampled")
        if state_changed or checked != instance.checked:
            instance.status = status
            instance.output = report["output"][:512]
            instance.checked = checked
            instance.since = _when(report["since_ms"])
            instance.rtt_us = report["rtt_us"]
            fields += ["status", "output", "checked", "since", "rtt_us"]
        if fields:
            instance.save(update_fields=fields)
        changed |= state_changed
    if whole:
        unknown = [i for i in instances.values() if i.pk not in seen and i.status != Health.UNKNOWN]
        for instance in unknown:
            instance.status, instance.output = Health.UNKNOWN, "not reported by the host's agent"
            instance.save(update_fields=["status", "output"])
        changed |= bool(unknown)
    if points:
        HealthPoint.objects.bulk_create(points)
        _history_trim({p.instance_id for p in points})
    if changed:
        catalog_changed([])
    return changed


def _history_trim(instance_ids: set[int]) -> None:
    for instance_id in instance_ids:
        old = HealthPoint.objects.filter(instance_id=instance_id).order_by("-at")[
            HISTORY_KEEP : HISTORY_KEEP + 1
        ]
        cutoff = old.values_list("at", flat=True).first()
        if cutoff is not None:
            HealthPoint.objects.filter(instance_id=instance_id, at__lte=cutoff).delete()


def health_forget(*, host_id: int) -> None:
    """The host's agent went away: its instances' health is unknown until it reports again."""
    updated = (
        Instance.objects.filter(service__host_id=host_id)
        .exclude(status=Health.UNKNOWN)
        .update(status=Health.UNKNOWN, output="the host's agent is offline")
    )
    if updated:
        catalog_changed([])


def catalog_applied(*, host_id: int, ok: bool, version: int | None, problems: object, error: object) -> None:
    """Keep what the host's agent said of its catalog, for the Services page."""
    clean = {str(k)[:200]: str(v)[:1024] for k, v in problems.items()} if isinstance(problems, dict) else {}
    message = error.get("message", "") if isinstance(error, dict) else ""
    HostCatalog.objects.update_or_create(
        host_id=host_id,
        defaults={
            "version": version or 0,
            "problems": clean if ok else {},
            "error": "" if ok else str(message)[:1024],
        },
    )
