"""python manage.py adduser NAME --role viewer|operator|admin [--password P] [--new-token]"""

from __future__ import annotations

import secrets
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.accounts.models import Role
from webapp.accounts.selectors import user_exists
from webapp.accounts.services import token_create, user_save
from webapp.errors import DomainError


class Command(BaseCommand):
    help = (
        "Create or update a user with exactly one role. A new user (or --new-token) gets an API token, "
        "printed labelled with the token alone on the last line: it is shown only this once. A new user "
        "without --password gets a generated one, printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name")
        parser.add_argument("--role", required=True, choices=Role.values)
        parser.add_argument("--password", help="set this password (default: keep it; new users get one)")
        parser.add_argument("--new-token", action="store_true", help="also make an existing user a new token")

    def handle(
        self, *args: Any, name: str, role: str, password: str | None, new_token: bool, **options: Any
    ) -> None:
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
        if created or new_token:
            _, key = token_create(owner=user, name="adduser")
            self.stdout.write(
                f"API token for {user.username}, shown only now (send it as `Authorization: Bearer <token>`):"
            )
            self.stdout.write(key)
