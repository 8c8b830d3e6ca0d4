from django.apps import AppConfig


class AccountsConfig(AppConfig):
    """Users, roles (Django groups viewer/operator/admin) and API tokens."""

    name = "webapp.accounts"
    label = "accounts"

    def ready(self) -> None:
        from axes.signals import user_locked_out
        from django.contrib.auth.signals import user_logged_in

        from webapp.accounts import lockout

        # Lockouts go to the audit log; a login clears its own earlier failures (webapp.accounts.lockout)
        user_locked_out.connect(lockout.lockout_audited, dispatch_uid="switchboard-lockout-audit")
        user_logged_in.connect(lockout.login_succeeded, dispatch_uid="switchboard-login-reset")
