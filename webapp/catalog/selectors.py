"""Reads of the service catalog: services with their health counts, instances (healthy only, on
request), the catalog index blocking queries wait on, and each host's catalog as its agent serves it."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Q, QuerySet
from django.utils import timezone

from netcore import names
from netcore.services.catalog import DEFAULT_DOMAIN, LABEL, SERVING
from webapp.catalog.docker_networks import (
    DOCKER,
    Objects,
    docker_state,
    ipv4_pools,
    network_document,
    network_named,
    network_text,
    served_network,
)
from webapp.catalog.models import CatalogIndex, Health, HealthPoint, HostCatalog, Instance, Service
from webapp.errors import HostOffline, InvalidInput, NotFound
from webapp.networks.models import Attachment, Network, Node
from webapp.networks.selectors import node_netns

DOMAIN = DEFAULT_DOMAIN  # the catalog's names: <service>.<network>.<domain>
HISTORY_POINTS = 120  # of an instance's history shown (webapp.catalog.services keeps more)


def catalog_index() -> int:
    """The catalog's index: raised by every change of what it answers. Never 0 (as Consul's), so a
    blocking query with index=0 answers at once."""
    return 1 + sum(CatalogIndex.objects.filter(pk=1).values_list("value", flat=True))


def host_has_services(*, host_id: int) -> bool:
    return Service.objects.filter(host_id=host_id).exists()


def live_instances() -> QuerySet[Instance]:
    """Instances whose lease (if any) has not run out."""
    return Instance.objects.filter(Q(expires__isnull=True) | Q(expires__gt=timezone.now()))


def service_get(name: str) -> Service:
    try:
        return Service.objects.select_related("host").get(name=name)
    except Service.DoesNotExist:
        raise NotFound(f"service {name} does not exist") from None


def instance_get(service: Service, name: str) -> Instance:
    try:
        return live_instances().get(service=service, name=name)
    except Instance.DoesNotExist:
        raise NotFound(f"service {service.name} has no instance {name}") from None


@dataclass
class ServiceRow:
    """A service with what the catalog page lists beside it."""

    service: Service
    counts: dict[str, int]
    network_present: bool
    dns_name: str
    problems: list[str] = field(default_factory=list)
    instances: list[Instance] = field(default_factory=list)


def dns_name(service: Service) -> str:
    return f"{service.name}.{served_network(service)}.{DOMAIN}"


def service_list(
    *, q: str = "", health: str = "", tag: str = "", network: str = "", source: str = "", host: str = ""
) -> list[ServiceRow]:
    """Services with instance counts by health; filtered as the catalog page and API ask (`health`:
    services with at least one instance in that state)."""
    services = Service.objects.select_related("host").order_by("name")
    if q:
        services = services.filter(Q(name__icontains=q) | Q(network__icontains=q) | Q(tags__icontains=q))
    if network:
        services = services.filter(network=network)
    if source:
        services = services.filter(source=source)
    if host:
        services = services.filter(host__name=host)
    chosen = [s for s in services if not tag or tag in s.tags]
    by_service: dict[int, list[Instance]] = {}
    for instance in live_instances().filter(service__in=chosen).order_by("name"):
        by_service.setdefault(instance.service_id, []).append(instance)
    present = set(
        Network.objects.filter(topology__host_id__in={s.host_id for s in chosen}).values_list(
            "topology__host_id", "topology__name", "name"
        )
    )
    for host_id in {s.host_id for s in chosen if s.topology == DOCKER}:
        present |= {(host_id, DOCKER, n["name"]) for n in docker_state(host_id, "docker_networks").values()}
    said = {c.host_id: c for c in HostCatalog.objects.filter(host_id__in={s.host_id for s in chosen})}
    rows = []
    for service in chosen:
        instances = by_service.get(service.id, [])
        counts = Counter(i.status for i in instances)
        if health and not counts[health]:
            continue
        rows.append(
            ServiceRow(
                service=service,
                counts={h: counts[h] for h in Health.values},
                network_present=(service.host_id, service.topology, service.network) in present,
                dns_name=dns_name(service),
                problems=_problems(said.get(service.host_id), service),
                instances=instances,
            )
        )
    return rows


def _problems(said: HostCatalog | None, service: Service) -> list[str]:
    """What the host's agent could not serve of this service (netcore.services.runtime's keys), and
    the containers whose labels ask for it but could not be registered (webapp.catalog.docker)."""
    if said is None:
        return []
    labels = [
        f"container {name}: {p['problem']}"
        for name, p in sorted(said.docker_problems.items())
        if p["service"] == service.name
    ]
    if said.error:
        return [f"the agent refused the catalog: {said.error}", *labels]
    network = served_network(service)
    keys = (f"DNS of network {network}", f"VIP of {network}/{service.name}", "VIPs", "catalog")
    return [f"{key}: {said.problems[key]}" for key in keys if key in said.problems] + labels


def instances_of(service: Service, *, passing: bool = False) -> list[Instance]:
    """A service's instances; with `passing`, only those whose checks pass (as Consul's ?passing)."""
    found = live_instances().filter(service=service).order_by("name")
    if passing:
        found = found.filter(status=Health.PASSING)
    return list(found)


def history_of(instance: Instance) -> list[HealthPoint]:
    """The instance's latest check history, oldest first."""
    points = HealthPoint.objects.filter(instance=instance).order_by("-at")[:HISTORY_POINTS]
    return list(reversed(points))


