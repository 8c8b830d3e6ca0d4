from django.urls import path

from webapp.networks.api import views

urlpatterns = [
    path("topologies/", views.TopologyListApi.as_view(), name="api-topology-list"),
    path("topologies/<str:name>/", views.TopologyDetailApi.as_view(), name="api-topology-detail"),
    path("topologies/<str:name>/export/", views.TopologyExportApi.as_view(), name="api-topology-export"),
    path("topologies/<str:name>/plan/", views.TopologyPlanApi.as_view(), name="api-topology-plan"),
    path("topologies/<str:name>/apply/", views.TopologyApplyApi.as_view(), name="api-topology-apply"),
    path("topologies/<str:name>/destroy/", views.TopologyDestroyApi.as_view(), name="api-topology-destroy"),
    path("networks/", views.NetworkListApi.as_view(), name="api-network-list"),
    path("nodes/", views.NodeListApi.as_view(), name="api-node-list"),
]
