"""P13: packet capture (issue 13's speed goal: 10,000 packets/s on one interface reach the browser's
table without losing the pcap's packets; the table may sample, the pcap may not).

Two throwaway namespaces on a veth pair; a paced UDP sender (its own process, in one namespace)
sends RATE datagrams a second for SECONDS seconds to the other, where netcore.capture runs dumpcap
on the receiving veth, as the agent does (the same capture_run, its callbacks in place of frames).

- P13 pcap: packets in the file against packets sent (ratio = in pcap / sent; goal 1.0: none lost).
- P13 rows: rows handed to on_rows (the table's sample) against packets sent, report only.
- P13 delay: seconds from the last datagram sent to the on_data call carrying its bytes, report only
  (chunks go at most every 0.2 s, as the protocol allows).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time

from bench.figures import Context, Result, figure
from bench.hostns import nsenter
from netcore.capture.pcapng import BlockSplitter
from netcore.capture.request import capture_request_parse
from netcore.capture.run import capture_run
from netcore.capture.summary import Row

RATE = 10_000  # datagrams a second
SECONDS = 3.0
SENDER, RECEIVER, PORT = "198.18.95.1", "198.18.95.2", 40001

# The paced sender: every millisecond it sends what is due by then; prints {sent, seconds, last}.
SENDER_PY = """
import json, socket, sys, time
rate, seconds, target, port = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3], int(sys.argv[4])
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
payload = b"switchboard-p13-" + b"." * 48
total = int(rate * seconds)
sent, start = 0, time.perf_counter()
while sent < total:
    due = min(total, int((time.perf_counter() - start) * rate) + 1)
    while sent < due:
        sock.sendto(payload, (target, port))
        sent += 1
    time.sleep(0.0005)
last = time.time()
print(json.dumps({"sent": sent, "seconds": time.perf_counter() - start, "last": last}))
"""


def _pair(ctx: Context) -> tuple[str, str]:
    a, b = ctx.run.add_host(ctx.tag("ca")), ctx.run.add_host(ctx.tag("cb"))
    for ns, argv in (
        (a, ["ip", "link", "add", "c0", "type", "veth", "peer", "name", "c1", "netns", b]),
        (a, ["ip", "addr", "add", f"{SENDER}/24", "dev", "c0"]),
        (b, ["ip", "addr", "add", f"{RECEIVER}/24", "dev", "c1"]),
        (a, ["ip", "link", "set", "c0", "up"]),
        (b, ["ip", "link", "set", "c1", "up"]),
    ):
        subprocess.run([*nsenter(ns), *argv], check=True, capture_output=True)
    return a, b


@figure("P13", order=96)
def p13_capture(ctx: Context) -> list[Result]:
    a, b = _pair(ctx)
    total = int(RATE * SECONDS)
    request = capture_request_parse(
        {"namespace": b, "interfaces": ["c1"], "filter": f"udp port {PORT}", "count": total, "duration": 60}
    )
    splitter = BlockSplitter()
    seen = {"packets": 0, "rows": 0, "all_at": None}
    sender: list[subprocess.CompletedProcess[str]] = []

    def send() -> None:
        argv = [*nsenter(a), sys.executable, "-c", SENDER_PY, str(RATE), str(SECONDS), RECEIVER, str(PORT)]
        sender.append(subprocess.run(argv, capture_output=True, text=True, check=False))

    thread = threading.Thread(target=send)

    def on_data(offset: int, chunk: bytes) -> None:
        seen["packets"] += sum(is_packet for is_packet, _ in splitter.feed(chunk))
        if seen["packets"] >= total and seen["all_at"] is None:
            seen["all_at"] = time.time()

    def on_rows(packets: int, rows: list[Row]) -> None:
        seen["rows"] += len(rows)

    try:
        result = capture_run(
            request, on_started=thread.start, on_data=on_data, on_rows=on_rows, cancelled=lambda: False
        )
    finally:
        if thread.ident is not None:
            thread.join()
        ctx.run.delete([a, b])
    done = sender[0] if sender else None
    try:
        sent = json.loads(done.stdout.strip().splitlines()[-1]) if done else None
    except (ValueError, IndexError):
        sent = None
    if sent is None:
        note = f"the sender failed: {done.stderr.strip()[-300:] if done else 'not started'}"
        return [Result("P13 pcap", "packets sent", None, None, 1.0, note)]
    rate = sent["sent"] / sent["seconds"]
    valid = rate >= RATE * 0.95
    note = (
        f"{sent['sent']} sent at {rate:,.0f}/s, {result.packets} in the pcap, {result.dropped} dropped"
        f" (dumpcap), ended by {result.reason}"
    )
    if not valid:
        note += f"; the sender reached only {rate:,.0f}/s of the {RATE:,}/s asked"
    delay = seen["all_at"] - sent["last"] if seen["all_at"] is not None else None
    return [
        Result("P13 pcap", "share of sent in pcap", result.packets, sent["sent"], 1.0, note, valid=valid),
        Result(
            "P13 rows",
            "share of sent in rows",
            seen["rows"],
            sent["sent"],
            None,
            f"{seen['rows']} rows handed on (a sample: at most 1000 a second)",
        ),
        Result(
            "P13 delay",
            "last sent -> on_data",
            None,
            delay,
            None,
            "seconds from the last datagram sent to the on_data call that carried it",
        ),
    ]
