"""A packet's full decode, by Debian's tshark (Wireshark's dissectors, not a decoder of our own): the
capture's file written to a private temporary file, then

    tshark -n -r FILE -c N -Y "frame.number == N" -T json -x

(-c N stops reading after frame N; -n resolves no names, so nothing is looked up on the network),
made a tree of layers and fields for the browser, with the frame's bytes in hex. tshark is an ordinary
program reading a file: it needs no privilege, so it runs in the web tier.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from typing import Any

from webapp.captures.models import Capture
from webapp.captures.selectors import capture_file_write
from webapp.errors import NotFound

TSHARK = "tshark"
DECODE_TIMEOUT = 30.0  # seconds tshark may take (it reads the file up to the frame)
MAX_OUTPUT = 64 * 2**20  # characters of tshark's JSON taken (one frame's is a few KiB to a few MiB)

Node = dict[str, Any]


class DecodeUnavailable(Exception):
    """tshark is not there, failed or took too long: the message says what to do."""


def _nodes(pairs: list[Any]) -> list[Node]:
    """tshark's JSON object (as (key, value) pairs: keys repeat) as nodes: `x_raw` byte fields are
    left out, and a `x_tree` subtree is put under the field `x` it details."""
    nodes: list[Node] = []
    for key, value in pairs:
        if key.endswith("_raw"):
            continue
        if key.endswith("_tree") and nodes and nodes[-1]["name"] == key[: -len("_tree")]:
            nodes[-1]["children"] = _children(value)
            continue
        items = value if isinstance(value, list) and value and not isinstance(value[0], tuple) else [value]
        for item in items:
            if isinstance(item, list):
                nodes.append({"name": key, "children": _children(item)})
            else:
                nodes.append({"name": key, "value": "" if item is None else str(item)})
    return nodes


def _children(value: Any) -> list[Node]:
    if isinstance(value, list) and all(isinstance(item, tuple) for item in value):
        return _nodes(value)
    return [{"name": "", "value": str(value)}]


def decode_tree(output: str, number: int) -> dict[str, Any]:
    """tshark's `-T json -x` output for one frame as {number, tree, hex}; NotFound if it holds none."""
    packets = json.loads(output, object_pairs_hook=lambda pairs: [tuple(pair) for pair in pairs])
    if not packets:
        raise NotFound(f"frame {number} is not in the capture's file (yet)", field="number")
    source = dict(packets[0])["_source"]
    layers = dict(source)["layers"]
    raw = dict(layers).get("frame_raw")
    return {"number": number, "tree": _nodes(layers), "hex": raw[0] if isinstance(raw, list) and raw else ""}


def packet_decode(*, capture: Capture, number: int) -> dict[str, Any]:
    """Frame `number` of the capture's file, decoded by tshark (see the module)."""
    tshark = shutil.which(TSHARK)
    if tshark is None:
        raise DecodeUnavailable("tshark is not installed on the web server: install Debian's tshark package")
    with tempfile.TemporaryDirectory(prefix="switchboard-decode-") as directory:  # mode 0700: ours alone
        path = os.path.join(directory, "capture.pcapng")
        with open(path, "wb") as out:
            if capture_file_write(capture=capture, out=out) == 0:
                raise NotFound("the capture's file is empty so far: no packet to decode", field="number")
        command = [
            tshark,
            "-n",
            "-r",
            path,
            "-c",
            str(number),
            "-Y",
            f"frame.number == {number}",
            "-T",
            "json",
            "-x",
        ]
        try:
            done = subprocess.run(
                command,
                capture_output=True,
                text=True,
                timeout=DECODE_TIMEOUT,
                env={"LANG": "C.UTF-8", "HOME": directory},
            )
        except subprocess.TimeoutExpired:
            raise DecodeUnavailable(
                f"tshark took longer than {DECODE_TIMEOUT:.0f} s to decode frame {number}"
            ) from None
    if not done.stdout.strip():
        if done.returncode != 0:
            raise DecodeUnavailable(f"tshark could not read the capture: {done.stderr.strip()[-500:]}")
        raise NotFound(f"frame {number} is not in the capture's file (yet)", field="number")
    if len(done.stdout) > MAX_OUTPUT:
        raise DecodeUnavailable(f"tshark's decode of frame {number} is larger than {MAX_OUTPUT // 2**20} MiB")
    return decode_tree(done.stdout, number)
