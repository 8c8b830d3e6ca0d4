"""python manage.py ensureadmin [--url URL] [--password-file PATH [--hide-password]] [--reset-password]:
the first admin."""

from __future__ import annotations

import os
import pwd
import secrets
from pathlib import Path
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.accounts.models import Role
from webapp.accounts.services import ADMIN_USERNAME, admin_ensure, user_save


class Command(BaseCommand):
    help = (
        f"If no superuser exists, create user '{ADMIN_USERNAME}' with a generated password and print how to "
        f"log in (the password on the last line). --reset-password gives '{ADMIN_USERNAME}' a new generated "
        "password (and makes it an admin again). --password-file PATH keeps a generated password in PATH "
        "(mode 0600) and prints it again on later runs for as long as it still works; with --hide-password "
        "it prints where the password is instead of the password (for output that may end up in a log)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--url", default="http://127.0.0.1:8000/", help="where the web app is served")
        parser.add_argument("--password-file", type=Path, help="keep the generated password here (mode 0600)")
        parser.add_argument(
            "--reset-password", action="store_true", help=f"give '{ADMIN_USERNAME}' a new generated password"
        )
        parser.add_argument(
            "--hide-password",
            action="store_true",
            help="print where the password is kept (--password-file) instead of the password itself",
        )

    def handle(
        self,
        *args: Any,
        url: str,
        password_file: Path | None,
        reset_password: bool,
        hide_password: bool,
        **options: Any,
    ) -> None:
        if hide_password and not password_file:
            raise CommandError("--hide-password needs --password-file: the password would be shown nowhere")
        saved = f" (saved in {password_file}, mode 0600)" if password_file else ""
        if reset_password:
            password = secrets.token_urlsafe(12)
            user_save(username=ADMIN_USERNAME, role=Role.ADMIN, password=password)
            headline = f"New password for {ADMIN_USERNAME}{saved}."
        elif password := admin_ensure():
            headline = f"Created the first admin{saved}."
        elif password_file and (password := _still_valid(password_file)):
            headline = f"The first admin's generated password (from {password_file}) still works."
        else:
            if password_file and password_file.exists():
                self.stdout.write(f"The password in {password_file} no longer logs in as {ADMIN_USERNAME}.")
            return
        if password_file:
            _save(password_file, password)
        self.stdout.write(headline)
        self.stdout.write(f"Log in at {url.rstrip('/')}/accounts/login/")
        self.stdout.write(f"  user:     {ADMIN_USERNAME}")
        if password_file and hide_password:
            owner = _owner(password_file)
            self.stdout.write(f"  password: in {password_file} (mode 0600, readable by {owner} only)")
        else:
            self.stdout.write(f"  password: {password}")


def _still_valid(path: Path) -> str | None:
    """The password kept in `path` if it still logs the admin in, else None."""
    try:
        password = path.read_text().strip()
    except FileNotFoundError:
        return None
    # the user's own check, not authenticate(): there is no request here for the login backends (the
    # lockout one refuses to answer without one), and checking a kept file is no login attempt
    admin = get_user_model().objects.filter(username=ADMIN_USERNAME, is_active=True).first()
    if password and admin is not None and admin.check_password(password):
        return password
    return None


def _owner(path: Path) -> str:
    """The name of the user who owns `path` (its uid if it has no name)."""
    uid = path.stat().st_uid
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _save(path: Path, password: str) -> None:
    """Write the password to `path`, readable by its owner only (also when the file was there)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as fh:
        os.fchmod(fd, 0o600)
        fh.write(password + "\n")
