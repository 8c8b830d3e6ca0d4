"""python manage.py apitoken create USER [--name N] [--expires-days D] | list [USER] | revoke TOKEN"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser

from webapp.accounts.models import ApiToken
from webapp.accounts.selectors import token_find
from webapp.accounts.services import token_create, token_revoke
from webapp.errors import DomainError


class Command(BaseCommand):
    help = (
        "Users' API tokens. `create` prints a new token, alone on the last line (shown only this once); "
        "`list` shows tokens by their first characters; `revoke` takes a token's id, first characters "
        "or the whole token."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        actions = parser.add_subparsers(dest="action", required=True)
        create = actions.add_parser("create", help="make a user a new token")
        create.add_argument("username")
        create.add_argument("--name", default="command line", help="what the token is for")
        create.add_argument("--expires-days", type=int, help="days until it expires (default: never)")
        listing = actions.add_parser("list", help="list tokens (of one user)")
        listing.add_argument("username", nargs="?")
        revoke = actions.add_parser("revoke", help="revoke a token")
        revoke.add_argument("token", help="its id, its first characters (as listed) or the token")

    def handle(self, *args: Any, action: str, **options: Any) -> None:
        try:
            getattr(self, f"_{action}")(**options)
        except DomainError as err:
            raise CommandError(err.message) from err

    def _create(self, *, username: str, name: str, expires_days: int | None, **options: Any) -> None:
        owner = _user(username)
        expires = timedelta(days=expires_days) if expires_days is not None else None
        token, key = token_create(owner=owner, name=name, expires_in=expires)
        until = f"until {token.expires_at:%Y-%m-%d %H:%M} UTC" if token.expires_at else "without expiry"
        self.stdout.write(f"API token {token.prefix}… for {owner.get_username()}, {until}, shown only now:")
        self.stdout.write(key)

    def _list(self, *, username: str | None, **options: Any) -> None:
        tokens = ApiToken.objects.select_related("user")
        if username:
            tokens = tokens.filter(user=_user(username))
        for token in tokens:
            used = f"{token.last_used:%Y-%m-%d %H:%M}" if token.last_used else "never used"
            expires = f"{token.expires_at:%Y-%m-%d %H:%M}" if token.expires_at else "no expiry"
            self.stdout.write(
                f"{token.pk:>5}  {token.prefix + '…':<14} {token.user.get_username():<16} {token.status:<8} "
                f"{expires:<16} {used:<16} {token.name}"
            )

    def _revoke(self, *, token: str, **options: Any) -> None:
        found = _token(token)
        token_revoke(token=found)
        self.stdout.write(f"revoked token {found.prefix}… of {found.user.get_username()} ({found.name})")


def _user(username: str) -> Any:
    try:
        return get_user_model().objects.get(username=username)
    except get_user_model().DoesNotExist:
        raise CommandError(f"no user named {username!r}") from None


def _token(text: str) -> ApiToken:
    """The token row that `text` names: an id, its first characters as listed, or the whole token."""
    text = text.strip().rstrip("…")
    if text.isdigit():
        found = list(ApiToken.objects.select_related("user").filter(pk=int(text)))
    elif whole := token_find(key=text):
        found = [whole]
    else:
        found = list(ApiToken.objects.select_related("user").filter(prefix=text))
    if not found:
        raise CommandError(f"no token {text!r}: `manage.py apitoken list` shows them")
    if len(found) > 1:
        raise CommandError(f"{len(found)} tokens start with {text!r}: give its id (`apitoken list`)")
    return found[0]
