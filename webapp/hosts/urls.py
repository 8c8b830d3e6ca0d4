from django.urls import path

from webapp.hosts import views

app_name = "hosts"
urlpatterns = [
    path("", views.host_list_view, name="list"),
    path("agent/switchboard-agent.pyz", views.agent_download_view, name="agent-download"),
    path("agent/switchboard-agent.service", views.agent_unit_view, name="agent-unit"),
]