# -- what an agent serves ---------------------------------------------------------------------------


def service_network(service: Service) -> Network | None:
    """The managed network a service lives on, if its topology still has it (None for a service on a
    Docker network)."""
    return (
        Network.objects.filter(
            topology__host_id=service.host_id, topology__name=service.topology, name=service.network
        )
        .select_related("topology")
        .first()
    )


def _service_document(service: Service, instances: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": service.name,
        "protocol": service.protocol,
        "port": service.port,
        "vip": service.vip or None,
        "check": service.health_check,
        "instances": instances,
    }


def _docker_documents(
    services: list[Service], instances: dict[int, list[Instance]], networks: Objects
) -> list[dict[str, Any]]:
    """The Docker networks `services` live on, with them: instances at their registered addresses,
    in no namespace the agent could watch (Docker's are not under /run/netns)."""
    by_network: dict[str, list[dict[str, Any]]] = {}
    for service in services:
        instance_docs = [
            {
                "id": i.name,
                "address": i.address,
                "port": i.port or service.port,
                "weight": i.weight,
                "netns": None,
            }
            for i in instances.get(service.id, [])
        ]
        by_network.setdefault(service.network, []).append(_service_document(service, instance_docs))
    documents = []
    for name, service_docs in sorted(by_network.items()):
        network = network_named(networks, name)
        document = network_document(network, service_docs) if network is not None else None
        if document is not None:  # else not served: the Services page says the network is gone
            documents.append(document)
    return documents


def catalog_for_host(host_id: int, *, docker_networks: Objects | None = None) -> dict[str, Any]:
    """The catalog the host's agent serves (netcore.services.catalog.catalog_parse's input): every
    network with a service, its nodes and its services with their live instances. A Docker network's
    facts come from `docker_networks` (the host's live ones, by key), else from its stored state."""
    services = list(Service.objects.filter(host_id=host_id).order_by("name"))
    instances: dict[int, list[Instance]] = {}
    for instance in live_instances().filter(service__in=services).order_by("name"):
        instances.setdefault(instance.service_id, []).append(instance)
    wanted = {(s.topology, s.network) for s in services}
    networks = [
        n
        for n in Network.objects.filter(topology__host_id=host_id).select_related("topology").order_by("id")
        if (n.topology.name, n.name) in wanted
    ]
    documents = []
    for network in networks:
        topology = network.topology.name
        nodes = {n.name: n for n in Node.objects.filter(topology=network.topology)}
        attached = Attachment.objects.filter(network=network).select_related("node").order_by("node_id")
        address_of = {a.node.name: a.address for a in attached}
        node_names = [  # a node whose name is no DNS label has no name in DNS
            {"name": a.node.name, "addresses": [a.address], "netns": node_netns(topology, nodes, a.node)}
            for a in attached
            if LABEL.match(a.node.name)
        ]
        service_docs = []
        for service in services:
            if (service.topology, service.network) != (topology, network.name):
                continue
            instance_docs = []
            for instance in instances.get(service.id, []):
                address = instance.address if not instance.node else address_of.get(instance.node)
                if not address:
                    continue  # its node left the network: shown on the page, not served
                netns = node_netns(topology, nodes, nodes[instance.node]) if instance.node in nodes else None
                instance_docs.append(
                    {
                        "id": instance.name,
                        "address": address,
                        "port": instance.port or service.port,
                        "weight": instance.weight,
                        "netns": netns,
                    }
                )
            service_docs.append(_service_document(service, instance_docs))
        documents.append(
            {
                "name": network.name,
                "bridge": names.bridge_name(topology, network.name),
                "gateways": [network.gateway],
                "subnets": [network.subnet],
                "nodes": node_names,
                "services": service_docs,
            }
        )
    docker = [s for s in services if s.topology == DOCKER]
    if docker:
        if docker_networks is None:
            docker_networks = docker_state(host_id, "docker_networks")
        documents += _docker_documents(docker, instances, docker_networks)
    return {"version": catalog_index(), "domain": DOMAIN, "networks": documents}


