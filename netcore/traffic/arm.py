"""Make conntrack track the namespaces Switchboard created, and count packets and bytes there.

Conntrack is lazy per network namespace: until a ruleset there uses it, the kernel keeps no entry
for that namespace's traffic (checked on 6.18: a fresh namespace's traffic leaves its table empty).
Arming a namespace adds one small table of Switchboard's, ``inet switchboard-conntrack``, whose one
chain (filter, hook output, policy accept) holds one rule, ``ct state new counter``: any rule with
a ``ct`` expression makes the kernel track the whole namespace (every hook, both IP families), and
neither the chain nor the rule decides anything, so no packet is dropped or accepted because of it
(explain's firewall interpreter reads the rule as a match with no verdict). Arming also sets the
namespace's ``net.netfilter.nf_conntrack_acct`` to 1, so entries made from then on carry packet and
byte counters; disarming deletes the table and puts the value found back.

Only namespaces Switchboard created are armed: named ones whose ``lo`` carries a topology node's
owner alias (netcore.names; the mark a namespace gets before it appears under its name). The host's
own namespace, Docker's containers and anything else are only read, never changed. The table lives
only inside node namespaces, never in the host's, so a topology's own table (``inet
switchboard-<topology>``, at most 8 characters after the prefix: "conntrack" cannot be one) and its
converge never meet it; it goes with its namespace when a topology is destroyed.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass

from netcore import names, nft
from netcore import netns as ns
from netcore.errors import NetcoreError, NotFound
from netcore.model import Snapshot

log = logging.getLogger("netcore.traffic")

FAMILY = "inet"
TABLE = "switchboard-conntrack"
CHAIN = "track"
ACCT = "/proc/sys/net/netfilter/nf_conntrack_acct"


@dataclass(frozen=True, slots=True)
class Armed:
    """A namespace this process armed: its name and inode (a namespace made again under the same
    name is another one), and the accounting setting it had before."""

    name: str
    inode: int
    acct_before: str


def our_namespaces(snapshot: Snapshot) -> dict[str, int]:
    """The namespaces of `snapshot` that Switchboard created (name → inode): named ones whose `lo`
    carries a node's owner alias."""
    named = {n.name: n.inode for n in snapshot.namespaces if n.kind == "named"}
    ours = {}
    for link in snapshot.links:
        if link.name == "lo" and link.netns in named:
            tag = names.parse_owner_alias(link.alias)
            if tag is not None and tag.role == "node":
                ours[link.netns] = named[link.netns]
    return ours


def _batch() -> list[dict]:
    """The table, made afresh: added (so the delete finds it), deleted, added with its chain and rule,
    all in one nftables transaction, so arming twice leaves one rule."""
    table = {"family": FAMILY, "name": TABLE}
    chain = {"family": FAMILY, "table": TABLE, "name": CHAIN, "type": "filter", "hook": "output"}
    ct_new = {"match": {"op": "in", "left": {"ct": {"key": "state"}}, "right": "new"}}
    rule = {"family": FAMILY, "table": TABLE, "chain": CHAIN, "expr": [ct_new, {"counter": None}]}
    return [
        {"add": {"table": table}},
        {"delete": {"table": table}},
        {"add": {"table": table}},
        {"add": {"chain": {**chain, "prio": 0, "policy": "accept"}}},
        {"add": {"rule": rule}},
    ]


def _read_acct() -> str:
    with open(ACCT) as f:
        return f.read().strip()


def _write_acct(value: str) -> None:
    with open(ACCT, "w") as f:
        f.write(value)


def arm(*, name: str, inode: int) -> Armed:
    """Arm the named namespace `name` (see the module); NetcoreError if nft or the kernel refuses."""
    path = ns.netns_path(name)

    def job() -> Armed:
        if os.stat("/proc/thread-self/ns/net").st_ino != inode:
            raise NotFound(f"namespace {name} was made again since it was read: not armed", obj=name)
        try:
            before = _read_acct()
            nft.nft_apply(batch=_batch(), obj=f"table {FAMILY} {TABLE} of {name}")
            if before != "1":
                _write_acct("1")
        except OSError as exc:
            raise NetcoreError(f"arm conntrack in {name}: {ACCT}: {exc.strerror}", obj=name) from None
        return Armed(name, inode, before)

    return ns.netns_run(path=path, fn=job)


def disarm(armed: Armed) -> None:
    """Delete the table from a namespace armed before and put its accounting setting back, if that
    namespace is still there (a namespace made again under its name is left alone)."""
    path = ns.netns_path(armed.name)
    try:
        if os.stat(path).st_ino != armed.inode:
            return
    except OSError:
        return

    def job() -> None:
        batch = [{"delete": {"table": {"family": FAMILY, "name": TABLE}}}]
        try:
            nft.nft_apply(batch=batch, obj=f"table {FAMILY} {TABLE} of {armed.name}")
        except NotFound:
            pass  # someone deleted it: nothing to undo
        except NetcoreError as exc:
            log.warning("traffic: cannot disarm %s: %s", armed.name, exc)
        if armed.acct_before != "1":
            with contextlib.suppress(OSError):
                _write_acct(armed.acct_before)

    with contextlib.suppress(OSError, NotFound):  # it went meanwhile
        ns.netns_run(path=path, fn=job)


class Arming:
    """The namespaces this process armed, kept in step with the snapshots it is shown."""

    def __init__(self) -> None:
        self.armed: dict[str, Armed] = {}
        self.failed: dict[tuple[str, int], str] = {}  # why a namespace could not be armed (said once)

    def update(self, snapshot: Snapshot) -> list[str]:
        """Arm the namespaces of ours that appeared since the last call and forget those gone; the
        names armed now. A namespace that cannot be armed is logged once and not tried again."""
        ours = our_namespaces(snapshot)
        for name in [n for n, a in self.armed.items() if ours.get(n) != a.inode]:
            del self.armed[name]
        self.failed = {key: why for key, why in self.failed.items() if ours.get(key[0]) == key[1]}
        made = []
        for name, inode in sorted(ours.items()):
            if name in self.armed or (name, inode) in self.failed:
                continue
            try:
                self.armed[name] = arm(name=name, inode=inode)
                made.append(name)
            except (OSError, NetcoreError) as exc:
                self.failed[(name, inode)] = str(exc)
                log.warning("traffic: cannot make conntrack track %s: %s", name, exc)
        return made

    def disarm_all(self) -> None:
        """Disarm every namespace armed."""
        while self.armed:
            armed = self.armed.popitem()[1]
            try:
                disarm(armed)
            except NetcoreError as exc:
                log.warning("traffic: cannot disarm %s: %s", armed.name, exc)
