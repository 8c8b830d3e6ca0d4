from django.urls import path

from webapp.containers.api import views

urlpatterns = [
    path("docker/", views.DockerStateApi.as_view(), name="api-docker"),
    path("docker/networks/", views.NetworkCreateApi.as_view(), name="api-docker-networks"),
    path(
        "docker/networks/<str:host>/<str:network>/",
        views.NetworkRemoveApi.as_view(),
        name="api-docker-network",
    ),
    path(
        "docker/networks/<str:host>/<str:network>/connect/",
        views.NetworkConnectApi.as_view(),
        name="api-docker-network-connect",
    ),
    path(
        "docker/networks/<str:host>/<str:network>/disconnect/",
        views.NetworkDisconnectApi.as_view(),
        name="api-docker-network-disconnect",
    ),
    path("docker/containers/", views.ContainerRunApi.as_view(), name="api-docker-containers"),
    path("docker/compose/", views.ComposeUpApi.as_view(), name="api-docker-compose"),
    path(
        "docker/compose/<str:host>/<str:project>/",
        views.ComposeDownApi.as_view(),
        name="api-docker-compose-project",
    ),
    path(
        "docker/containers/<str:host>/<str:container>/",
        views.ContainerRemoveApi.as_view(),
        name="api-docker-container",
    ),
    path(
        "docker/containers/<str:host>/<str:container>/stop/",
        views.ContainerStopApi.as_view(),
        name="api-docker-container-stop",
    ),
]
