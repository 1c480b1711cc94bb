"""HTML pages. The staff dashboard lives elsewhere; this is the public widget demo and the brand stylesheet."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_safe

from support.colours import brand_palette


@require_safe
def widget_demo(request: HttpRequest) -> HttpResponse:
    """A sample page embedding the chat widget, pointed at this very server (same origin: no CORS needed)."""
    api = f"{request.scheme}://{request.get_host()}"
    return render(request, "support/widget_demo.html", {"api": api})


@require_safe
def favicon(request: HttpRequest) -> HttpResponse:
    """/favicon.ico, which browsers ask for on every page: a redirect to the static icon (WhiteNoise serves
    it with far-future caching). Resolved per request so the manifest's hashed name is used in production."""
    return HttpResponseRedirect(static("favicon.ico"))


@require_safe
@cache_control(public=True, max_age=300)
def brand_css(request: HttpRequest) -> HttpResponse:
    """The dashboard's accent from the one brand colour setting, with readable text on it.

    A stylesheet rather than an inline <style>, so a Content-Security-Policy without 'unsafe-inline' allows it.
    """
    palette = brand_palette(settings.SUPPORT_WIDGET_PRIMARY_COLOUR)
    body = ":root { " + " ".join(f"--{name}: {value};" for name, value in palette.items()) + " }\n"
    return HttpResponse(body, content_type="text/css; charset=utf-8")
