from __future__ import annotations

from django.contrib import admin
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from support.health import health
from support.views import brand_css, widget_demo

urlpatterns = [
    path("health", health, name="health"),
    path("widget/demo/", widget_demo, name="widget-demo"),
    path("brand.css", brand_css, name="brand-css"),
    path("api/support/", include("support.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("accounts/", include("django.contrib.auth.urls")),
    path("dashboard/", include("support.dashboard.urls")),
    path("", RedirectView.as_view(pattern_name="dashboard:queue", permanent=False)),
    path("admin/", admin.site.urls),
]

handler404 = "support.api.errors.handler404"
handler500 = "support.api.errors.handler500"
