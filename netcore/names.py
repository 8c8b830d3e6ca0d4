"""Name rules, and the names Switchboard gives to everything it creates.

For topology ``t`` (1-8 of ``[a-z0-9-]``), node ``n`` and network ``w``:

=====================================  ======================================================
node namespace (/run/netns/…)          ``t-n`` (a file name, so not held to 15 bytes)
bridge of network ``w``                ``t-w``; segment ``s`` ≥ 1 of a large network: ``t-w.s``
veth joining segment ``s`` to ``t-w``  ``t-w.sr`` (root side, on ``t-w``), ``t-w.ss`` (on ``t-w.s``)
VXLAN device of network ``w``          ``t-w.vx`` (a port of the bridge ``t-w``)
host side of node ``n``'s veth on w    ``t-n-w`` (the node side is ``ethN`` in the namespace)
nftables table (published ports, NAT)  ``inet switchboard-t`` (rules marked by comment: netcore.topology.nat)
=====================================  ======================================================

Interface names longer than 15 bytes (IFNAMSIZ - 1) go through :func:`fit_ifname`: the first 7
bytes, ``~`` and 7 base32 characters (35 bits) of a BLAKE2s hash of the full name, e.g.
``demo-front.vx`` stays and ``demo-web1-backend`` becomes ``demo-we~xxxxxxx``. 35 bits keep the
names of a topology's thousands of veths apart (16 bits made two of 500 collide more often than not).

Everything created also carries an owner marker in its interface alias (IFLA_IFALIAS):
``switchboard:<topology>:<role>[:network=w][:node=n][:segment=s][:shared=a,b]`` with role
``bridge``, ``segment``, ``vxlan``, ``veth`` or ``node`` (the alias set on a node namespace's
``lo``). Only a node's alias has ``shared``: the nodes in container mode that share its namespace
(they have no kernel object of their own), sorted and comma-separated. An alias holds at most
MAX_ALIAS_BYTES bytes, the kernel's limit.
The host-side links of a topology also share a device group (:func:`owner_group`), so that
destroy can delete them all in one request, after checking every member is ours.
"""

from __future__ import annotations

import base64
import hashlib
import re
import reprlib
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass

from netcore.errors import InvalidSpec

IFNAMSIZ = 16
#: Longest interface name in bytes (the kernel keeps a NUL in IFNAMSIZ).
MAX_IFNAME_BYTES = IFNAMSIZ - 1
#: Longest namespace name in bytes: a file name under /run/netns (NAME_MAX).
MAX_NETNS_BYTES = 255
IFALIASZ = 256
#: Longest interface alias in bytes that netcore can set: the kernel keeps at most IFALIASZ - 1 bytes
#: and netcore sends the alias NUL-terminated, the NUL counted (6.18: 254 bytes set, 255 refused
#: with ERANGE; older kernels refuse it in dev_set_alias with EINVAL).
MAX_ALIAS_BYTES = IFALIASZ - 2
ROLES = ("bridge", "segment", "vxlan", "veth", "node")
ALIAS_PREFIX = "switchboard"

#: Longest excerpt of a value that an error message quotes.
EXCERPT_CHARS = 60

_TOPOLOGY_NAME = re.compile(r"[a-z0-9-]{1,8}")
MAC = re.compile(r"[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}")  # an Ethernet address as netcore writes one
ZERO_MAC = "00:00:00:00:00:00"  # a VXLAN device's flood (head-end replication) entries have it
_FIT_PREFIX_BYTES = 7
_FIT_HASH_CHARS = 7


class _ShortRepr(reprlib.Repr):
    """reprlib's size-bounded repr; strings cut at the end, integers too long to print described."""

    def __init__(self) -> None:
        super().__init__()
        self.maxlevel = 3
        self.maxstring = self.maxother = self.maxlong = EXCERPT_CHARS
        self.maxlist = self.maxtuple = self.maxset = self.maxfrozenset = self.maxdeque = 6
        self.maxdict = 4

    def repr_str(self, x: str, level: int) -> str:
        return repr(x[: EXCERPT_CHARS + 1])

    def repr_int(self, x: int, level: int) -> str:
        try:
            return super().repr_int(x, level)
        except ValueError:  # more digits than int-to-str converts (sys.get_int_max_str_digits)
            return f"<an integer of {x.bit_length()} bits>"


_short_repr = _ShortRepr()


