"""DNS questions asked from inside a client's namespace, as that client would ask them: what the
catalog page's "check" shows beside what the catalog says the answer should be."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

from netcore.errors import InvalidSpec, NetcoreError
from netcore.names import validate_netns_name
from netcore.netns import netns_path
from netcore.services.dns import dns_query

MAX_QUESTIONS = 16
TYPES = ("A", "AAAA", "SRV")
#: A name to ask for: labels of a-z, 0-9, '-' and '_' (SRV names start with one), at most 253.
NAME = re.compile(r"^(?=.{1,253}\Z)[a-z0-9_][a-z0-9_-]{0,62}(\.[a-z0-9_][a-z0-9_-]{0,62})*\.?\Z")


def _questions(data: object) -> list[tuple[str, str]]:
    if not isinstance(data, list) or not 0 < len(data) <= MAX_QUESTIONS:
        raise InvalidSpec(f"questions: a list of 1 to {MAX_QUESTIONS}", obj="questions")
    found = []
    for i, item in enumerate(data):
        name = item.get("name") if isinstance(item, dict) else None
        rdtype = item.get("type") if isinstance(item, dict) else None
        if not isinstance(name, str) or not NAME.match(name.lower()) or rdtype not in TYPES:
            where = f"questions[{i}]"
            raise InvalidSpec(f"{where}: a DNS name and a type of {', '.join(TYPES)}", obj=where)
        found.append((name, rdtype))
    return found


def lookup(request: object) -> dict[str, Any]:
    """Ask `questions` of `server` from namespace `netns` (a name under /run/netns; None: the caller's):
    {"ok": True, "answers": [{name, type, rcode, records, rtt} or {name, type, error}]}, or
    {"ok": False, "error"} for a request that is wrong."""
    try:
        if not isinstance(request, dict):
            raise InvalidSpec("a resolve request is an object", obj="request")
        questions = _questions(request.get("questions"))
        try:
            server = ipaddress.ip_address(request.get("server"))  # type: ignore[arg-type]
        except ValueError:
            raise InvalidSpec("server: an IP address", obj="server") from None
        netns = request.get("netns")
        if netns is not None:
            validate_netns_name(netns, field="netns")
        path = netns_path(netns) if netns else None
    except NetcoreError as exc:
        return {"ok": False, "error": exc.to_dict()}
    answers = []
    for name, rdtype in questions:
        try:
            answer = dns_query(server=server, name=name, rdtype=rdtype, netns=path, timeout=1.0)
        except NetcoreError as exc:
            answers.append({"name": name, "type": rdtype, "error": str(exc)})
            continue
        answers.append({"name": name, "type": rdtype, **answer.to_dict()})
    return {"ok": True, "answers": answers}
