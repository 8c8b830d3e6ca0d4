"""nftables through `nft -j`: JSON batches in, JSON listings out.

netcore does not speak nf_tables netlink itself; `nft` is a real program it drives (DESIGN.md). Every
call runs `nft` as a child of the calling thread, and a child starts in the network namespace of the
thread that made it: the namespace netcore calls "the host" (under `nsenter --net=...`, or in the tests'
throwaway namespace, exactly like netcore's netlink sockets). No other namespace is ever entered.

A batch (`nft -j -f -`) is one nf_tables transaction: the kernel commits all of it or none of it.
`check=True` (`nft -c`) sends the same batch to the kernel and aborts it instead of committing: the
kernel still looks up every expression and chain type, so missing kernel support shows up without a
change being made.

Errors become netcore's: `nft` missing, or a kernel without nf_tables or without one of the expressions
a batch uses, is `Unsupported` naming what is missing; anything else the kernel refused is translated
from the errno text `nft` prints.
"""

from __future__ import annotations

import errno as _errno
import json
import os
import shutil
import subprocess
from collections.abc import Sequence

from netcore.errors import NetcoreError, Unsupported, from_errno

#: The nft program: looked up on PATH, then in the sbin directories a non-root PATH may lack.
NFT = "nft"
_SBIN = ("/usr/sbin", "/sbin")
#: Longest a single `nft` run may take.
TIMEOUT = 60.0
#: Longest comment nft accepts on a rule (NFT_USERDATA_MAXLEN is larger; nft itself refuses more).
MAX_COMMENT_BYTES = 128
_INSTALL_HINT = "install nftables (Debian: apt-get install nftables)"

# strerror texts nft prints, back to their errno (nft prints strerror in the C locale we run it in)
_ERRNO_OF_TEXT = {os.strerror(code): code for code in sorted(_errno.errorcode, reverse=True)}

# Expressions and chain types a topology's table uses, each probed on its own when a batch fails for
# lack of kernel support, so the error names what is missing. (name, kernel module, batch body)
_T = {"family": "inet", "table": "switchboard-probe"}
_PROBE_TABLE = {"add": {"table": {"family": "inet", "name": "switchboard-probe"}}}


def _probe_rule(chain: str, *expr: dict) -> dict:
    return {"add": {"rule": {**_T, "chain": chain, "expr": list(expr)}}}


def _probe_chain(name: str, kind: str, hook: str, prio: int) -> dict:
    chain = {**_T, "name": name, "type": kind, "hook": hook, "prio": prio, "policy": "accept"}
    return {"add": {"chain": chain}}


_FIB_DADDR_TYPE = {"fib": {"result": "type", "flags": ["daddr"]}}
_TCP_DPORT = {"match": {"op": "==", "left": {"payload": {"protocol": "tcp", "field": "dport"}}, "right": 1}}
_PROBES: tuple[tuple[str, list[dict]], ...] = (
    ("nf_tables with the inet family (nf_tables, nf_tables_inet)", [_PROBE_TABLE]),
    (
        "nftables NAT chains (nft_chain_nat)",
        [_PROBE_TABLE, _probe_chain("nat", "nat", "postrouting", 100)],
    ),
    (
        "nftables dnat (nft_nat)",
        [
            _PROBE_TABLE,
            _probe_chain("nat", "nat", "prerouting", -100),
            _probe_rule(
                "nat",
                {"match": {"op": "==", "left": {"meta": {"key": "nfproto"}}, "right": "ipv4"}},
                _TCP_DPORT,
                {"dnat": {"family": "ip", "addr": "198.18.0.1", "port": 1}},
            ),
        ],
    ),
    (
        "nftables masquerade (nft_masq)",
        [
            _PROBE_TABLE,
            _probe_chain("nat", "nat", "postrouting", 100),
            _probe_rule("nat", {"masquerade": None}),
        ],
    ),
    (
        "nftables fib (nft_fib_inet)",
        [
            _PROBE_TABLE,
            _probe_chain("nat", "nat", "prerouting", -100),
            _probe_rule(
                "nat",
                {"match": {"op": "==", "left": _FIB_DADDR_TYPE, "right": "local"}},
            ),
        ],
    ),
    (
        "nftables conntrack matches (nft_ct)",
        [
            _PROBE_TABLE,
            _probe_chain("nat", "nat", "postrouting", 100),
            _probe_rule("nat", {"match": {"op": "in", "left": {"ct": {"key": "status"}}, "right": "dnat"}}),
        ],
    ),
)


def nft_program() -> str | None:
    """The path of the nft program, or None when it is not installed."""
    found = shutil.which(NFT)
    if found is None and os.sep not in NFT:
        found = shutil.which(NFT, path=os.pathsep.join(_SBIN))
    return found


