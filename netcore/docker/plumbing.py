"""Which kernel objects are under a container's endpoints: the interface in its namespace with the
endpoint's MAC, that interface's veth peer on the host and the bridge the peer is a port of (what
`docker network inspect` does not say, moby#17064). Pure: works on the JSON forms of netcore's links
and Docker's containers, for the web app and the CLI alike."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any


def endpoints_plumbed(container: dict[str, Any], links: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The container's endpoints, each with `interface`, `host_veth` and `bridge` (None where the
    kernel objects are not among `links`, or the container is not running)."""
    links = list(links)
    netns = container["netns"]
    inside = {link["mac"]: link for link in links if netns and link["netns"] == netns and link["mac"]}
    by_index = {(link["netns"], link["index"]): link for link in links}
    plumbed = []
    for endpoint in container["endpoints"]:
        link = inside.get(endpoint["mac"])
        peer = by_index.get((link["peer"]["netns"], link["peer"]["index"])) if link and link["peer"] else None
        plumbed.append(
            {
                **endpoint,
                "interface": link["name"] if link else None,
                "host_veth": peer["name"] if peer else None,
                "bridge": peer["master"] if peer else None,
            }
        )
    return plumbed
