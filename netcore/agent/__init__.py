"""The per-host agent: netcore's live model, connected to the Switchboard web app.

See docs/agent-protocol.md for the wire protocol.
"""

PROTOCOL_VERSION = 1
