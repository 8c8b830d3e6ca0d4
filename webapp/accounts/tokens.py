"""User API tokens as text: their form, their hash, and how requests carry them.

A token is `sbu_` and 43 URL-safe characters (256 random bits). Only its SHA-256 is stored: a
fast hash is enough for a random secret of that size, and lookups by it are constant-time.
"""

from __future__ import annotations

import hashlib
import secrets

TOKEN_PREFIX = "sbu_"
SHOWN_PREFIX = 12  # characters kept in clear to recognise a token: "sbu_" and 8 of its own
SCHEMES = ("token", "bearer")  # `Authorization: Token <t>` and the OAuth-style `Bearer <t>`


def token_new() -> str:
    """A new user API token (shown once, never stored)."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """SHA-256 hex of a token: the only form stored."""
    return hashlib.sha256(token.encode()).hexdigest()


def authorization_token(header: str | None) -> str | None:
    """The token of an `Authorization: Token <t>` or `Bearer <t>` header value, else None."""
    scheme, _, token = (header or "").strip().partition(" ")
    token = token.strip()
    if scheme.lower() in SCHEMES and token:
        return token
    return None
