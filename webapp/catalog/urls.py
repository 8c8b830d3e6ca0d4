from django.urls import path

from webapp.catalog import views

app_name = "catalog"
urlpatterns = [path("", views.services_view, name="services")]
