"""The hosts page: every host with its agent's presence; admins create, rotate and revoke tokens.

The page also offers the agent itself (the zipapp `make agent` builds) and its systemd unit for
download, with the commands that install them on a host.
"""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_safe

from webapp.accounts.selectors import user_can_manage
from webapp.accounts.tokens import authorization_token
from webapp.api_errors import status_for
from webapp.errors import DomainError
from webapp.hosts import selectors
from webapp.hosts.forms import HostActionForm
from webapp.hosts.selectors import AgentArchive, agent_archive, host_get, host_list
from webapp.hosts.services import host_authenticate, host_create, host_revoke, host_token_rotate

NOT_BUILT = "The agent has not been built on this server: run `make agent` in the Switchboard checkout."


def install_command(*, base_url: str, ws_url: str, host: str, token: str, archive: AgentArchive) -> str:
    """The shell commands that install and start one host's agent (templates/hosts/agent_install.sh).

    base_url is the dashboard as the host reaches it (http://NAME:PORT); the host downloads the
    agent and its unit from there with its own token.
    """
    context = {
        "download_url": base_url + reverse("hosts:agent-download"),
        "unit_url": base_url + reverse("hosts:agent-unit"),
        "ws_url": ws_url,
        "host": host,
        "token": token,
        "archive": archive,
    }
    return render_to_string("hosts/agent_install.sh", context).strip() + "\n"


def _downloader(request: HttpRequest) -> HttpResponse | None:
    """None when the request may download the agent (a logged-in user, or a host's own token)."""
    if request.user.is_authenticated:
        return None
    header = request.headers.get("Authorization", "")
    if not header.strip():
        return redirect_to_login(request.get_full_path())
    token = authorization_token(header)
    if token is None or host_authenticate(token=token) is None:
        raise PermissionDenied("Unknown or revoked host token.")
    return None


@require_safe
def agent_download_view(request: HttpRequest) -> HttpResponse:
    """The agent's zipapp, for a logged-in user or (`Authorization: Token|Bearer <host token>`) a host."""
    if refused := _downloader(request):
        return refused
    if agent_archive() is None:
        raise Http404(NOT_BUILT)
    pyz = selectors.AGENT_PYZ
    return FileResponse(pyz.open("rb"), as_attachment=True, filename=pyz.name, content_type="application/zip")


@require_safe
def agent_unit_view(request: HttpRequest) -> HttpResponse:
    """The agent's systemd unit (deploy/switchboard-agent.service), with the same access as the agent."""
    if refused := _downloader(request):
        return refused
    unit = selectors.AGENT_UNIT
    return FileResponse(unit.open("rb"), as_attachment=True, filename=unit.name, content_type="text/plain")


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
    archive = agent_archive()
    context = {
        "hosts": host_list(),
        "can_manage": can_manage,
        "form": form,
        "new_token": new_token,
        "new_token_host": new_token_host if new_token else None,
        "agent": archive,
        "ws_url": _ws_url(request),
        "install_command": None,
        "agent_not_built": NOT_BUILT,
    }
    if new_token and archive:
        context["install_command"] = install_command(
            base_url=f"{request.scheme}://{request.get_host()}",
            ws_url=_ws_url(request),
            host=new_token_host,
            token=new_token,
            archive=archive,
        )
    return render(request, "hosts/host_list.html", context, status=status)


def _ws_url(request: HttpRequest) -> str:
    """The agent socket's URL as seen by whoever is looking at the page."""
    return f"{'wss' if request.is_secure() else 'ws'}://{request.get_host()}/ws/agent/"
