"""The hosts page: every host with its agent's presence; admins create, rotate and revoke tokens."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_http_methods

from webapp.accounts.selectors import user_can_manage
from webapp.api_errors import status_for
from webapp.errors import DomainError
from webapp.hosts.forms import HostActionForm
from webapp.hosts.selectors import host_get, host_list
from webapp.hosts.services import host_create, host_revoke, host_token_rotate


def _run(request: HttpRequest, *, action: str, name: str) -> tuple[str, str | None]:
    """Do one form action; returns (host name, new token or None)."""
    if action == "create":
        host, token = host_create(name=name)
        messages.success(request, f"Created host {host.name}.")
        return host.name, token
    host = host_get(name=name)
    if action == "rotate":
        token = host_token_rotate(host=host)
        messages.success(request, f"Issued a new token for host {host.name}; the old one no longer works.")
        return host.name, token
    host_revoke(host=host)
    messages.success(request, f"Revoked the token of host {host.name}.")
    return host.name, None


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def host_list_view(request: HttpRequest) -> HttpResponse:
    """GET lists hosts; POST (admins) runs create/rotate/revoke and shows a new token once."""
    can_manage = user_can_manage(request.user)
    form, new_token, new_token_host, status = HostActionForm(), None, None, 200
    if request.method == "POST":
        if not can_manage:
            raise PermissionDenied("Only admins may manage hosts.")
        form = HostActionForm(request.POST)
        if form.is_valid():
            try:
                new_token_host, new_token = _run(request, **form.cleaned_data)
                form = HostActionForm()
            except DomainError as err:
                form.add_error(err.field if err.field in form.fields else None, err.message)
                status = status_for(err)
        else:
            status = 400
    context = {
        "hosts": host_list(),
        "can_manage": can_manage,
        "form": form,
        "new_token": new_token,
        "new_token_host": new_token_host if new_token else None,
    }
    return render(request, "hosts/host_list.html", context, status=status)
