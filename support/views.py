"""HTML pages. The staff dashboard lives elsewhere; this is the public widget demo."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.templatetags.static import static
from django.views.decorators.http import require_safe


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
