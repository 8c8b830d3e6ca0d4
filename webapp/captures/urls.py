from django.urls import path

from webapp.captures import views

app_name = "captures"
urlpatterns = [
    path("", views.capture_list_view, name="list"),
    path("<str:id>/", views.capture_detail_view, name="detail"),
]
