"""Command line of the agent."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
from collections.abc import Sequence

from netcore.agent.client import Agent


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m netcore.agent", description="Mirror this host's networking to a Switchboard web app."
    )
    parser.add_argument(
        "--url", required=True, help="the web app's agent socket, e.g. ws://127.0.0.1:8000/ws/agent/"
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("SWITCHBOARD_AGENT_TOKEN"),
        help="host token (or SWITCHBOARD_AGENT_TOKEN, which keeps it out of `ps`)",
    )
    parser.add_argument("--token-file", help="read the host token from this file")
    parser.add_argument("--no-processes", action="store_true", help="skip namespaces held only by processes")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    token = args.token
    if args.token_file:
        with open(args.token_file) as fh:
            token = fh.read().strip()
    if not token:
        parser.error("a host token is needed: --token, --token-file or SWITCHBOARD_AGENT_TOKEN")
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s agent %(levelname)s %(message)s",
    )
    agent = Agent(url=args.url, token=token, processes=not args.no_processes)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(agent.run())
    return 0
