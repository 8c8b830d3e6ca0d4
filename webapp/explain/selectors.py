"""What a person names as the two ends of "why can't A reach B", as the host's agent names them:
`TOPOLOGY/NODE` is that node's namespace (the one it shares in container mode; "host" in host mode),
anything else is passed on as written (a namespace's name, an address), with a destination's
`:PORT` kept."""

from __future__ import annotations

import re

from webapp.errors import NotFound
from webapp.hosts.models import Host
from webapp.networks.models import Node
from webapp.networks.selectors import node_netns

HOST = "host"  # the host's own namespace, as netcore names it
_PORT = re.compile(r"^(.*/.*):(\d{1,5})\Z")  # TOPOLOGY/NODE:PORT


def _node_namespace(host: Host, text: str, *, field: str) -> str:
    topology, _, node = text.partition("/")
    nodes = {n.name: n for n in Node.objects.filter(topology__host=host, topology__name=topology)}
    found = nodes.get(node)
    if found is None:
        raise NotFound(f"host {host.name} has no node {node} in a topology {topology}", field=field)
    return node_netns(topology, nodes, found) or HOST


def explain_source(host: Host, text: str) -> str:
    """The source as the agent names it."""
    return _node_namespace(host, text, field="source") if "/" in text else text


def explain_destination(host: Host, text: str) -> str:
    """The destination as the agent takes it: `TOPOLOGY/NODE[:PORT]` made `NAMESPACE[:PORT]`."""
    if "/" not in text:
        return text
    match = _PORT.match(text)
    node, port = (match.group(1), f":{match.group(2)}") if match else (text, "")
    return _node_namespace(host, node, field="destination") + port
