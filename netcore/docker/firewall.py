"""Living beside Docker: its FORWARD policy, Switchboard's ACCEPT rules in DOCKER-USER, and the NAT
rules behind its published ports.

Once dockerd runs, the filter table's FORWARD policy is DROP and net.bridge.bridge-nf-call-iptables
is 1, so frames crossing any other Linux bridge of the namespace go through iptables and are
dropped. Docker's documented way out is an ACCEPT rule in its DOCKER-USER chain: Switchboard keeps
one per bridge of its own (`-i br -o br`, commented BRIDGE_COMMENT), added and removed with them.
The rules are iptables' (Docker's chains are), so iptables is driven here, not nft.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterable

from netcore.errors import NetcoreError

CHAIN = "DOCKER-USER"
BRIDGE_COMMENT = "switchboard-bridge"
BRIDGE_NF = "/proc/sys/net/bridge/bridge-nf-call-iptables"
_DNAT = re.compile(r"-p (\w+) .*--dport (\d+) -j DNAT --to-destination ([0-9a-f.:\[\]]+):(\d+)")
_ACCEPTED = re.compile(rf"^-A {CHAIN} -i (\S+) -o (\S+) .*--comment \"?{BRIDGE_COMMENT}\"? -j ACCEPT$")


def _iptables(*args: str, check: bool = True) -> subprocess.CompletedProcess[str] | None:
    """Run iptables (waiting for its lock); None when there is no iptables on this host."""
    binary = shutil.which("iptables")
    if binary is None:
        return None
    done = subprocess.run([binary, "-w", *args], capture_output=True, text=True, check=False)
    if check and done.returncode != 0:
        raise NetcoreError(f"iptables {' '.join(args)}: {done.stderr.strip()}", obj=CHAIN)
    return done


def forward_policy() -> str | None:
    """The filter table's FORWARD policy (ACCEPT or DROP), or None without iptables."""
    done = _iptables("-S", "FORWARD", check=False)
    if done is None or done.returncode != 0:
        return None
    first = done.stdout.split("\n", 1)[0].split()
    return first[2] if first[:2] == ["-P", "FORWARD"] and len(first) > 2 else None


def bridge_nf_call_iptables() -> bool | None:
    """Whether bridged IPv4 frames go through iptables (None: br_netfilter is not loaded here)."""
    try:
        with open(BRIDGE_NF) as sysctl:
            return sysctl.read().strip() == "1"
    except OSError:
        return None


def accepted_bridges() -> list[str] | None:
    """The bridges Switchboard accepts in DOCKER-USER, or None when there is no such chain."""
    done = _iptables("-S", CHAIN, check=False)
    if done is None or done.returncode != 0:
        return None
    return sorted({m.group(1) for line in done.stdout.splitlines() if (m := _ACCEPTED.match(line))})


def published_ports() -> dict[tuple[str, int], str]:
    """Docker's DNAT rules (nat table, chain DOCKER) by (protocol, host port), as iptables -S prints
    them: the rules behind its published ports."""
    done = _iptables("-t", "nat", "-S", "DOCKER", check=False)
    rules = {}
    for line in done.stdout.splitlines() if done is not None and done.returncode == 0 else ():
        if match := _DNAT.search(line):
            rules[(match.group(1), int(match.group(2)))] = line
    return rules


def _rule(bridge: str) -> list[str]:
    return ["-i", bridge, "-o", bridge, "-m", "comment", "--comment", BRIDGE_COMMENT, "-j", "ACCEPT"]


def bridges_accept(bridges: Iterable[str]) -> bool:
    """Make DOCKER-USER accept frames crossing exactly these bridges (of Switchboard's), removing the
    rules of bridges no longer named. Nothing is done where there is no DOCKER-USER chain (Docker
    never ran in this namespace). Answers whether a rule was added or removed."""
    current = accepted_bridges()
    if current is None:
        return False
    wanted = set(bridges)
    _change(remove=set(current) - wanted, add=wanted - set(current))
    return wanted != set(current)


def bridges_accept_more(*, add: Iterable[str] = (), remove: Iterable[str] = ()) -> None:
    """Accept these bridges too, and stop accepting those: what netcore's converge does as it makes
    and deletes bridges, so traffic crosses a new bridge from its first frame on a Docker host. The
    agent's bridges_accept then finds nothing to do. Nothing is done without a DOCKER-USER chain."""
    current = accepted_bridges()
    if current is not None:
        _change(remove=set(remove) & set(current), add=set(add) - set(current))


def _change(*, remove: set[str], add: set[str]) -> None:
    for gone in sorted(remove):
        _iptables("-D", CHAIN, *_rule(gone))
    for new in sorted(add):
        _iptables("-I", CHAIN, *_rule(new))
