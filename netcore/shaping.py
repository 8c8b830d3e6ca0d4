"""Shape a link on the kernel: its root qdisc becomes a tbf (a rate limit) or, where the kernel has
netem, a netem (delay, jitter, loss and an optional rate); unshaping gives it the kernel's default
back. The live model shows the result (Link.shaping), from the kernel's own qdisc events."""

from __future__ import annotations

import errno

from netcore import requests as rq
from netcore.errors import InvalidSpec, NotFound, Unsupported
from netcore.model import Link
from netcore.objects import link_get, link_lookup, netns_socket
from netcore.shaping_spec import ETHERNET_HEADER, NETEM_LIMIT, ShapeSpec

NO_NETEM = (
    "this kernel has no netem qdisc (CONFIG_NET_SCH_NETEM), so delay, jitter and loss cannot be set "
    "on this host; a rate limit alone (tbf) can"
)


def link_shape(*, name: str, spec: ShapeSpec, netns: str | None = None) -> Link:
    """Give link `name` the shaping `spec` (replacing any it had); the link as it is then."""
    with netns_socket(netns) as sock:
        raw = link_lookup(sock, name)
        if raw is None:
            raise NotFound(f"link {name} does not exist in namespace {netns or 'host'}", obj=name)
        if spec.netem:
            delay_ns, jitter_ns = spec.delay_us * 1000, spec.jitter_us * 1000
            rate = spec.rate // 8 if spec.rate else None
            request = rq.netem_replace(
                index=raw.index,
                ifname=name,
                delay_ns=delay_ns,
                jitter_ns=jitter_ns,
                loss_ppm=spec.loss_ppm,
                rate=rate,
                limit=NETEM_LIMIT,
            )
        else:
            assert spec.rate is not None, "shape_parse refuses a spec with neither rate nor netem"
            burst = spec.burst_for(raw.mtu)
            if burst < raw.mtu + ETHERNET_HEADER:
                raise InvalidSpec(
                    f"burst: at least a frame of {name} ({raw.mtu + ETHERNET_HEADER} bytes at MTU "
                    f"{raw.mtu}), or no frame that size ever passes",
                    obj="burst",
                )
            rate = spec.rate // 8
            limit = min(rate * spec.queue_ms // 1000 + burst, 0xFFFFFFFF)
            request = rq.tbf_replace(index=raw.index, ifname=name, rate=rate, burst=burst, limit=limit)
        try:
            sock.run([request])
        except NotFound as exc:
            if spec.netem and exc.errno == errno.ENOENT:
                raise Unsupported(NO_NETEM, obj="delay" if spec.delay_us else "loss") from None
            raise
    return link_get(name=name, netns=netns)


def link_unshape(*, name: str, netns: str | None = None) -> Link:
    """Take a link's shaping off (its root qdisc back to the kernel's default); nothing to do when it
    has none."""
    with netns_socket(netns) as sock:
        raw = link_lookup(sock, name)
        if raw is None:
            raise NotFound(f"link {name} does not exist in namespace {netns or 'host'}", obj=name)
        if raw.shaped():
            sock.run([rq.root_qdisc_delete(index=raw.index, ifname=name)])
    return link_get(name=name, netns=netns)
