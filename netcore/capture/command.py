"""`python -m netcore capture NAMESPACE IFACE... -w FILE`: capture to a pcapng file from the shell,
printing a line per packet summarised (a sample when traffic is fast) and how it ended."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
from collections.abc import Iterator
from types import FrameType

from netcore.capture.request import DEFAULT_SNAPLEN, capture_request_parse
from netcore.capture.run import capture_run
from netcore.capture.summary import Row


def add_capture_parser(sub: argparse._SubParsersAction) -> None:
    """The `capture` subcommand, for netcore's CLI."""
    p = sub.add_parser("capture", help="capture packets inside a namespace into a pcapng file (dumpcap)")
    p.add_argument("namespace", help="the namespace's name ('host' = ours)")
    p.add_argument("interfaces", nargs="+", metavar="IFACE", help="interfaces to capture on (up to 8)")
    p.add_argument("-f", dest="filter", default="", help="a BPF capture filter ('udp port 53')")
    p.add_argument("-c", dest="count", type=int, default=1_000_000, help="stop after this many packets")
    p.add_argument("-a", dest="duration", type=float, default=60.0, help="stop after this many seconds (60)")
    p.add_argument("-s", dest="snaplen", type=int, default=DEFAULT_SNAPLEN, help="bytes kept of each packet")
    p.add_argument("-w", dest="output", required=True, help="the pcapng file to write (mode 0600)")
    p.set_defaults(func=capture_command)


@contextlib.contextmanager
def _interrupt_stops(stop: threading.Event) -> Iterator[None]:
    """Ctrl-C stops the capture (dumpcap finishes the file) instead of killing the command."""

    def handler(signum: int, frame: FrameType | None) -> None:
        stop.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _print_rows(seen: int, rows: list[Row]) -> None:
    for row in rows:
        print(
            f"{row.number:>7} {row.time:.6f} {row.interface} {row.source} → {row.destination} {row.protocol}"
            f" {row.length} {row.info}",
            flush=True,
        )


def capture_command(args: argparse.Namespace) -> int:
    request = capture_request_parse(
        {
            "namespace": args.namespace,
            "interfaces": args.interfaces,
            "filter": args.filter,
            "count": args.count,
            "duration": args.duration,
            "snaplen": args.snaplen,
        }
    )
    stop = threading.Event()
    with _interrupt_stops(stop):
        result = capture_run(
            request,
            on_started=lambda: print(
                f"capturing on {', '.join(request.interfaces)} in {request.namespace}",
                file=sys.stderr,
                flush=True,
            ),
            on_data=lambda offset, chunk: None,
            on_rows=_print_rows,
            cancelled=stop.is_set,
            output=args.output,
        )
    ended = f"{result.packets} packets written to {args.output}, {result.dropped} dropped"
    ended += f", ended by {result.reason}"
    print(ended + (f": {result.message}" if result.message else ""), file=sys.stderr)
    return 1 if result.reason == "error" else 0
