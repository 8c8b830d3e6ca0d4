from django.urls import path

from webapp.hosts.api import views

urlpatterns = [
    path("hosts/", views.HostListApi.as_view(), name="api-host-list"),
    path("hosts/<str:name>/", views.HostDetailApi.as_view(), name="api-host-detail"),
    path("hosts/<str:name>/plan/", views.HostPlanApi.as_view(), name="api-host-plan"),
    path("hosts/<str:name>/apply/", views.HostApplyApi.as_view(), name="api-host-apply"),
    path("hosts/<str:name>/destroy/", views.HostDestroyApi.as_view(), name="api-host-destroy"),
]
