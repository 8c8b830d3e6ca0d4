"""The API tokens page: a user's own tokens (every user's, for an admin), made and revoked here."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_http_methods

from webapp.accounts.forms import TokenCreateForm, TokenRevokeForm
from webapp.accounts.selectors import token_list, user_can_manage
from webapp.accounts.services import token_create, token_revoke
from webapp.api_errors import status_for
from webapp.errors import DomainError


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def token_list_view(request: HttpRequest) -> HttpResponse:
    """GET lists tokens; POST action=create makes the user a token and shows it once, action=revoke
    revokes one of the user's (an admin's: anyone's)."""
    form, new_token, status = TokenCreateForm(), None, 200
    if request.method == "POST" and request.POST.get("action") == "revoke":
        revoke = TokenRevokeForm(request.POST)
        if not revoke.is_valid():
            return HttpResponse("Say which token to revoke.", status=400)
        token = get_object_or_404(token_list(user=request.user), pk=revoke.cleaned_data["token"])
        try:
            token_revoke(token=token, user=request.user)
            messages.success(request, f"Revoked token {token.prefix}… ({token.name}).")
        except DomainError as err:
            messages.error(request, err.message)
            status = status_for(err)
    elif request.method == "POST":
        if request.POST.get("action") != "create":
            return HttpResponse("Say what to do: action=create or action=revoke.", status=400)
        form = TokenCreateForm(request.POST)
        if form.is_valid():
            try:
                new_token = token_create(
                    owner=request.user,
                    name=form.cleaned_data["name"],
                    expires_in=form.expires_in(),
                    user=request.user,
                )
                form = TokenCreateForm()
            except DomainError as err:
                form.add_error(err.field if err.field in form.fields else None, err.message)
                status = status_for(err)
        else:
            status = 400
    context = {
        "tokens": token_list(user=request.user),
        "all_users": user_can_manage(request.user),
        "form": form,
        "new_token": new_token and new_token[1],
        "new_token_row": new_token and new_token[0],
    }
    return render(request, "accounts/tokens.html", context, status=status)
