"""`python -m bench [--endpoints N] [--only P1,P2] [--repeat K]` — run as root from the repo root."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import time
import traceback
from types import FrameType

import bench.browser  # noqa: F401
import bench.capture  # noqa: F401  (registers P13)
import bench.desired  # noqa: F401  (registers P8)
import bench.docker  # noqa: F401  (registers P10)
import bench.explain  # noqa: F401  (registers P12)
import bench.live  # noqa: F401  (registers P3 and P4)
import bench.overlay  # noqa: F401  (registers P9)
import bench.services  # noqa: F401  (registers P11)
import bench.traffic  # noqa: F401  (registers P14)
from bench import report
from bench.baselines import MAX_ENDPOINTS
from bench.figures import REGISTRY, Context, Result, select, warm_up
from bench.hostns import Run


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--endpoints", type=int, default=1000, help="endpoints for P1/P2 (default 1000)")
    parser.add_argument("--only", help=f"comma list of figures or groups: {', '.join(REGISTRY)}")
    parser.add_argument("--repeat", type=int, default=1, help="repeat K times and take medians (default 1)")
    args = parser.parse_args(argv)
    if not 0 < args.endpoints <= MAX_ENDPOINTS:
        parser.error(f"--endpoints must be 1..{MAX_ENDPOINTS}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _on_term(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    """Run the selected figures, clean up whatever happens, print and save the results."""
    args = _parse(argv)
    figures = select(args.only)
    if os.geteuid() != 0:
        print("bench: must run as root (it creates network namespaces)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _on_term)
    run = Run()
    ctx = Context(run=run, endpoints=args.endpoints)
    rows: list[Result] = []
    interrupted = False
    start = time.perf_counter()
    print(
        f"bench: run {run.prefix}, {args.endpoints} endpoints, figures "
        f"{', '.join(f.id for f in figures)}, repeat {args.repeat}",
        flush=True,
    )
    try:
        warm_up()
        ctx.start()
        for rep in range(args.repeat):
            for fig in figures:
                t = time.perf_counter()
                print(f"bench: {fig.id} ({rep + 1}/{args.repeat}) ...", end=" ", flush=True)
                try:
                    rows.extend(fig.fn(ctx))
                except Exception as exc:  # one broken figure must not lose the others
                    traceback.print_exc()
                    note = f"{type(exc).__name__}: {exc}"
                    rows.append(Result(fig.id, "(figure crashed)", None, None, None, note))
                print(f"{time.perf_counter() - t:.1f} s", flush=True)
    except KeyboardInterrupt:
        interrupted = True
        print("bench: interrupted, cleaning up", file=sys.stderr)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # cleanup must not be cut short
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        try:
            ctx.drop_world(destroy=not interrupted, settle=False)
        finally:
            left = run.cleanup()
    if left:
        print(f"bench: ERROR: namespaces left behind: {' '.join(left)}", file=sys.stderr)
    combined = report.combine(rows)
    if combined:
        print(report.table(combined))
        info = report.meta(
            endpoints=args.endpoints,
            repeat=args.repeat,
            run=run.prefix,
            seconds=round(time.perf_counter() - start, 1),
            settle_s=round(ctx.settled_s, 1),
            interrupted=interrupted,
        )
        print(f"bench: wrote {report.write_json(combined, info)}")
    return 1 if left else (130 if interrupted else 0)


if __name__ == "__main__":
    sys.exit(main())
