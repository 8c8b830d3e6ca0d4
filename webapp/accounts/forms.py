"""The API tokens page's forms: make a token (a name and a lifetime), revoke one (by id)."""

from __future__ import annotations

from datetime import timedelta

from django import forms

from webapp.accounts.models import ApiToken

LIFETIMES = {"7": 7, "30": 30, "90": 90, "365": 365, "never": None}  # days


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=ApiToken._meta.get_field("name").max_length, label="What it is for")
    expires = forms.ChoiceField(
        choices=[(key, f"{days} days" if days else "never") for key, days in LIFETIMES.items()],
        initial="90",
        label="Expires after",
    )

    def expires_in(self) -> timedelta | None:
        days = LIFETIMES[self.cleaned_data["expires"]]
        return timedelta(days=days) if days else None


class TokenRevokeForm(forms.Form):
    token = forms.IntegerField(min_value=1)
