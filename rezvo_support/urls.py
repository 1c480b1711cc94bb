from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse
from django.urls import include, path
from django.utils.module_loading import import_string
from django.views.decorators.csrf import csrf_exempt
from django.views.generic import RedirectView

from support.health import health
from support.views import brand_css, favicon, widget_demo


def _loaded_on_first_request(dotted_path: str, **initkwargs: Any) -> Callable[..., HttpResponse]:
    """A class-based view imported by its first request: the schema and docs views load drf_spectacular's
    generator (jinja2, django.test, unittest...), which a worker serving the API never needs."""

    @functools.cache
    def view() -> Callable[..., HttpResponse]:
        return import_string(dotted_path).as_view(**initkwargs)

    @csrf_exempt  # as DRF's views are: their own authentication decides
    def load_and_dispatch(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return view()(request, *args, **kwargs)

    return load_and_dispatch


urlpatterns = [
    path("health", health, name="health"),
    path("favicon.ico", favicon, name="favicon"),
    path("widget/demo/", widget_demo, name="widget-demo"),
    path("brand.css", brand_css, name="brand-css"),
    path("api/support/", include("support.api.urls")),
    path("api/schema/", _loaded_on_first_request("drf_spectacular.views.SpectacularAPIView"), name="schema"),
    path(
        "api/docs/",
        _loaded_on_first_request("drf_spectacular.views.SpectacularSwaggerView", url_name="schema"),
        name="swagger-ui",
    ),
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
