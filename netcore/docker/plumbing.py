"""Which kernel objects are under a container's endpoints: the interface in its namespace with the
endpoint's MAC, that interface's veth peer on the host and the bridge the peer is a port of (what
`docker network inspect` does not say, moby#17064). Pure: works on the JSON forms of netcore's links
and Docker's containers, for the web app and the CLI alike."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

Plumber = Callable[[dict[str, Any]], list[dict[str, Any]]]


def plumber(links: Iterable[dict[str, Any]]) -> Plumber:
    """A function giving a container's endpoints, each with `interface`, `host_veth` and `bridge`
    (None where the kernel objects are not among `links`, or the container is not running). The
    links are indexed once, for every container asked about."""
    by_mac: dict[tuple[str, str], dict[str, Any]] = {}
    by_index: dict[tuple[str, int], dict[str, Any]] = {}
    for link in links:
        by_index[(link["netns"], link["index"])] = link
        if link["mac"]:
            by_mac[(link["netns"], link["mac"])] = link

    def endpoints(container: dict[str, Any]) -> list[dict[str, Any]]:
        plumbed = []
        for endpoint in container["endpoints"]:
            link = by_mac.get((container["netns"], endpoint["mac"])) if container["netns"] else None
            peer = link and link["peer"] and by_index.get((link["peer"]["netns"], link["peer"]["index"]))
            plumbed.append(
                {
                    **endpoint,
                    "interface": link["name"] if link else None,
                    "host_veth": peer["name"] if peer else None,
                    "bridge": peer["master"] if peer else None,
                }
            )
        return plumbed

    return endpoints
