"""python manage.py hosttoken NAME [--rotate | --revoke]"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.errors import Conflict, DomainError
from webapp.hosts.selectors import host_get
from webapp.hosts.services import host_create, host_revoke, host_token_rotate


class Command(BaseCommand):
    help = (
        "Create a host and print its agent token on the last line (shown once); "
        "--rotate issues a new token for an existing host, --revoke disables it."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        what = parser.add_mutually_exclusive_group()
        what.add_argument("--rotate", action="store_true", help="new token for an existing host")
        what.add_argument("--revoke", action="store_true", help="revoke the host's token and disconnect it")

    def handle(self, *args: Any, name: str, rotate: bool, revoke: bool, **options: Any) -> None:
        try:
            if revoke:
                host_revoke(host=host_get(name=name))
                self.stdout.write(f"revoked host {name}")
                return
            if rotate:
                token = host_token_rotate(host=host_get(name=name))
                self.stdout.write(f"new token for host {name} (shown once):")
            else:
                _, token = host_create(name=name)
                self.stdout.write(f"created host {name}; its agent token (shown once):")
        except DomainError as err:
            hint = " (use --rotate for a new token)" if isinstance(err, Conflict) else ""
            raise CommandError(err.message + hint) from err
        self.stdout.write(token)
