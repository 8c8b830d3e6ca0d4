from django.urls import path

from webapp.captures.api import views

urlpatterns = [
    path("captures/", views.CaptureListApi.as_view(), name="api-captures"),
    path("captures/<str:id>/", views.CaptureDetailApi.as_view(), name="api-capture"),
    path("captures/<str:id>/stop/", views.CaptureStopApi.as_view(), name="api-capture-stop"),
    path("captures/<str:id>/pcap", views.CapturePcapApi.as_view(), name="api-capture-pcap"),
    path(
        "captures/<str:id>/packets/<str:number>/", views.CapturePacketApi.as_view(), name="api-capture-packet"
    ),
]
