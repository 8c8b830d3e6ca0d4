"""Websocket routes of the captures app: for logged-in operators (session or user API token)."""

from django.urls import path

from webapp.accounts.middleware import user_socket
from webapp.captures.consumers import CaptureConsumer

websocket_urlpatterns = [path("ws/captures/<str:id>/", user_socket(CaptureConsumer.as_asgi()))]
