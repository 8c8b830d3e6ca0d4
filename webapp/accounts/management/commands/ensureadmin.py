"""python manage.py ensureadmin [--url URL]: the first admin, for `make run`."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from webapp.accounts.services import ADMIN_USERNAME, admin_ensure


class Command(BaseCommand):
    help = "If no superuser exists, create user 'admin' with a generated password and print how to log in."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="where the web app is served")

    def handle(self, *args: Any, url: str, **options: Any) -> None:
        password = admin_ensure()
        if password is None:
            return
        login = url.rstrip("/") + "/accounts/login/"
        self.stdout.write(f"Created the first admin. Log in at {login}")
        self.stdout.write(f"  user:     {ADMIN_USERNAME}")
        self.stdout.write(f"  password: {password}")
