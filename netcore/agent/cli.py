"""Command line of the agent: `python3 -m netcore.agent` or `python3 switchboard-agent.pyz`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import socket
import stat
import sys
from collections.abc import Sequence

from netcore import netns
from netcore.agent.client import Agent
from netcore.agent.traffic_watch import INTERVAL as TRAFFIC_INTERVAL

log = logging.getLogger("netcore.agent")


def _prog() -> str:
    """How the agent was started, for usage messages (the zipapp's name, or `python3 -m netcore.agent`)."""
    name = os.path.basename(sys.argv[0])
    return "python3 -m netcore.agent" if name in ("__main__.py", "") else name


def _read_token(parser: argparse.ArgumentParser, path: str) -> str:
    """The token in `path`; warns when others may read it (it should be mode 0600, owned by root)."""
    try:
        with open(path) as fh:
            mode = os.fstat(fh.fileno()).st_mode
            token = fh.read().strip()
    except OSError as exc:
        parser.error(f"cannot read the token file: {exc}")
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("token file %s is readable by others (mode %04o): chmod 600 %s", path, mode & 0o777, path)
    return token


def _run(agent: Agent) -> None:
    """Run the agent until SIGTERM or SIGINT, then stop it cleanly (the live model is closed)."""

    async def until_stopped() -> None:
        task = asyncio.current_task()
        assert task is not None
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        await agent.run()

    with contextlib.suppress(KeyboardInterrupt, asyncio.CancelledError):
        asyncio.run(until_stopped())
    log.info("stopped")


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, run the agent; 0 when stopped by a signal, 2 on bad usage."""
    parser = argparse.ArgumentParser(
        prog=_prog(),
        description="Mirror this host's networking to a Switchboard web app (run as root).",
        epilog="The token is best kept out of `ps`: use --token-file (mode 0600) or SWITCHBOARD_AGENT_TOKEN.",
    )
    parser.add_argument(
        "--url",
        default=os.environ.get("SWITCHBOARD_AGENT_URL"),
        help="the web app's agent socket, e.g. ws://dashboard:8000/ws/agent/ (or SWITCHBOARD_AGENT_URL)",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get("SWITCHBOARD_AGENT_TOKEN"),
        help="host token (visible in `ps`: prefer --token-file or SWITCHBOARD_AGENT_TOKEN)",
    )
    parser.add_argument("--token-file", help="read the host token from this file (mode 0600)")
    parser.add_argument("--no-processes", action="store_true", help="skip namespaces held only by processes")
    parser.add_argument("--no-docker", action="store_true", help="do not look for a Docker engine")
    parser.add_argument(
        "--traffic-interval",
        type=float,
        default=TRAFFIC_INTERVAL,
        metavar="SECONDS",
        help="read every namespace's conntrack table for traffic edges this often"
        f" (default {TRAFFIC_INTERVAL:g}; 0: never, and no namespace is armed)",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s agent %(levelname)s %(message)s",
    )
    if args.traffic_interval != 0 and not 0.1 <= args.traffic_interval <= 3600:
        parser.error(
            f"--traffic-interval must be 0 (off) or 0.1 to 3600 seconds, not {args.traffic_interval:g}"
        )
    if not args.url:
        parser.error("the web app's URL is needed: --url or SWITCHBOARD_AGENT_URL")
    token = _read_token(parser, args.token_file) if args.token_file else args.token
    if not token:
        parser.error("a host token is needed: --token-file, SWITCHBOARD_AGENT_TOKEN or --token")
    try:
        netns.mark_agent_host(socket.gethostname())
    except OSError as exc:  # other agents on the machine may then report this host's processes too
        log.warning("could not mark this host for other agents (%s): %s", netns.AGENT_MARK, exc.strerror)
    agent = Agent(
        url=args.url,
        token=token,
        processes=not args.no_processes,
        docker=not args.no_docker,
        traffic_interval=args.traffic_interval,
    )
    _run(agent)
    return 0
