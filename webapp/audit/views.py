"""The audit page: the log of every change, filtered, for operators and admins (it names people);
for admins also the logins locked out now, each with an Unlock button."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST, require_safe
from rest_framework.exceptions import ValidationError

from webapp.accounts.lockout import lockout_reset, lockouts_current
from webapp.accounts.selectors import user_can_manage, user_can_operate
from webapp.audit.api.views import audit_filtered
from webapp.audit.selectors import ACTIONS
from webapp.errors import InvalidInput

#: The page shows this many of the newest matching entries; the export holds them all.
SHOWN = 200
FILTERS = ("user", "action", "host", "object", "since", "until")


@login_required
@require_safe
def audit_view(request: HttpRequest) -> HttpResponse:
    if not user_can_operate(request.user):
        raise PermissionDenied("Only operators and admins may read the audit log.")
    given = {key: request.GET[key] for key in FILTERS if request.GET.get(key)}
    errors: dict[str, list[str]] = {}
    entries: list = []
    total = 0
    try:
        found, _ = audit_filtered(given)
        total = found.count()
        entries = list(found[:SHOWN])
    except ValidationError as err:
        errors = {field: [str(m) for m in messages] for field, messages in err.detail.items()}
    export_url = reverse("api-audit-list") + "?" + urlencode({**given, "export": "true"})
    context = {
        "entries": entries,
        "total": total,
        "shown": len(entries),
        "filters": given,
        "errors": errors,
        "actions": ACTIONS,
        "export_url": export_url,
        "lockouts": lockouts_current() if user_can_manage(request.user) else None,
    }
    return render(request, "audit/audit_list.html", context)


@login_required
@require_POST
def lockout_unlock_view(request: HttpRequest) -> HttpResponse:
    """Unlock a locked-out account (`username`) or address (`ip`): admins only, audited."""
    if not user_can_manage(request.user):
        raise PermissionDenied("Only admins may unlock logins.")
    username, ip = request.POST.get("username", ""), request.POST.get("ip", "")
    try:
        lockout_reset(username=username, ip=ip, user=request.user)
    except InvalidInput as err:
        messages.error(request, err.message)
    else:
        what = f"account {username.strip()}" if username.strip() else f"address {ip.strip()}"
        messages.success(request, f"Unlocked {what}.")
    return redirect("audit:list")
