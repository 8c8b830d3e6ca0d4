"""The web app runs as an ordinary user with no capabilities; only the agent is root."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.stack.harness import REPO
from tests.stack.scenarios import connected, hand_made_links, topology_life

NOBODY = 65534


def proc_status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as fh:
        return dict(line.rstrip("\n").split(":\t", 1) for line in fh if ":\t" in line)


@pytest.mark.asyncio
async def test_core_flow_with_daphne_as_nobody(make_stack, topo):
    stack = make_stack(unprivileged=True)
    web, agent, browser = await connected(stack)

    status = proc_status(web.proc.pid)
    assert "daphne" in Path(f"/proc/{web.proc.pid}/cmdline").read_bytes().decode()
    assert status["Uid"].split() == [str(NOBODY)] * 4, status["Uid"]
    assert status["Gid"].split() == [str(NOBODY)] * 4, status["Gid"]
    assert status["Groups"].split() == []
    for caps in ("CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd"):
        assert int(status[caps], 16) == 0, f"{caps} = {status[caps]}"
    assert proc_status(agent.pid)["Uid"].split()[0] == "0"  # the agent is the root half

    await hand_made_links(stack, [browser])
    await topology_life(stack, web, agent, browser, topo=topo)

    # everything the web tier wrote is nobody's, in its own directory
    assert os.stat(stack.workdir / "db.sqlite3").st_uid == NOBODY
    assert web.proc.alive and agent.alive


FORBIDDEN_MODULES = ("pyroute2", "docker")
# The web app may use netcore's topology-file parser, so that forms, the API and the agent share one
# validator, its reachability model (reach, worked out from a parsed file), the split of a topology
# spanning hosts (span) and the overlay's comparisons (overlay_entries, overlay_check: from agents'
# states): they are pure (data in, frozen dataclasses out). Nothing else of netcore, which talks to
# the kernel; test_netcore_pure_modules_stay_pure checks they import nothing that does.
NETCORE_PURE = (
    "netcore.topology.spec",
    "netcore.topology.reach",
    "netcore.topology.span",
    "netcore.topology.scope",
    "netcore.topology.overlay_check",
    "netcore.topology.overlay_entries",
    "netcore.errors",
    "netcore.names",
    "netcore.ipam",
    "netcore.docker.spec",
    "netcore.docker.compose",
    "netcore.docker.requests",
    "netcore.services.catalog",
    "netcore.topology.services_section",
    "netcore.explain.question",
    "netcore.shaping_spec",
    "netcore.capture.request",
    "netcore.docker.plumbing",
)


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            # "from a.b import c" is named a.b.c: c may be a module (or a name in a.b)
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
        elif (  # importlib.import_module("x") / __import__("x")
            isinstance(node, ast.Call)
            and getattr(node.func, "attr", getattr(node.func, "id", None)) in ("import_module", "__import__")
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            found.append((node.lineno, node.args[0].value))
    return found


def test_webapp_never_touches_the_kernel_or_docker():
    files = sorted((REPO / "webapp").rglob("*.py"))
    assert len(files) > 20
    problems = []
    for path in files:
        where = path.relative_to(REPO)
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, module in _imported(tree):
            top = module.split(".")[0]
            pure = any(module == name or module.startswith(f"{name}.") for name in NETCORE_PURE)
            if top in FORBIDDEN_MODULES or (top == "netcore" and not pure):
                problems.append(f"{where}:{line} imports {module}")
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and "docker.sock" in node.value:
                problems.append(f"{where}:{node.lineno} names the Docker socket")
    assert not problems, "\n".join(problems)


def test_netcore_pure_modules_stay_pure():
    """What the web app may import of netcore loads no other netcore module, no socket and no pyroute2."""
    watched = ("netcore", "pyroute2", "socket", "ctypes")
    script = (
        "import json, sys\n"
        f"for name in {NETCORE_PURE!r}: __import__(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {watched!r})))"
    )
    run = subprocess.run([sys.executable, "-I", "-c", script], capture_output=True, text=True, check=True)
    packages = {
        "netcore",
        "netcore.topology",
        "netcore.docker",
        "netcore.services",
        "netcore.explain",
        "netcore.capture",
    }
    assert json.loads(run.stdout) == sorted({*NETCORE_PURE, *packages})
