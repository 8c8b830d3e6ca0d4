from django.urls import path

from webapp.catalog.api import views

urlpatterns = [
    path("services/", views.services, name="api-services"),
    path("services/<str:name>/", views.ServiceApi.as_view(), name="api-service"),
    path("services/<str:name>/instances/", views.instances, name="api-service-instances"),
    path("services/<str:name>/resolve/", views.resolve, name="api-service-resolve"),
    path(
        "services/<str:name>/instances/<str:instance>/",
        views.InstanceApi.as_view(),
        name="api-service-instance",
    ),
    path(
        "services/<str:name>/instances/<str:instance>/renew/",
        views.InstanceRenewApi.as_view(),
        name="api-service-instance-renew",
    ),
]
