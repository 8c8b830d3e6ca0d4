"""Websocket routes of the topology app: for logged-in browsers (session or user API token)."""

from django.urls import path

from webapp.accounts.middleware import user_socket
from webapp.topology.consumers import TopologyConsumer

websocket_urlpatterns = [path("ws/topology/", user_socket(TopologyConsumer.as_asgi()))]
