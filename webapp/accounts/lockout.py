"""Login throttling with django-axes: who is locked out, the 429 answer, the audit of lockouts and
unlocks, and the two calls token authentication makes (`token_failed`, `token_locked_out`).

Failed logins (the login page, the Django admin's) and failed user API tokens are counted in the
database by axes (settings "Login throttling"): AXES_FAILURE_LIMIT failures for one account, or from
one address, within AXES_COOLOFF_TIME lock that account or that address until AXES_COOLOFF_TIME
after the failure that locked it. Several web workers share the count through the database.
"""

from __future__ import annotations

import datetime
import ipaddress
import math
from dataclasses import dataclass
from typing import Any

from axes.handlers.proxy import AxesProxyHandler
from axes.helpers import get_client_username, get_cool_off, get_credentials, get_failure_limit
from axes.models import AccessAttempt, AccessBase
from django.conf import settings
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Max, Sum
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.utils import timezone

from webapp.audit.services import Source, audit_record
from webapp.errors import InvalidInput

LOCKED_OUT = "login.locked_out"
UNLOCK = "login.unlock"

# Set on a request by token_failed: its lockout is recorded as coming from the API
_TOKEN_FAILURE = "switchboard_token_failure"


@dataclass(frozen=True)
class Lockout:
    """One account (`username`) or one address (`ip`) locked out now; the other field is empty."""

    username: str
    ip: str
    failures: int
    until: datetime.datetime | None  # None: until an admin unlocks it (no AXES_COOLOFF_TIME)


# -- axes settings' callables -------------------------------------------------------------------


def client_ip(request: HttpRequest) -> str | None:
    """AXES_CLIENT_IP_CALLABLE: REMOTE_ADDR or, behind settings.LOGIN_TRUSTED_PROXIES reverse proxies,
    the X-Forwarded-For entry the outermost of them appended (counted from the right: entries to
    its left are whatever the client sent). None if that is not an IP address."""
    address = request.META.get("REMOTE_ADDR", "")
    proxies = getattr(settings, "LOGIN_TRUSTED_PROXIES", 0)
    if proxies:
        forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if a.strip()]
        if len(forwarded) >= proxies:
            address = forwarded[-proxies]
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return None


def lockout_parameters(
    request_or_attempt: HttpRequest | AccessBase, credentials: dict | None = None
) -> list[str]:
    """AXES_LOCKOUT_PARAMETERS: lock per account and, separately, per address; an attempt without a
    user name (a token that matched no user) counts for its address only."""
    if isinstance(request_or_attempt, AccessBase):
        username = request_or_attempt.username
    else:
        username = get_client_username(request_or_attempt, credentials)
    return ["username", "ip_address"] if username else ["ip_address"]


def lockout_response(
    request: HttpRequest, original_response: HttpResponse | None = None, credentials: Any = None
) -> HttpResponse:
    """AXES_LOCKOUT_CALLABLE: 429 with Retry-After; under /api/ JSON {"error": "TooManyRequests",
    "message"}, else the login page saying why and for how long.

    axes' async middleware passes the credentials second (as `original_response`): neither is relied
    on; the user name comes from what axes kept on the request, or the login form.
    """
    username, ip = _attempted(request)
    seconds = _seconds_left(username=username, ip=ip)
    message = lockout_message(username=username, ip=ip, seconds=seconds)
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"error": "TooManyRequests", "message": message}, status=429)
    else:
        form = AuthenticationForm(request, initial={"username": username})
        next_url = request.POST.get("next", "") or request.GET.get("next", "")
        context = {"form": form, "next": next_url, "lockout_message": message}
        response = render(request, "registration/login.html", context, status=429)
    if seconds is not None:
        response["Retry-After"] = str(seconds)
    return response


def lockout_message(*, username: str, ip: str | None, seconds: int | None) -> str:
    """What a locked-out person is told: why, for how long, and how an admin lifts it."""
    if seconds is None:
        when = "Ask an admin to unlock it"
    else:
        minutes = max(1, math.ceil(seconds / 60))
        when = f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, or ask an admin to unlock it"
    return (
        "Too many failed logins for this account or from this address. "
        f"{when} (on the audit page, or python manage.py axes_reset_username {username or 'NAME'}"
        f" / axes_reset_ip {ip or 'IP'})."
    )


def _attempted(request: HttpRequest) -> tuple[str, str | None]:
    """The user name tried (empty if none) and the client address of a request axes locked out."""
    credentials = getattr(request, "axes_credentials", None)
    username = credentials.get("username") if isinstance(credentials, dict) else None
    if username is None and not request.path.startswith("/api/"):
        username = request.POST.get("username")
    ip = getattr(request, "axes_ip_address", None) or client_ip(request)
    return str(username or ""), ip


def _seconds_left(*, username: str, ip: str | None) -> int | None:
    """Seconds until the lockouts of this account and address end (None: until an admin unlocks)."""
    cool_off = get_cool_off()
    if cool_off is None:
        return None
    ends = [lockout.until for lockout in _lockouts(username=username, ip=ip) if lockout.until is not None]
    left = (max(ends) - timezone.now()).total_seconds() if ends else cool_off.total_seconds()
    return max(1, math.ceil(left))


# -- reads: who is locked out -------------------------------------------------------------------


def lockouts_current() -> list[Lockout]:
    """Every account, then every address, locked out now, the most recent first."""
    return _lockouts()


