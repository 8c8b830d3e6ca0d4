"""Reads about users: roles and API tokens."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import QuerySet

from webapp.accounts.models import ApiToken, Role
from webapp.accounts.tokens import token_hash


def user_has_role(user: AbstractBaseUser | AnonymousUser, *roles: Role) -> bool:
    """True if the user is active and a superuser or in one of the role groups."""
    if not (user.is_authenticated and user.is_active):
        return False
    return user.is_superuser or user.groups.filter(name__in=roles).exists()


def user_role(user: AbstractBaseUser) -> str | None:
    """The role of an active user ("admin" for a superuser), or None (none, or deactivated).
    Reads the groups already fetched, when they were (prefetch_related)."""
    if not user.is_active:
        return None
    if user.is_superuser:
        return Role.ADMIN
    names = {group.name for group in user.groups.all()}
    return next((role for role in (Role.ADMIN, Role.OPERATOR, Role.VIEWER) if role in names), None)


def user_can_operate(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Operators and admins may plan, apply and destroy topologies."""
    return user_has_role(user, Role.OPERATOR, Role.ADMIN)


def user_can_manage(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Admins may create, rotate and revoke host tokens."""
    return user_has_role(user, Role.ADMIN)


def token_find(*, key: str) -> ApiToken | None:
    """The API token row of a token as sent (any status), with its user; None when unknown."""
    return ApiToken.objects.select_related("user").filter(key_hash=token_hash(key)).first()


def token_refusal(token: ApiToken | None) -> str | None:
    """Why a token does not sign its user in (unknown, revoked, expired, user deactivated), or None."""
    if token is None:
        return "invalid token"
    if token.revoked_at is not None:
        return f"token {token.prefix}… was revoked: make a new one on the API tokens page"
    if token.expired:
        return f"token {token.prefix}… expired on {token.expires_at:%Y-%m-%d %H:%M} UTC: make a new one"
    if not token.user.is_active:
        return "the token's user is deactivated"
    return None


def token_list(*, user: AbstractBaseUser) -> QuerySet[ApiToken]:
    """The tokens `user` may see: their own, and every user's for an admin."""
    tokens = ApiToken.objects.select_related("user")
    return tokens if user_can_manage(user) else tokens.filter(user=user)


def user_exists(*, username: str) -> bool:
    """True if a user of that name exists."""
    return get_user_model().objects.filter(username=username.strip()).exists()
