"""Login, logout and password change (django.contrib.auth views) under /accounts/; password reset
too when a mail server is configured (settings.PASSWORD_RESET_ENABLED, read when this module is
imported), else its pages do not exist: a reset mail that cannot be sent helps no one."""

from django.conf import settings
from django.contrib.auth import urls as auth_urls

_ALWAYS = {"login", "logout", "password_change", "password_change_done"}

urlpatterns = [
    pattern
    for pattern in auth_urls.urlpatterns
    if pattern.name in _ALWAYS or settings.PASSWORD_RESET_ENABLED
]
