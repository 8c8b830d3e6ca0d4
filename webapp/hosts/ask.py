"""Questions a request asks a host's agent and waits for (the catalog's DNS check, explain): sent
through the channel layer to the agent's connection, whichever web worker holds it, and answered on
a channel of the request's own, so only the waiting coroutine holds anything."""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

from channels.layers import get_channel_layer

from webapp import layer
from webapp.errors import HostOffline

#: the frame the agent is sent for each kind of question, and the one it answers with
QUESTIONS = {"resolve": "resolved", "explain": "explained"}


class AgentFailed(Exception):
    """The agent answered that it could not do it: its error ({error, message, object, errno})."""

    def __init__(self, error: dict[str, Any]) -> None:
        super().__init__(error.get("message") or "the agent failed without a message")
        self.error = error


async def agent_ask(*, host_id: int, kind: str, request: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Ask the host's agent `kind` (a key of QUESTIONS) and wait for its answer: the reply frame's
    fields but `type` and `id`. HostOffline when it does not answer in `timeout` seconds, AgentFailed
    when it answers that it failed."""
    channels = get_channel_layer()
    channel = await channels.new_channel()
    message = {
        "type": "ask.request",
        "kind": kind,
        "id": secrets.token_hex(8),
        "reply": channel,
        "request": request,
    }
    await channels.group_send(layer.agent_group(host_id), message)
    try:
        async with asyncio.timeout(timeout):
            reply = await channels.receive(channel)
    except TimeoutError:
        raise HostOffline("the host's agent did not answer: is it connected (Hosts page)?") from None
    if not reply["ok"]:
        error = reply.get("error")
        raise AgentFailed(error if isinstance(error, dict) else {})
    return reply
