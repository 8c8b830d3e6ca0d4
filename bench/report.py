"""Combine repeated results (medians), print the table, write the JSON."""

from __future__ import annotations

import json
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from bench.figures import Result

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _median(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def combine(rows: Sequence[Result]) -> list[Result]:
    """One row per (figure, baseline): median seconds of each side over the repeats, notes merged."""
    groups: dict[tuple[str, str], list[Result]] = {}
    for row in rows:
        groups.setdefault((row.figure, row.baseline), []).append(row)
    combined = []
    for (fig, base), same in groups.items():
        notes = list(dict.fromkeys(r.note for r in same if r.note))
        if len(same) > 1:
            notes.insert(0, f"median of {len(same)}")
        valid = all(r.valid for r in same)
        combined.append(
            Result(
                fig,
                base,
                _median([r.baseline_s for r in same]),
                _median([r.netcore_s for r in same]),
                same[0].goal,
                "; ".join(notes),
                valid,
            )
        )
    return combined


def _num(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def table(rows: Sequence[Result]) -> str:
    """A plain-text table, then one line per note."""
    head = ("figure", "baseline", "baseline s", "netcore s", "ratio", "goal", "met?")
    body = []
    for r in rows:
        ratio = _num(r.ratio, ".2f") if r.valid else "invalid"
        goal = "report only" if r.goal is None else f">= {r.goal:g}"
        met = "-" if r.met is None else ("yes" if r.met else "NO")
        seconds = _num(r.baseline_s, ".3f"), _num(r.netcore_s, ".3f")
        body.append((r.figure, r.baseline, *seconds, ratio, goal, met))
    widths = [max(len(line[i]) for line in (head, *body)) for i in range(len(head))]
    fmt = "  ".join(f"{{:{'<' if i < 2 else '>'}{w}}}" for i, w in enumerate(widths))
    lines = [fmt.format(*head), fmt.format(*("-" * w for w in widths))]
    lines += [fmt.format(*line) for line in body]
    lines += [f"  {r.figure} vs {r.baseline}: {r.note}" for r in rows if r.note]
    return "\n".join(lines)


def meta(**extra: object) -> dict:
    """Context for the JSON: when, where, which iproute2 and Python."""
    ip = subprocess.run(["ip", "-V"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "kernel": platform.release(),
        "iproute2": ip,
        "python": sys.version.split()[0],
        **extra,
    }


def write_json(rows: Sequence[Result], info: dict, path: Path | None = None) -> Path:
    """Write `{"meta": ..., "results": [...]}` (results/latest.json by default)."""
    path = path or RESULTS_DIR / "latest.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"meta": info, "results": [r.to_dict() for r in rows]}, indent=2) + "\n")
    return path
