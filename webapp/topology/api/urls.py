from django.urls import path

from webapp.topology.api import views

urlpatterns = [
    path("topology/", views.TopologyApi.as_view(), name="api-topology"),
    path("topology/layouts/<str:view>/", views.LayoutApi.as_view(), name="api-topology-layout"),
    path(
        "topology/shaping/<str:host>/<str:netns>/<str:link>/",
        views.LinkShapingApi.as_view(),
        name="api-topology-shaping",
    ),
]
