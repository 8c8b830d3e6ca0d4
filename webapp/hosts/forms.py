"""The hosts page's one form: create, rotate or revoke, by host name."""

from django import forms


class HostActionForm(forms.Form):
    action = forms.ChoiceField(
        choices=[("create", "Create"), ("rotate", "Rotate token"), ("revoke", "Revoke")]
    )
    name = forms.CharField(max_length=63, label="Host name")
