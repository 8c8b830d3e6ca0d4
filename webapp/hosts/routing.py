"""Websocket routes of the hosts app. Agents are not browsers: no origin check, host token only."""

from django.urls import path

from webapp.hosts.consumers import AgentConsumer

websocket_urlpatterns = [path("ws/agent/", AgentConsumer.as_asgi())]
