"""ASGI entry point (daphne): HTTP through Django, websockets through Channels.

/ws/agent/ takes a host token and no origin check (agents are not browsers); /ws/topology/ takes a
logged-in user and checks the Origin of browsers (webapp.accounts.middleware.user_socket).
"""

import faulthandler
import os
import signal

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webapp.settings")
# `kill -USR2 <pid>` prints every thread's stack to stderr: what a worker that stopped answering is
# stuck on (its event loop, or the one thread Django's ORM calls share)
faulthandler.register(signal.SIGUSR2, all_threads=True)
django_asgi_app = get_asgi_application()  # set Django up before importing consumers and models

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler  # noqa: E402

from webapp.captures.routing import websocket_urlpatterns as capture_routes  # noqa: E402
from webapp.hosts.routing import websocket_urlpatterns as host_routes  # noqa: E402
from webapp.topology.routing import websocket_urlpatterns as topology_routes  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Static files (our own and npm's) are served here too, so `daphne webapp.asgi:application` and
        # `runserver` without DEBUG serve the pages complete.
        "http": ASGIStaticFilesHandler(django_asgi_app),
        "websocket": URLRouter(host_routes + topology_routes + capture_routes),
    }
)
