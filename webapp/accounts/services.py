"""Writes about users: create/update with a role, API tokens, the first admin."""

from __future__ import annotations

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser, Group
from django.db import transaction
from rest_framework.authtoken.models import Token

from webapp.accounts.models import Role
from webapp.errors import InvalidInput

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


def user_token(*, user: AbstractUser) -> str:
    """The user's API token, created on first use."""
    token, _ = Token.objects.get_or_create(user=user)
    return token.key


def admin_ensure() -> str | None:
    """If no superuser exists, make user "admin" one with a new password and return it; else None."""
    if get_user_model().objects.filter(is_superuser=True, is_active=True).exists():
        return None
    password = secrets.token_urlsafe(12)
    user, _ = user_save(username=ADMIN_USERNAME, role=Role.ADMIN, password=password)
    user_token(user=user)
    return password
