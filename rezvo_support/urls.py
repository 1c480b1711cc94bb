from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.generic import RedirectView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from support.health import health
from support.views import brand_css, favicon, widget_demo

urlpatterns = [
    path("health", health, name="health"),
    path("favicon.ico", favicon, name="favicon"),
    path("widget/demo/", widget_demo, name="widget-demo"),
    path("brand.css", brand_css, name="brand-css"),
    path("api/support/", include("support.api.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    # Login, logout and password change only: password reset needs outgoing mail (not set up yet) and
    # would be a public, unthrottled form that sends mail; staff passwords are reset by an admin.
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("dashboard/", include("support.dashboard.urls")),
    path("", RedirectView.as_view(pattern_name="dashboard:queue", permanent=False)),
    path("admin/", admin.site.urls),
]

handler404 = "rezvo_support.errors.handler404"
handler500 = "rezvo_support.errors.handler500"
