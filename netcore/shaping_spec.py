"""What a user asks of a link's shaping, checked field by field without touching anything: a rate
limit (tbf), or delay, jitter and loss (netem, with an optional rate). The web app checks its
requests with this same code before it queues them; netcore.shaping applies them.

Values come as people write them: a rate as bits per second or "10mbit" / "1.5gbit" / "800kbit";
delay and jitter as milliseconds or "20ms" / "1.5s" / "300us"; loss as a percent or "0.5%";
burst as bytes or "32kb" / "1mb".
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from netcore.errors import InvalidSpec

FIELDS = ("rate", "burst", "queue_ms", "delay", "jitter", "loss")
RATE_RANGE = (8_000, 400_000_000_000)  # bits per second: 1 kB/s to 400 Gbit/s
QUEUE_MS_RANGE = (1, 10_000)  # how long a packet may wait in the rate limit's queue
MAX_DELAY_US = 60_000_000
NETEM_LIMIT = 1000  # packets netem holds (its default)
ETHERNET_HEADER = 14

_NUMBER = r"([0-9]+(?:\.[0-9]+)?)"
_RATE_UNITS = {"": 1, "bit": 1, "kbit": 10**3, "mbit": 10**6, "gbit": 10**9, "tbit": 10**12}
_TIME_UNITS = {"": 1000, "us": 1, "ms": 1000, "s": 1_000_000}  # to microseconds; a bare number is ms
_SIZE_UNITS = {"": 1, "b": 1, "kb": 1024, "k": 1024, "mb": 1024**2, "m": 1024**2}


@dataclass(frozen=True)
class ShapeSpec:
    """A link's shaping: `rate` in bits per second, `burst` in bytes (None: chosen from the rate),
    `queue_ms` the rate limit's queue, delay and jitter in microseconds, loss in parts per million."""

    rate: int | None = None
    burst: int | None = None
    queue_ms: int = 50
    delay_us: int = 0
    jitter_us: int = 0
    loss_ppm: int = 0

    @property
    def netem(self) -> bool:
        """Delay, jitter or loss need netem; a rate alone is tbf's."""
        return bool(self.delay_us or self.jitter_us or self.loss_ppm)

    def burst_for(self, mtu: int) -> int:
        """The burst to use: the one asked for, else 10 ms of the rate and at least 16 KiB (and a
        frame of the link's MTU: a burst smaller than a frame would never let that frame through)."""
        assert self.rate is not None, "tbf needs a rate"
        return self.burst or max(self.rate // 8 // 100, 16 * 1024, mtu + ETHERNET_HEADER)


def _measure(value: object, *, field: str, units: dict[str, int], what: str, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidSpec(f"{field}: {what}, such as {example}", obj=field)
    if isinstance(value, (int, float)):
        if value < 0:
            raise InvalidSpec(f"{field}: must not be negative", obj=field)
        return float(value) * units[""]
    match = re.fullmatch(_NUMBER + r"\s*([a-z]*)(?:/s|ps)?", value.strip().lower())
    if match is None or match.group(2) not in units:
        raise InvalidSpec(f"{field}: {value!r} is not {what}, such as {example}", obj=field)
    return float(match.group(1)) * units[match.group(2)]


def _within(value: float, low: float, high: float, *, field: str, text: str) -> int:
    if not low <= value <= high:
        raise InvalidSpec(f"{field}: {text}", obj=field)
    return round(value)


def _loss(value: object) -> int:
    if isinstance(value, str) and value.strip().endswith("%"):
        value = value.strip()[:-1]
    percent = _measure(value, field="loss", units={"": 1}, what="a percent of packets", example="0.5")
    return _within(percent * 10_000, 0, 1_000_000, field="loss", text="0 to 100 percent")


def shape_parse(data: object) -> ShapeSpec:
    """A ShapeSpec from a request's fields (see the module's doc for the units); InvalidSpec names
    the field that is wrong."""
    if not isinstance(data, dict):
        raise InvalidSpec("shaping: expected an object", obj="shaping")
    unknown = sorted(set(data) - set(FIELDS))
    if unknown:
        raise InvalidSpec(
            f"{unknown[0]}: not a shaping field (those are {', '.join(FIELDS)})", obj=unknown[0]
        )
    values: dict[str, Any] = {k: v for k, v in data.items() if v is not None and v != ""}
    rate = burst = None
    if "rate" in values:
        bits = _measure(values["rate"], field="rate", units=_RATE_UNITS, what="a rate", example="10mbit")
        rate = _within(bits, *RATE_RANGE, field="rate", text="8kbit to 400gbit")
    delay = jitter = 0
    if "delay" in values:
        micro = _measure(values["delay"], field="delay", units=_TIME_UNITS, what="a time", example="20ms")
        delay = _within(micro, 0, MAX_DELAY_US, field="delay", text="0 to 60 s")
    if "jitter" in values:
        micro = _measure(values["jitter"], field="jitter", units=_TIME_UNITS, what="a time", example="5ms")
        jitter = _within(micro, 0, delay, field="jitter", text=f"0 to the delay ({delay / 1000:g} ms)")
    loss = _loss(values["loss"]) if "loss" in values else 0
    spec_netem = bool(delay or jitter or loss)
    if "burst" in values:
        if spec_netem or rate is None:
            raise InvalidSpec(
                "burst: only for a rate limit without delay or loss (netem has none)", obj="burst"
            )
        size = _measure(values["burst"], field="burst", units=_SIZE_UNITS, what="a size", example="32kb")
        burst = _within(size, 1, 2**31, field="burst", text="1 byte to 2 GiB")
    queue_ms = 50
    if "queue_ms" in values:
        raw = values["queue_ms"]
        if isinstance(raw, bool) or not isinstance(raw, int):
            raise InvalidSpec("queue_ms: whole milliseconds, such as 50", obj="queue_ms")
        queue_ms = _within(raw, *QUEUE_MS_RANGE, field="queue_ms", text="1 to 10000 ms")
    if rate is None and not spec_netem:
        raise InvalidSpec(
            "rate: give a rate, or a delay or loss (to take shaping off, remove it)", obj="rate"
        )
    return ShapeSpec(rate, burst, queue_ms, delay, jitter, loss)


def shaping_text(shaping: dict[str, Any]) -> str:
    """A link's shaping (netcore.model.Shaping as JSON) in a few words: "tbf 10 Mbit/s"."""
    parts = [shaping["kind"]]
    if shaping.get("rate"):
        parts.append(rate_text(shaping["rate"]))
    if shaping.get("delay_us"):
        jitter = f" ± {shaping['jitter_us'] / 1000:g}" if shaping.get("jitter_us") else ""
        parts.append(f"{shaping['delay_us'] / 1000:g}{jitter} ms")
    if shaping.get("loss_ppm"):
        parts.append(f"{shaping['loss_ppm'] / 10_000:g}% loss")
    return " ".join(parts)


def rate_text(bits: int) -> str:
    """A rate for people: 10 Mbit/s."""
    for unit, size in (("Tbit/s", 10**12), ("Gbit/s", 10**9), ("Mbit/s", 10**6), ("kbit/s", 10**3)):
        if bits >= size:
            return f"{bits / size:.3g} {unit}"
    return f"{bits} bit/s"
