"""Packet capture inside a namespace: dumpcap writes the pcapng file (never sampled), tshark
summarises a sample of its packets as rows for a live table (docs/agent-protocol.md, "Packet capture").

    from netcore.capture.request import capture_request_parse
    from netcore.capture.run import capture_run

    request = capture_request_parse({"namespace": "host", "interfaces": ["eth0"], "filter": "udp",
                                     "count": 1000, "duration": 10})
    result = capture_run(request, on_started=..., on_data=..., on_rows=..., cancelled=...)

`request` is pure (the web app checks its requests with it); the rest runs programs in namespaces.
"""
