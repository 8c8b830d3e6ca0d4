"""python manage.py adduser NAME --role viewer|operator|admin [--password P]"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.accounts.models import Role
from webapp.accounts.selectors import user_exists
from webapp.accounts.services import user_save, user_token
from webapp.errors import DomainError


class Command(BaseCommand):
    help = (
        "Create or update a user with exactly one role and print its API token, labelled, with the token "
        "alone on the last line. A new user without --password gets a generated one, printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", help="set this password (default: keep it; new users get one)")

    def handle(self, *args: Any, name: str, role: str, password: str | None, **options: Any) -> None:
        generated = None
        if password is None and not user_exists(username=name):
            generated = password = secrets.token_urlsafe(12)
        try:
            user, created = user_save(username=name, role=Role(role), password=password)
        except DomainError as err:
            raise CommandError(err.message) from err
        self.stdout.write(f"{'created' if created else 'updated'} user {user.username} ({role})")
        if generated:
            self.stdout.write(f"password for {user.username}: {generated}")
        self.stdout.write(f"API token for {user.username} (send it as `Authorization: Token <token>`):")
        self.stdout.write(user_token(user=user))
