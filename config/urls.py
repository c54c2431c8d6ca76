from django.contrib import admin
from django.http import JsonResponse
from django.urls import include, path, re_path
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from controls.api.errors import json_404
from operations.dashboard import dashboard, dashboard_data, dashboard_tables


def health(request):
    return JsonResponse({"status": "ok"})


# "View site" in the admin, and the site's root, open the operations dashboard
admin.site.site_url = "/ops/"
admin.site.site_header = "Shared order book settlement"
admin.site.site_title = "Settlement back office"
# the lists get the whole width (a 1280 px screen showed half their columns beside the app menu);
# the home page and the breadcrumbs lead to every page
admin.site.enable_nav_sidebar = False

urlpatterns = [
    path("", RedirectView.as_view(url="/ops/", permanent=False), name="home"),
    path("admin/", admin.site.urls),
    path("ops/", dashboard, name="ops-dashboard"),
    path("ops/data.json", dashboard_data, name="ops-dashboard-data"),
    path("ops/tables", dashboard_tables, name="ops-dashboard-tables"),
    path("health", health, name="health"),
    path("api/v1/schema/", SpectacularAPIView.as_view(permission_classes=[], authentication_classes=[]), name="schema"),
    path(
        "api/v1/docs/",
        SpectacularSwaggerView.as_view(url_name="schema", permission_classes=[], authentication_classes=[]),
        name="docs",
    ),
    path("api/v1/", include("controls.api.urls")),
    path("api/v1/", include("registry.api.urls")),
    path("api/v1/", include("settlement.api.urls")),
    path("api/v1/", include("custody.api.urls")),
    path("api/v1/", include("reserves.api.urls")),
    path("api/v1/", include("operations.api.urls")),
    # anything else under /api/ is a JSON 404, in DEBUG too, for every method
    # (no CSRF check first: an API client has no CSRF cookie and gets JSON)
    re_path(r"^api/", csrf_exempt(json_404)),
]

handler404 = "controls.api.errors.json_404"
handler500 = "controls.api.errors.json_500"
