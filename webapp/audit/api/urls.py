from django.urls import path

from webapp.audit.api import views

urlpatterns = [path("audit/", views.AuditListApi.as_view(), name="api-audit-list")]
