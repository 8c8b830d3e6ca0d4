"""Top-level URL routes."""

from django.contrib import admin
from django.urls import path

from webapp import views

urlpatterns = [
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
