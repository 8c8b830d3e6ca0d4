from django.urls import path

from webapp.audit import views

app_name = "audit"
urlpatterns = [
    path("", views.audit_view, name="list"),
    path("unlock/", views.lockout_unlock_view, name="unlock"),
]
