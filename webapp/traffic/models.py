"""One "talks to" edge of a host (client namespace → server, protocol, port), as its agent reported it
(the `traffic` state kind, docs/agent-protocol.md), kept after the conversation ended.

The agent reports only live conntrack entries: `flows`, `packets` and `bytes` are sums over the
edge's entries live at its last report. A flow that expires takes its counters with it, so the last
report of an ended edge says what its last live flows carried, not everything it ever carried;
`packets_seen` and `bytes_seen` are what the web app saw the sums grow by while it listened: a lower
bound of the edge's traffic (growth between the last report and a flow's expiry, and traffic while
no agent was connected, are not in it).
"""

from __future__ import annotations

from django.db import models

from webapp.hosts.models import Host


class TrafficEdge(models.Model):
    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="traffic_edges")
    key = models.CharField(max_length=512, help_text="The agent's key: client|server|protocol|port.")
    client = models.CharField(max_length=300, help_text="Namespace that opened the conversation.")
    server = models.CharField(
        max_length=300,
        blank=True,
        help_text="Namespace that owns the address reached; empty: outside the host.",
    )
    server_address = models.CharField(max_length=64, help_text="The address the conversation reached.")
    protocol = models.CharField(max_length=16, help_text="tcp, udp, icmp, icmpv6, sctp or a protocol number.")
    port = models.PositiveIntegerField(
        null=True, blank=True, help_text="The server's port; null without ports."
    )
    seen_in = models.JSONField(default=list, help_text="Namespaces whose conntrack table showed it.")
    first_seen = models.DateTimeField(help_text="When the web app first heard of it.")
    last_seen = models.DateTimeField(help_text="When the agent last reported a change of it.")
    ended = models.DateTimeField(null=True, blank=True, help_text="When it ended; null while live.")
    flows = models.PositiveIntegerField(default=0, help_text="Live conntrack entries at the last report.")
    peak_flows = models.PositiveIntegerField(default=0, help_text="Most live entries ever reported at once.")
    packets = models.BigIntegerField(default=0, help_text="Packets of the live entries at the last report.")
    bytes = models.BigIntegerField(default=0, help_text="Bytes of the live entries at the last report.")
    packets_seen = models.BigIntegerField(
        default=0, help_text="Packets seen added: a lower bound of the total."
    )
    bytes_seen = models.BigIntegerField(default=0, help_text="Bytes seen added: a lower bound of the total.")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["host", "key"], name="traffic_edge_unique_key")]
        indexes = [models.Index(fields=["host", "ended"]), models.Index(fields=["ended"])]

    def __str__(self) -> str:
        return f"{self.host_id}:{self.key}"

    @property
    def live(self) -> bool:
        return self.ended is None
