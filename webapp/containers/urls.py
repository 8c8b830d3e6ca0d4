from django.urls import path

from webapp.containers import views

app_name = "containers"
urlpatterns = [path("", views.docker_view, name="docker")]