def _run(args: Sequence[str], *, stdin: str | None, what: str) -> subprocess.CompletedProcess[str]:
    program = nft_program()
    if program is None:
        raise Unsupported(f"{what}: the nft program is not installed; {_INSTALL_HINT}", obj="nft")
    env = {**os.environ, "LC_ALL": "C"}  # the errno text nft prints is read back
    try:
        return subprocess.run(
            [program, *args], input=stdin, capture_output=True, text=True, env=env, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired:
        raise NetcoreError(f"{what}: nft did not answer within {TIMEOUT:.0f} s", obj="nft") from None
    except OSError as exc:
        raise Unsupported(f"{what}: cannot run {program}: {exc.strerror}", obj="nft") from None


def _nft_message(stderr: str) -> str:
    """nft's own words: its `Error:` lines, without the echo of the command and the ^^^ markers."""
    lines = [line.strip() for line in stderr.splitlines() if "Error:" in line]
    text = "; ".join(line[line.index("Error:") + len("Error:") :].strip() for line in lines)
    if text:
        return text
    rest = stderr.strip()
    return rest.splitlines()[0] if rest else "nft failed without a message"


def _errno_of(message: str) -> int | None:
    """The errno whose text ends nft's message ("Could not process rule: Operation not supported")."""
    for part in reversed(message.replace(";", ":").split(":")):
        code = _ERRNO_OF_TEXT.get(part.strip())
        if code is not None:
            return code
    return None


def _error(proc: subprocess.CompletedProcess[str], *, obj: str, action: str) -> NetcoreError:
    message = _nft_message(proc.stderr)
    code = _errno_of(message)
    if code is None:
        return NetcoreError(f"{action} {obj}: nft said: {message}", obj=obj)
    error = from_errno(code, obj=obj, action=action)
    error.args = (f"{action} {obj}: nft said: {message} (errno {_errno.errorcode.get(code, code)})",)
    return error


_NO_KERNEL_SUPPORT = (_errno.EPROTONOSUPPORT, _errno.EAFNOSUPPORT, _errno.EOPNOTSUPP)


def nft_list_table(*, family: str, name: str) -> list[dict] | None:
    """Every object of table `family name` as `nft -j` lists it (the table, its chains, rules, sets,
    ...; the metainfo left out), or None when there is no such table.

    Unsupported when nft is missing or the kernel has no nf_tables.
    """
    what = f"table {family} {name}"
    proc = _run(["-j", "list", "table", family, name], stdin=None, what=f"read nftables {what}")
    if proc.returncode != 0:
        error = _error(proc, obj=what, action="read nftables")
        if error.errno == _errno.ENOENT:
            return None
        if error.errno in _NO_KERNEL_SUPPORT:
            raise Unsupported(
                f"read nftables {what}: this kernel has no nf_tables ({_nft_message(proc.stderr)})", obj="nft"
            )
        raise error
    try:
        listed = json.loads(proc.stdout)["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise NetcoreError(f"read nftables {what}: nft printed no JSON it knows ({exc})", obj=what) from None
    return [item for item in listed if isinstance(item, dict) and "metainfo" not in item]


def nft_list_ruleset() -> list[dict]:
    """The whole ruleset of the namespace nft runs in (every table's objects, as `nft -j` lists
    them; iptables-nft's tables included). Unsupported as for nft_list_table."""
    proc = _run(["-j", "list", "ruleset"], stdin=None, what="read the nftables ruleset")
    if proc.returncode != 0:
        error = _error(proc, obj="ruleset", action="read nftables")
        if error.errno in _NO_KERNEL_SUPPORT:
            raise Unsupported(f"read the nftables ruleset: this kernel has no nf_tables ({error})", obj="nft")
        raise error
    try:
        listed = json.loads(proc.stdout)["nftables"]
    except (ValueError, KeyError, TypeError) as exc:
        raise NetcoreError(f"read the nftables ruleset: nft printed no JSON it knows ({exc})") from None
    return [item for item in listed if isinstance(item, dict) and "metainfo" not in item]


def nft_list_tables(*, family: str) -> list[str]:
    """The names of the tables of `family` in the host namespace. Unsupported as for nft_list_table."""
    proc = _run(["-j", "list", "tables", family], stdin=None, what=f"list nftables tables {family}")
    if proc.returncode != 0:
        error = _error(proc, obj=f"tables {family}", action="list nftables")
        if error.errno in _NO_KERNEL_SUPPORT:
            raise Unsupported(f"list nftables tables: this kernel has no nf_tables ({error})", obj="nft")
        raise error
    try:
        listed = json.loads(proc.stdout)["nftables"]
        return [item["table"]["name"] for item in listed if "table" in item]
    except (ValueError, KeyError, TypeError) as exc:
        raise NetcoreError(f"list nftables tables {family}: nft printed no JSON it knows ({exc})") from None


def nft_apply(*, batch: Sequence[dict], obj: str, check: bool = False) -> None:
    """Send `batch` (JSON commands such as {"add": {"rule": ...}}) as one transaction.

    `check`: have the kernel check it and abort instead of committing (`nft -c`): nothing changes.
    A failure for lack of kernel support raises Unsupported naming the missing feature.
    """
    if not batch:
        return
    action = "check nftables changes to" if check else "change nftables"
    args = ["-c", "-j", "-f", "-"] if check else ["-j", "-f", "-"]
    proc = _run(args, stdin=json.dumps({"nftables": list(batch)}), what=f"{action} {obj}")
    if proc.returncode == 0:
        return
    error = _error(proc, obj=obj, action=action)
    if error.errno in (_errno.EOPNOTSUPP, _errno.ENOENT, *_NO_KERNEL_SUPPORT):
        missing = nft_missing_feature()
        if missing is not None:
            raise Unsupported(
                f"{action} {obj}: this kernel lacks {missing}, which published ports and nat need"
                f" (nft said: {_nft_message(proc.stderr)})",
                obj="nft",
                errno=error.errno,
            )
    raise error


def nft_missing_feature() -> str | None:
    """The first kernel feature a topology's table needs that this kernel lacks, or None if it has
    them all. Each is checked with `nft -c` (nothing is committed)."""
    for name, batch in _PROBES:
        proc = _run(["-c", "-j", "-f", "-"], stdin=json.dumps({"nftables": batch}), what="probe nftables")
        if proc.returncode != 0:
            return name
    return None
