from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, roles (Django groups viewer/operator/admin) and API tokens."""

    name = "webapp.accounts"
    label = "accounts"
