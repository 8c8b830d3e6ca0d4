"""Top-level URL routes."""

from django.contrib import admin
from django.contrib.auth.decorators import login_required
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from webapp import views
from webapp.accounts import views as accounts_views

# Swagger UI with its set-up script served as a file (?script) and the page's style in a file of ours
# (templates/api_docs.html): the Content-Security-Policy lets no inline script or style run
api_docs = SpectacularSwaggerSplitView.as_view(url_name="api-schema", template_name="api_docs.html")

urlpatterns = [
    path("", RedirectView.as_view(url="/topology/"), name="home"),
    path("healthz", views.healthz, name="healthz"),
    # what browsers ask for on pages that name no icon (Django's admin, Swagger UI without its own)
    path("favicon.ico", RedirectView.as_view(url=static("img/favicon.svg"), permanent=True)),
    path("accounts/tokens/", accounts_views.token_list_view, name="tokens"),
    path("accounts/", include("webapp.accounts.urls")),
    path("hosts/", include("webapp.hosts.urls")),
    path("topology/", include("webapp.topology.urls")),
    path("networks/", include("webapp.networks.urls")),
    path("docker/", include("webapp.containers.urls")),
    path("services/", include("webapp.catalog.urls")),
    path("audit/", include("webapp.audit.urls")),
    path("captures/", include("webapp.captures.urls")),
    path("api/v1/", include("webapp.hosts.api.urls")),
    path("api/v1/", include("webapp.topology.api.urls")),
    path("api/v1/", include("webapp.operations.api.urls")),
    path("api/v1/", include("webapp.networks.api.urls")),
    path("api/v1/", include("webapp.containers.api.urls")),
    path("api/v1/", include("webapp.catalog.api.urls")),
    path("api/v1/", include("webapp.audit.api.urls")),
    path("api/v1/", include("webapp.explain.api.urls")),
    path("api/v1/", include("webapp.captures.api.urls")),
    path("api/v1/", include("webapp.traffic.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", login_required(api_docs), name="api-docs"),
    path("admin/", admin.site.urls),
]

handler400 = views.bad_request
handler404 = views.page_not_found
handler500 = views.server_error
