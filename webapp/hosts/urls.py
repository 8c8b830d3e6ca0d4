from django.urls import path

from webapp.hosts import views

app_name = "hosts"
urlpatterns = [path("", views.host_list_view, name="list")]