def instance_rows(service: Service, instances: list[Instance]) -> list[dict[str, Any]]:
    """Instances as the API shows them: a node's address on the network resolved, the port defaulted."""
    network = service_network(service)
    address_of: dict[str, str] = {}
    if network is not None:
        attached = Attachment.objects.filter(network=network).select_related("node")
        address_of = {a.node.name: a.address for a in attached}
    return [
        {
            "name": i.name,
            "node": i.node,
            "address": address_of.get(i.node, "") if i.node else i.address,
            "port": i.port or service.port,
            "weight": i.weight,
            "meta": i.meta,
            "source": i.source,
            "ttl": i.ttl,
            "expires": i.expires,
            "status": i.status,
            "output": i.output,
            "checked": i.checked,
            "since": i.since,
            "rtt_us": i.rtt_us,
            "dns_name": f"{i.name}.{dns_name(service)}",
        }
        for i in instances
    ]


def _node_asker(service: Service, client: str, instances: list[Instance]) -> tuple[str, str | None, str]:
    """(node, its namespace, the network's gateway): node `client` of the service's managed network
    (default: the first one that is not one of its instances)."""
    network = service_network(service)
    if network is None:
        raise NotFound(f"{network_text(service)} is gone", field="network")
    if not service.host.online:
        raise HostOffline(f"host {service.host.name} has no agent connected to ask from")
    nodes = {n.name: n for n in Node.objects.filter(topology=network.topology)}
    attached = [
        a.node.name
        for a in Attachment.objects.filter(network=network).select_related("node").order_by("node__position")
    ]
    if client:
        if client not in attached:
            raise NotFound(f"node {client} is not on network {service.network}", field="client")
    else:
        backing = {i.node for i in instances}
        client = next((n for n in attached if n not in backing), attached[0] if attached else "")
        if not client:
            raise NotFound(f"network {service.network} has no node to ask from", field="client")
    return client, node_netns(network.topology.name, nodes, nodes[client]), network.gateway


def _docker_asker(service: Service, client: str) -> tuple[str, str | None, str]:
    """("", None, the network's gateway): a service on a Docker network is asked of from the host's
    own namespace, where its gateway is (its containers are no nodes to ask from)."""
    if client:
        raise InvalidInput(
            f"service {service.name} lives on Docker network {service.network}: checks from a node are for "
            "topology networks; leave the node empty to ask from the host",
            field="client",
        )
    network = network_named(docker_state(service.host_id, "docker_networks"), service.network)
    gateway = next((g for _, g in ipv4_pools(network) if g), None) if network is not None else None
    if gateway is None:
        raise NotFound(f"Docker network {service.network} (with an IPv4 gateway) is gone", field="network")
    if not service.host.online:
        raise HostOffline(f"host {service.host.name} has no agent connected to ask from")
    return "", None, gateway


def resolve_plan(service: Service, *, client: str = "") -> dict[str, Any]:
    """What the catalog's "check" asks and from where: the service's names, asked from node `client`'s
    namespace (default: the first node on the network that is not one of its instances) of the
    network's gateway, which the node's resolver names; and what the catalog says each answer holds.
    A service on a Docker network is asked of from the host's namespace (`client` empty)."""
    instances = instances_of(service)
    if service.topology == DOCKER:
        client, netns, server = _docker_asker(service, client)
    else:
        client, netns, server = _node_asker(service, client, instances)
    rows = instance_rows(service, instances)
    serving = [r for r in rows if r["status"] in SERVING and r["address"]]
    name = dns_name(service)
    rfc = f"_{service.name}._{service.protocol}.{served_network(service)}.{DOMAIN}"
    srv = sorted(f"0 {r['weight']} {r['port']} {r['name']}.{name}." for r in rows if r["address"])
    expected = {
        (name, "A"): sorted(r["address"] for r in serving if ":" not in r["address"]),
        (name, "AAAA"): sorted(r["address"] for r in serving if ":" in r["address"]),
        (name, "SRV"): srv,
        (rfc, "SRV"): srv,
    }
    return {
        "host_id": service.host_id,
        "client": client,
        "netns": netns,
        "server": server,
        "questions": [{"name": n, "type": t} for n, t in expected],
        "expected": [{"name": n, "type": t, "records": records} for (n, t), records in expected.items()],
    }


def resolve_report(plan: dict[str, Any], answers: list[dict[str, Any]]) -> dict[str, Any]:
    """The check's answer: each question with what the client got beside what the catalog says, and
    whether they agree (the same records; an empty answer may be NXDOMAIN or NOERROR)."""
    got = {(a["name"], a["type"]): a for a in answers}
    rows = []
    for expected in plan["expected"]:
        answer = got.get((expected["name"], expected["type"]), {"error": "not asked"})
        records = sorted(answer.get("records") or [])
        error = answer.get("error", "")
        rcode = answer.get("rcode", "")
        agrees = not error and records == expected["records"] and rcode in ("NOERROR", "NXDOMAIN")
        if rcode == "NXDOMAIN" and expected["records"]:
            agrees = False
        rows.append(
            {
                "name": expected["name"],
                "type": expected["type"],
                "rcode": rcode,
                "records": records,
                "rtt": answer.get("rtt"),
                "error": error,
                "expected": expected["records"],
                "agrees": agrees,
            }
        )
    return {"client": plan["client"], "netns": plan["netns"], "server": plan["server"], "answers": rows}
