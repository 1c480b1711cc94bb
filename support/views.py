"""HTML pages. The staff dashboard lives elsewhere; this is the public widget demo."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe


@require_safe
def widget_demo(request: HttpRequest) -> HttpResponse:
    """A sample page embedding the chat widget, pointed at this very server (same origin: no CORS needed)."""
    api = f"{request.scheme}://{request.get_host()}"
    return render(request, "support/widget_demo.html", {"api": api})