def excerpt(value: object) -> str:
    """repr(value) for an error message: at most EXCERPT_CHARS characters, cut with "…".

    Never builds the whole repr of a large value (a long string, a deep or wide structure).
    """
    text = _short_repr.repr(value)
    return text if len(text) <= EXCERPT_CHARS else text[: EXCERPT_CHARS - 1] + "…"


def _name_problem(name: object, *, max_bytes: int) -> str | None:
    if not isinstance(name, str):
        return f"the name must be a string, not {type(name).__name__} {excerpt(name)}"
    if not name:
        return "the name is empty"
    if name in (".", ".."):
        return f"{name!r} is not allowed as a name"
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return f"{excerpt(name)} cannot be encoded as UTF-8"
    if size > max_bytes:
        return f"{excerpt(name)} is {size} bytes long (at most {max_bytes})"
    for position, char in enumerate(name, start=1):
        what = _forbidden(char)
        if what:
            return f"{excerpt(name)} contains {what} at character {position}, which names cannot contain"
    return None


_MARKUP = frozenset("<>&\"'`")


def _forbidden(char: str) -> str | None:
    """What a character is, when names may not hold it: path separators, whitespace and control
    characters, invisible and bidirectional formatting characters (U+202E makes a terminal show a
    name backwards) and markup characters (a name ends up in HTML, logs and shell commands)."""
    code = f"U+{ord(char):04X} {unicodedata.name(char, '')}".rstrip()
    if char in "/:":
        return repr(char)
    if char.isspace() or unicodedata.category(char) == "Cc":
        return f"whitespace or a control character ({code})"
    if unicodedata.category(char) == "Cf":
        return f"an invisible or bidirectional formatting character ({code})"
    if char in _MARKUP:
        return f"the markup character {char!r}"
    return None


def validate_ifname(name: object, *, field: str) -> None:
    """Refuse an interface name the kernel would refuse, or one hard to show or type.

    Also the rule for node and network names in topology files.
    """
    problem = _name_problem(name, max_bytes=MAX_IFNAME_BYTES)
    if problem:
        raise InvalidSpec(f"{field}: {problem}", obj=field)


def validate_netns_name(name: object, *, field: str) -> None:
    """Refuse a network namespace name: the interface-name rules, but up to 255 bytes (a file name)."""
    problem = _name_problem(name, max_bytes=MAX_NETNS_BYTES)
    if problem:
        raise InvalidSpec(f"{field}: {problem}", obj=field)


def validate_topology_name(name: object, *, field: str = "name") -> None:
    """Refuse a topology name that is not 1-8 characters of a-z, 0-9 and '-'."""
    if not isinstance(name, str) or not _TOPOLOGY_NAME.fullmatch(name):
        found = first_outside(name, "abcdefghijklmnopqrstuvwxyz0123456789-") if isinstance(name, str) else ""
        raise InvalidSpec(
            f"{field}: {excerpt(name)} must be 1 to 8 characters of a-z, 0-9 and '-'{found}", obj=field
        )


def first_outside(name: str, allowed: str) -> str:
    """Where `name` first leaves the characters `allowed`, for an error message:
    " (not '<' at character 5)", with the code and name of one that does not show; "" if it does not."""
    for position, char in enumerate(name, start=1):
        if char not in allowed:
            shown = repr(char) if char.isprintable() and not char.isspace() else ""
            code = f"U+{ord(char):04X} {unicodedata.name(char, '')}".rstrip()
            return f" (not {shown or code} at character {position})"
    return ""


def fit_ifname(name: str) -> str:
    """`name` if it fits in 15 bytes, else a deterministic shortened form that does."""
    raw = name.encode("utf-8")
    if len(raw) <= MAX_IFNAME_BYTES:
        return name
    prefix = raw[:_FIT_PREFIX_BYTES].decode("utf-8", errors="ignore")
    digest = base64.b32encode(hashlib.blake2s(raw, digest_size=5).digest()).decode().lower()
    return f"{prefix}~{digest[:_FIT_HASH_CHARS]}"


def namespace_name(topology: str, node: str) -> str:
    """The network namespace of `node`."""
    return f"{topology}-{node}"


def bridge_name(topology: str, network: str, segment: int = 0) -> str:
    """The bridge of `network`, or of one of its further segments (joined to segment 0)."""
    if segment < 0:
        raise ValueError(f"segment must be 0 or more, not {segment}")
    suffix = f".{segment}" if segment else ""
    return fit_ifname(f"{topology}-{network}{suffix}")


