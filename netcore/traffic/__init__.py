"""Traffic edges: who talks to whom on this host, from each namespace's conntrack table.

arm.py makes conntrack track (and count) in the namespaces Switchboard created, read.py dumps
every namespace's table, and edges.py turns the flows into "talks to" edges, the agent's state
kind `traffic` (netcore/schema/traffic.schema.json, docs/agent-protocol.md).
"""
