from django.urls import path

from webapp.operations.api import views

urlpatterns = [
    path("operations/", views.OperationListApi.as_view(), name="api-operation-list"),
    path("operations/<str:id>/", views.OperationDetailApi.as_view(), name="api-operation-detail"),
    path("operations/<str:id>/cancel/", views.OperationCancelApi.as_view(), name="api-operation-cancel"),
]
