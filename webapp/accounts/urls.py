"""Login, logout and password change (django.contrib.auth views) under /accounts/."""

from django.urls import include, path

urlpatterns = [path("", include("django.contrib.auth.urls"))]
