from django.urls import path

from webapp.networks.api import edits, views

urlpatterns = [
    path("topologies/", views.TopologyListApi.as_view(), name="api-topology-list"),
    path("topologies/<str:name>/", views.TopologyDetailApi.as_view(), name="api-topology-detail"),
    path("topologies/<str:name>/export/", views.TopologyExportApi.as_view(), name="api-topology-export"),
    path("topologies/<str:name>/plan/", views.TopologyPlanApi.as_view(), name="api-topology-plan"),
    path("topologies/<str:name>/preview/", views.TopologyPreviewApi.as_view(), name="api-topology-preview"),
    path("topologies/<str:name>/apply/", views.TopologyApplyApi.as_view(), name="api-topology-apply"),
    path("topologies/<str:name>/destroy/", views.TopologyDestroyApi.as_view(), name="api-topology-destroy"),
    path("topologies/<str:name>/repair/", views.TopologyRepairApi.as_view(), name="api-topology-repair"),
    path("topologies/<str:name>/networks/", edits.NetworkAddApi.as_view(), name="api-topology-network-add"),
    path(
        "topologies/<str:name>/networks/<str:network>/",
        edits.NetworkEditApi.as_view(),
        name="api-topology-network-edit",
    ),
    path("topologies/<str:name>/nodes/", edits.NodeAddApi.as_view(), name="api-topology-node-add"),
    path(
        "topologies/<str:name>/nodes/<str:node>/", edits.NodeEditApi.as_view(), name="api-topology-node-edit"
    ),
    path(
        "topologies/<str:name>/nodes/<str:node>/attach/",
        edits.NodeAttachApi.as_view(),
        name="api-topology-node-attach",
    ),
    path(
        "topologies/<str:name>/nodes/<str:node>/detach/",
        edits.NodeDetachApi.as_view(),
        name="api-topology-node-detach",
    ),
    path(
        "topologies/<str:name>/nodes/<str:node>/routes/",
        edits.NodeRoutesApi.as_view(),
        name="api-topology-node-routes",
    ),
    path("networks/", views.NetworkListApi.as_view(), name="api-network-list"),
    path("networks/<str:id>/overlay/", views.NetworkOverlayApi.as_view(), name="api-network-overlay"),
    path("nodes/", views.NodeListApi.as_view(), name="api-node-list"),
    path("routes/", views.RouteListApi.as_view(), name="api-route-list"),
]
