from django.urls import path

from webapp.topology import views

app_name = "topology"
urlpatterns = [path("", views.topology_view, name="page")]
