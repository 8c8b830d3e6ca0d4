"""The bounds of a capture: what a request may ask (the agent protocol's `capture` frame,
docs/agent-protocol.md "Packet capture"), what one agent frame may carry, and what the web app keeps
of one capture. One place, read by the API, the services and the agent frame checks."""

from __future__ import annotations

import math

# what a request may ask: netcore's own bounds, which the agent checks too
from netcore.capture.request import (  # noqa: F401  (re-exported for the web app's forms and checks)
    COUNT_RANGE,
    DEFAULT_SNAPLEN,
    DURATION_RANGE,
    MAX_FILTER,
    MAX_INTERFACES,
    MAX_NAMESPACE,
    SNAPLEN_RANGE,
)

MAX_DATA_BYTES = 4 * 2**20  # file bytes in one capture.data frame
MAX_DATA_TEXT = 4 * math.ceil(MAX_DATA_BYTES / 3)  # the same bytes in base64 (~5.3 MiB of text)
MAX_ROWS_PER_FRAME = 200  # rows in one capture.packets frame
MAX_ROW_TEXT = 1024  # characters of each string of a row (tshark's columns, as the agent cuts them)

MAX_FILE_BYTES = 256 * 2**20  # file bytes kept of one capture: past it the agent is asked to stop
# what may still arrive once the agent was asked to stop (frames already on their way, dumpcap's
# last flush): kept, so the file ends whole; bytes past this are dropped
FILE_SLACK_BYTES = 8 * MAX_DATA_BYTES
MAX_ROWS = 50_000  # rows kept of one capture: past it the agent is asked to stop
