"""Reads about users: roles and API tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from rest_framework.authtoken.models import Token

from webapp.accounts.models import Role


def user_has_role(user: AbstractBaseUser | AnonymousUser, *roles: Role) -> bool:
    """True if the user is active and a superuser or in one of the role groups."""
    if not (user.is_authenticated and user.is_active):
        return False
    return user.is_superuser or user.groups.filter(name__in=roles).exists()


def user_can_operate(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Operators and admins may plan, apply and destroy topologies."""
    return user_has_role(user, Role.OPERATOR, Role.ADMIN)


def user_can_manage(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Admins may create, rotate and revoke host tokens."""
    return user_has_role(user, Role.ADMIN)


def user_for_token(*, token: str) -> AbstractBaseUser | AnonymousUser:
    """The active user owning a DRF API token, else AnonymousUser."""
    found = Token.objects.select_related("user").filter(key=token).first()
    if found is None or not found.user.is_active:
        return AnonymousUser()
    return found.user


def user_exists(*, username: str) -> bool:
    """True if a user of that name exists."""
    return get_user_model().objects.filter(username=username.strip()).exists()
