"""ASGI entry point (daphne): HTTP through Django, websockets through Channels.

/ws/agent/ takes a host token and no origin check (agents are not browsers); /ws/topology/ takes a
logged-in user and checks the Origin of browsers (webapp.accounts.middleware.user_socket).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
django_asgi_app = get_asgi_application()  # set Django up before importing consumers and models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from webapp.hosts.routing import websocket_urlpatterns as host_routes  # noqa: E402
from webapp.topology.routing import websocket_urlpatterns as topology_routes  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Static files (our own and npm's) are served here too, so `daphne webapp.asgi:application` and
        # `runserver` without DEBUG serve the pages complete.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": URLRouter(host_routes + topology_routes),
    }
)
