from django.urls import path

from webapp.traffic.api import views

urlpatterns = [path("traffic/", views.TrafficListApi.as_view(), name="api-traffic-list")]
