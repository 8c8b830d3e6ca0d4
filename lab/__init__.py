"""A lab of simulated hosts on one machine, each with a real agent, for Switchboard's multi-host features.

Each host lab1..labN is its own network, mount, PID and UTS namespace (so it has its own /run/netns
and /proc, and its agent reports only the host's namespaces and processes), reaches the others over
an underlay bridge (198.18.254.0/24, fd00:254::/64), and reaches the dashboard's 127.0.0.1:PORT
through a relay, without any route or NAT. Never imports Django: hosts are registered through
`manage.py hosttoken` (lab.tokens).

    from lab import Lab, tokens
    lab = Lab(hosts=3, port=8000, workdir=Path("var/lab"), manage=tokens.register, revoke=tokens.revoke)
    with lab:
        lab1 = lab.host("lab1")
        lab1.run(["ping", "-c1", lab.host("lab2").address])

From the shell: `python -m lab up --hosts 3 --port 8000`, `python -m lab status`, `python -m lab down`.

Modules, one job each: hosts (start one host), inside (PID 1 of a host), underlay (bridge and veths),
relay (the dashboard relay), tokens (manage.py hosttoken), supervisor (the Lab), cli.
"""

from lab.hosts import LabHost
from lab.supervisor import Lab, LabError

__all__ = ["Lab", "LabError", "LabHost"]
