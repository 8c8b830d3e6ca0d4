"""One summary row per packet (time, source, destination, protocol, info), from tshark's dissection.

One long-lived `tshark -r -` per capture reads a pcapng stream on its stdin and prints a line per
packet as it arrives. Measured here: tshark summarises ~20,000 packets/s on one core, so a capture
of 10,000 packets/s would cost a core for a table a browser shows at most 1000 rows a second of;
the capture feeds it a sample instead (RowBudget), and the file itself is never held back.
tshark runs as nobody: it parses packets from the network, and needs no privilege for that.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

from netcore.capture.dumpcap import program

FIELDS = (
    "frame.number",
    "frame.time_epoch",
    "frame.interface_name",
    "_ws.col.Source",
    "_ws.col.Destination",
    "_ws.col.Protocol",
    "frame.len",
    "_ws.col.Info",
)
MAX_TEXT = 1024  # characters kept of each string of a row
NOBODY = 65534


@dataclass(frozen=True)
class Row:
    """A packet as the capture table shows it; `number` is its frame number in the file (from 1)."""

    number: int
    time: float
    interface: str
    source: str
    destination: str
    protocol: str
    length: int
    info: str

    def to_dict(self) -> dict:
        return asdict(self)


def tshark_command() -> list[str]:
    """tshark reading pcapng on stdin, printing FIELDS tab-separated, a line per packet, at once."""
    argv = [
        program("tshark"),
        "-r",
        "-",
        "-n",
        "-l",
        "-Q",
        "-T",
        "fields",
        "-E",
        "separator=/t",
        "-E",
        "quote=n",
    ]
    for name in FIELDS:
        argv += ["-e", name]
    return argv


def row_parse(line: bytes, number: int) -> Row | None:
    """The Row of one tshark line, numbered `number` (the packet's number in the whole file); None
    for a line that is not one (tshark's own numbering counts only the packets it was fed)."""
    parts = line.rstrip(b"\r\n").decode("utf-8", "replace").split("\t", len(FIELDS) - 1)
    if len(parts) != len(FIELDS):
        return None
    _, stamp, interface, source, destination, protocol, length, info = parts
    try:
        when, size = float(stamp), int(length)
    except ValueError:
        return None
    texts = (interface, source, destination, protocol, info)
    interface, source, destination, protocol, info = (text[:MAX_TEXT] for text in texts)
    return Row(number, when, interface, source, destination, protocol, size, info)


class RowBudget:
    """How many packets may go to tshark: `rate` a second, at most `burst` at once (a token bucket).
    Slower traffic gets a row per packet; faster traffic gets an even sample of it."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = float(burst)
        self._at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True
