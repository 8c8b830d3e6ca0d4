"""Writes about users: create/update with a role, API tokens, the first admin."""

from __future__ import annotations

import secrets
from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AbstractUser, AnonymousUser, Group
from django.db import transaction
from django.utils import timezone

from webapp.accounts.models import ApiToken, Role
from webapp.accounts.tokens import SHOWN_PREFIX, token_hash, token_new
from webapp.audit.services import audit_record
from webapp.errors import Conflict, InvalidInput

ADMIN_USERNAME = "admin"


@transaction.atomic
def user_save(*, username: str, role: Role, password: str | None = None) -> tuple[AbstractUser, bool]:
    """Create or update a user and put it in exactly the group of `role`; returns (user, created).

    Admins are also staff and superuser; other roles are neither. `password` None keeps the
    current password (a new user then has none usable).
    """
    if role not in Role.values:
        raise InvalidInput(f"unknown role {role!r} (use {', '.join(Role.values)})", field="role")
    username = username.strip()
    if not username:
        raise InvalidInput("a user name is required", field="username")
    user, created = get_user_model().objects.get_or_create(username=username)
    if password is not None:
        user.set_password(password)
    elif created:
        user.set_unusable_password()
    user.is_staff = user.is_superuser = role == Role.ADMIN
    user.save()
    group, _ = Group.objects.get_or_create(name=role)
    user.groups.set([group])
    return user, created


TOKEN_NAME_MAX = ApiToken._meta.get_field("name").max_length
LAST_USED_EVERY = timedelta(minutes=1)  # last_used is written at most this often per token


def _token_audit(token: ApiToken, action: str, *, user: AbstractBaseUser | AnonymousUser | None) -> None:
    audit_record(
        action=action,
        object_kind="token",
        name=f"{token.prefix}…",
        details={"owner": token.user.get_username(), "name": token.name},
        user=user,
    )


@transaction.atomic
def token_create(
    *,
    owner: AbstractBaseUser,
    name: str,
    expires_in: timedelta | None = None,
    user: AbstractBaseUser | AnonymousUser | None = None,
) -> tuple[ApiToken, str]:
    """Make `owner` a new API token; returns (token row, the token). Only the row is kept: show the
    token to its user now, it cannot be shown again. `expires_in` None: it does not expire."""
    name = name.strip()
    if not name:
        raise InvalidInput("say what the token is for (e.g. 'ci' or 'laptop')", field="name")
    if len(name) > TOKEN_NAME_MAX:
        raise InvalidInput(f"a token name has at most {TOKEN_NAME_MAX} characters", field="name")
    if expires_in is not None and expires_in <= timedelta(0):
        raise InvalidInput("a token's lifetime must be positive (or none: never expires)", field="expires")
    key = token_new()
    token = ApiToken.objects.create(
        user=owner,
        name=name,
        prefix=key[:SHOWN_PREFIX],
        key_hash=token_hash(key),
        expires_at=timezone.now() + expires_in if expires_in is not None else None,
    )
    _token_audit(token, "token.create", user=user)
    return token, key


@transaction.atomic
def token_revoke(*, token: ApiToken, user: AbstractBaseUser | AnonymousUser | None = None) -> None:
    """Revoke a token: requests with it get 401 at once, and sockets opened with it close within
    the socket identity check's interval (webapp.accounts.identity)."""
    if token.revoked_at is not None:
        raise Conflict(f"token {token.prefix}… is already revoked", field="token")
    token.revoked_at = timezone.now()
    token.save(update_fields=["revoked_at"])
    _token_audit(token, "token.revoke", user=user)


def token_used(*, token: ApiToken) -> None:
    """Note that a token was just used (at most once a minute per token: no write per request)."""
    now = timezone.now()
    if token.last_used is None or now - token.last_used >= LAST_USED_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used=now)
        token.last_used = now


def admin_ensure() -> str | None:
    """If no superuser exists, make user "admin" one with a new password and return it; else None."""
    if get_user_model().objects.filter(is_superuser=True, is_active=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    user_save(username=ADMIN_USERNAME, role=Role.ADMIN, password=password)
    return password
