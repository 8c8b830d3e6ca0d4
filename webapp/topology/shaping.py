"""Shape a link of a host (a rate limit, or delay and loss where its kernel has netem), or take the
shaping off: checked against what the host's agent last reported, then queued as a shape operation
its agent runs (netcore.shaping). The graph shows the result from the kernel's own qdisc events."""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser

from netcore.errors import InvalidSpec
from netcore.shaping_spec import ETHERNET_HEADER, shape_parse
from webapp.errors import InvalidInput, NotFound
from webapp.hosts.selectors import host_get
from webapp.operations.models import Operation
from webapp.operations.services import operation_create
from webapp.topology.selectors import topology_get


def _link(*, host: str, netns: str, link: str) -> dict[str, Any]:
    """The link as the host's agent last reported it; NotFound naming the namespace or the link."""
    links = topology_get(host=host).state["links"].values()
    if not any(x["netns"] == netns for x in links):
        raise NotFound(
            f"host {host} has no namespace {netns!r} with links (as its agent last reported)", field="netns"
        )
    found = next((x for x in links if x["netns"] == netns and x["name"] == link), None)
    if found is None:
        raise NotFound(f"namespace {netns} of host {host} has no link {link!r}", field="link")
    return found


def _queue(
    *, host: str, action: str, request: dict[str, Any], user: AbstractBaseUser | AnonymousUser | None
) -> Operation:
    return operation_create(
        host=host_get(name=host),
        kind=Operation.Kind.SHAPE,
        topology_text=json.dumps({"action": action, "request": request}),
        user=user,
    )


def link_shape_queue(
    *, host: str, netns: str, link: str, shaping: Any, user: AbstractBaseUser | AnonymousUser | None
) -> Operation:
    """Queue giving the link this shaping (netcore.shaping_spec's fields, as people write them)."""
    host_get(name=host)
    found = _link(host=host, netns=netns, link=link)
    try:
        spec = shape_parse(shaping)
    except InvalidSpec as exc:
        raise InvalidInput(str(exc), field=exc.obj) from None
    frame = found["mtu"] + ETHERNET_HEADER
    if spec.rate is not None and not spec.netem and spec.burst_for(found["mtu"]) < frame:
        raise InvalidInput(
            f"burst: at least a frame of {link} ({frame} bytes at MTU {found['mtu']})", field="burst"
        )
    request = {"netns": netns, "link": link, "shaping": shaping}
    return _queue(host=host, action="shape", request=request, user=user)


def link_unshape_queue(
    *, host: str, netns: str, link: str, user: AbstractBaseUser | AnonymousUser | None
) -> Operation:
    """Queue taking the link's shaping off (the kernel's default qdisc back)."""
    host_get(name=host)
    _link(host=host, netns=netns, link=link)
    return _queue(host=host, action="unshape", request={"netns": netns, "link": link}, user=user)
