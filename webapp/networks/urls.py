from django.urls import path

from webapp.networks import views

app_name = "networks"
urlpatterns = [path("", views.topologies_view, name="topologies")]
