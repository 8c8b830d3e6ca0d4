"""python manage.py hosttoken NAME [--rotate | --revoke] [--underlay ADDRESS]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.errors import Conflict, DomainError
from webapp.hosts.selectors import host_exists, host_get
from webapp.hosts.services import host_create, host_revoke, host_token_rotate, host_underlay_set


class Command(BaseCommand):
    help = (
        "Create a host and print its agent token on the last line (shown once); "
        "--rotate issues a new token for an existing host, --revoke disables it; --underlay sets the host's "
        "address on the network between hosts (its VTEP in networks spanning hosts; '' clears it)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--rotate", action="store_true", help="new token for an existing host")
        what.add_argument("--revoke", action="store_true", help="revoke the host's token and disconnect it")
        parser.add_argument("--underlay", help="the host's underlay address (its VTEP)")

    def handle(
        self, *args: Any, name: str, rotate: bool, revoke: bool, underlay: str | None, **options: Any
    ) -> None:
        token = None
        try:
            if revoke:
                host = host_get(name=name)
                host_revoke(host=host)
                self.stdout.write(f"revoked host {name}")
            elif rotate:
                host = host_get(name=name)
                token = host_token_rotate(host=host)
            elif underlay is not None and host_exists(name=name):
                host = host_get(name=name)  # only the underlay changes
            else:
                host, token = host_create(name=name)
            if underlay is not None:
                host_underlay_set(host=host, address=underlay)
                self.stdout.write(f"host {name}: underlay address {host.underlay or 'cleared'}")
        except DomainError as err:
            hint = " (use --rotate for a new token)" if isinstance(err, Conflict) else ""
            raise CommandError(err.message + hint) from err
        if token is not None:
            said = f"new token for host {name}" if rotate else f"created host {name}; its agent token"
            self.stdout.write(f"{said} (shown once):")
            self.stdout.write(token)