def _lockouts(*, username: str | None = None, ip: str | None = None) -> list[Lockout]:
    """Lockouts now: of the account `username` and of the address `ip` when either is given, else all.

    `until` is when the last failure counted leaves the window: the latest the lockout ends (it may
    end sooner, when older failures leave it and fewer than the limit remain).
    """
    limit = get_failure_limit(None, None)
    cool_off = get_cool_off()
    attempts = AccessAttempt.objects.all()
    if cool_off is not None:
        attempts = attempts.filter(attempt_time__gte=timezone.now() - cool_off)
    found: list[Lockout] = []
    for field, value in (("username", username), ("ip_address", ip)):
        if username is not None or ip is not None:
            if not value:
                continue
            rows = attempts.filter(**{field: value})
        else:
            rows = attempts.exclude(**{f"{field}__isnull": True})
            if field == "username":
                rows = rows.exclude(username="")
        grouped = (
            rows.values(field)
            .annotate(failures=Sum("failures_since_start"), last=Max("attempt_time"))
            .filter(failures__gte=limit)
            .order_by("-last")
        )
        for row in grouped:
            found.append(
                Lockout(
                    username=row[field] if field == "username" else "",
                    ip=row[field] if field == "ip_address" else "",
                    failures=row["failures"],
                    until=row["last"] + cool_off if cool_off is not None else None,
                )
            )
    return found


# -- writes: the audit of lockouts, unlocks, a login's reset ------------------------------------


def lockout_audited(sender: Any, *, request: HttpRequest | None = None, **kwargs: Any) -> None:
    """axes' user_locked_out receiver: record a new lockout in the audit log.

    axes also sends the signal for every attempt refused during a lockout; those it did not count
    (axes_failures_since_start stays None), and only the failure that reached the limit is recorded.
    """
    failures = getattr(request, "axes_failures_since_start", None)
    if request is None or failures is None:
        return
    username = str(kwargs.get("username") or "")
    ip = str(kwargs.get("ip_address") or "")
    cool_off = get_cool_off(request)
    lasting = f" for {math.ceil(cool_off.total_seconds() / 60)} min" if cool_off is not None else ""
    token = getattr(request, _TOKEN_FAILURE, False)
    locks = _lockouts(username=username or None, ip=ip or None)
    locked = ["account"] if any(lock.username for lock in locks) else []
    locked += ["address"] if any(lock.ip for lock in locks) else []
    account = bool(username) and ("account" in locked or not locked)  # else the address is what locked
    audit_record(
        action=LOCKED_OUT,
        object_kind="user" if account else "address",
        name=username if account else ip,
        details={
            "username": username,
            "ip": ip,
            "locked": locked,
            "failures": failures,
            "via": "token" if token else "login",
        },
        source=Source.API if token or request.path.startswith("/api/") else Source.UI,
        error=f"locked out{lasting} after {failures} failed {'API tokens' if token else 'logins'}",
    )


def login_succeeded(
    sender: Any, *, request: HttpRequest | None = None, user: Any = None, **kwargs: Any
) -> None:
    """user_logged_in receiver: a successful login clears that account's failures from that address.

    Only those: clearing the address's or the account's every failure (axes' AXES_RESET_ON_SUCCESS)
    would let anyone with an account log in between guesses at another's password to reset the count.
    """
    if request is None or user is None or not settings.AXES_ENABLED:
        return
    ip = getattr(request, "axes_ip_address", None) or client_ip(request)
    AccessAttempt.objects.filter(username=user.get_username(), ip_address=ip).delete()


def lockout_reset(
    *, username: str = "", ip: str = "", user: AbstractBaseUser | AnonymousUser | None = None
) -> int:
    """Unlock one account (every failure for it) or one address (every failure from it), recorded in
    the audit log; returns the number of attempt records removed. Exactly one of the two is given."""
    username, ip = username.strip(), ip.strip()
    if bool(username) == bool(ip):
        raise InvalidInput("give either a user name or an address to unlock")
    if ip:
        try:
            ip = str(ipaddress.ip_address(ip))
        except ValueError:
            raise InvalidInput(f"{ip!r} is not an IP address", field="ip") from None
    # never both None: axes would then remove every attempt of everyone
    removed = AxesProxyHandler.reset_attempts(username=username or None, ip_address=ip or None)
    audit_record(
        action=UNLOCK,
        object_kind="user" if username else "address",
        name=username or ip,
        details={"username": username, "ip": ip, "attempts_removed": removed},
        user=user,
    )
    return removed


# -- token authentication -----------------------------------------------------------------------


def token_failed(request: HttpRequest) -> None:
    """Count a token that matched no user (a guess) as a failed login from the request's client
    address (the address only: a guess names no account).

    The failure that reaches the limit locks the address out and is audited;
    once locked out, further failures are not counted (the lockout is not extended). A DRF Request
    or a plain HttpRequest (RequestFactory's will do: REMOTE_ADDR is all it needs) is accepted. The
    request is marked so that, when it passes through AxesMiddleware, the answer becomes the 429.
    """
    if not settings.AXES_ENABLED:
        return
    http = _http_request(request)
    setattr(http, _TOKEN_FAILURE, True)
    credentials = get_credentials(None)
    if not AxesProxyHandler.is_allowed(http, credentials):
        http.axes_locked_out = True  # type: ignore[attr-defined]
        return
    AxesProxyHandler.user_login_failed(sender=token_failed, credentials=credentials, request=http)


def token_locked_out(request: HttpRequest) -> bool:
    """True when the request's client address is locked out now (refuse its token unchecked).

    Also marks the request, so that AxesMiddleware answers it with the 429 (JSON under /api/)
    whatever the view or authentication class answered.
    """
    if not settings.AXES_ENABLED:
        return False
    http = _http_request(request)
    locked = not AxesProxyHandler.is_allowed(http, get_credentials(None))
    if locked:
        http.axes_locked_out = True  # type: ignore[attr-defined]
    return locked


def _http_request(request: Any) -> HttpRequest:
    """The HttpRequest under a DRF Request (axes' middleware reads its marks from that one)."""
    return getattr(request, "_request", request)