def segment_link_names(topology: str, network: str, segment: int) -> tuple[str, str]:
    """The veth pair joining segment `segment` (≥ 1) to segment 0: (root side, segment side)."""
    if segment < 1:
        raise ValueError(f"segment must be 1 or more, not {segment}")
    base = f"{topology}-{network}.{segment}"
    return fit_ifname(f"{base}r"), fit_ifname(f"{base}s")


def vxlan_name(topology: str, network: str) -> str:
    """The VXLAN device of `network`."""
    return fit_ifname(f"{topology}-{network}.vx")


def host_veth_name(topology: str, node: str, network: str) -> str:
    """The host (bridge) side of the veth linking `node` to `network`."""
    return fit_ifname(f"{topology}-{node}-{network}")


@dataclass(frozen=True)
class OwnerTag:
    """What an owner alias says: which topology created the object, in which role."""

    topology: str
    role: str
    network: str | None = None
    node: str | None = None
    segment: int | None = None
    #: Nodes in container mode sharing this node's namespace (role "node" only).
    shared: tuple[str, ...] = ()


def owner_group(topology: str) -> int:
    """The device group of a topology's host-side links: 0x5B plus 24 bits of a hash of its name."""
    digest = hashlib.blake2s(topology.encode(), digest_size=3).digest()
    return 0x5B000000 | int.from_bytes(digest, "big")


def owner_alias(
    *,
    topology: str,
    role: str,
    network: str | None = None,
    node: str | None = None,
    segment: int | None = None,
    shared: Collection[str] = (),
) -> str:
    """The interface alias marking an object as ours, e.g. "switchboard:demo:bridge:network=front".

    `shared` (role "node" only) names the nodes sharing that node's namespace; they are written
    sorted: "switchboard:demo:node:node=web1:shared=db,side". ValueError for what could not be
    parsed back, and for an alias longer than the kernel keeps (MAX_ALIAS_BYTES).
    """
    if role not in ROLES:
        raise ValueError(f"unknown owner role {role!r} (expected one of {', '.join(ROLES)})")
    for label, text in (("topology", topology), ("network", network), ("node", node)):
        if text is not None and (not text or ":" in text):
            raise ValueError(f"{label} {text!r} cannot go in an owner alias")
    if segment is not None and segment < 0:
        raise ValueError(f"segment must be 0 or more, not {segment}")
    if isinstance(shared, str):
        raise ValueError(f"shared must be a collection of node names, not the string {excerpt(shared)}")
    if shared and role != "node":
        raise ValueError(f"only a node's owner alias lists the nodes sharing it, not a {role}'s")
    for text in shared:
        if not text or ":" in text or "," in text:
            raise ValueError(f"shared node {text!r} cannot go in an owner alias")
    if len(set(shared)) != len(shared):
        raise ValueError(f"shared lists a node twice: {excerpt(sorted(shared))}")
    parts = [ALIAS_PREFIX, topology, role]
    parts += [
        f"{key}={value}"
        for key, value in (
            ("network", network),
            ("node", node),
            ("segment", segment),
            ("shared", ",".join(sorted(shared)) or None),
        )
        if value is not None
    ]
    alias = ":".join(parts)
    size = len(alias.encode("utf-8"))
    if size > MAX_ALIAS_BYTES:
        raise ValueError(
            f"the owner alias {excerpt(alias)} would be {size} bytes long"
            f" (an interface alias holds at most {MAX_ALIAS_BYTES})"
        )
    return alias


def parse_owner_alias(alias: str | None) -> OwnerTag | None:
    """The tag in an interface alias made by :func:`owner_alias`, or None if the alias is not ours."""
    if not alias:
        return None
    prefix, *rest = alias.split(":")
    if prefix != ALIAS_PREFIX or len(rest) < 2:
        return None
    topology, role, *pairs = rest
    if not topology or role not in ROLES:
        return None
    fields: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not value or key not in ("network", "node", "segment", "shared") or key in fields:
            return None
        fields[key] = value
    segment = fields.pop("segment", None)
    if segment is not None and not (segment.isascii() and segment.isdigit()):
        return None
    shared = tuple(fields.pop("shared").split(",")) if "shared" in fields else ()
    if shared and (role != "node" or not all(shared) or len(set(shared)) != len(shared)):
        return None
    return OwnerTag(
        topology=topology,
        role=role,
        segment=None if segment is None else int(segment),
        shared=shared,
        **fields,
    )
