from django.urls import path

from webapp.explain.api import views

urlpatterns = [path("explain/", views.explain, name="api-explain")]
