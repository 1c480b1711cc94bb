"""The knowledge-gaps pages (issue 14): failed questions grouped by similarity, each group's tickets, and
"Write an article" prefilled from the group (the admin's add form takes initial values from the query)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from support import selectors
from support.dashboard.forms import AnalyticsWindowForm
from support.dashboard.views import staff_required
from support.pricing import micros_to_usd
from support.selectors import gaps


def _window(form: AnalyticsWindowForm) -> tuple[Any, Any, selectors.Window]:
    window = form.window()
    start = selectors.utc_midnight(window.date_from)
    return start, selectors.utc_midnight(window.date_to) + timedelta(days=1), window


def _row(gap: gaps.Gap, query: str) -> dict[str, Any]:
    return {
        "gap": gap,
        "cost_usd": micros_to_usd(gap.cost_micros),
        "url": f"{reverse('dashboard:gap', args=[gap.key])}?{query}",
    }


@require_GET
@staff_required
def gap_list(request: HttpRequest) -> HttpResponse:
    form = AnalyticsWindowForm(request.GET)
    if not form.is_valid():
        return render(request, "dashboard/gaps.html", {"form": form, "rows": None}, status=400)
    start, end, window = _window(form)
    rows = [_row(gap, request.GET.urlencode()) for gap in gaps.gap_list(start=start, end=end, viewer=request.user)]
    context = {"form": form, "rows": rows, "window": window, "windows": [7, 30, 90], "selected_days": window.days}
    return render(request, "dashboard/gaps.html", context)


@require_GET
@staff_required
def gap_detail(request: HttpRequest, key: str) -> HttpResponse:
    form = AnalyticsWindowForm(request.GET)
    if not form.is_valid():
        return render(request, "dashboard/gaps.html", {"form": form, "rows": None}, status=400)
    start, end, window = _window(form)
    gap = gaps.gap_get(key=key, start=start, end=end, viewer=request.user)
    if gap is None:
        raise Http404("No such knowledge gap in this window (it may have been answered).")
    draft = gaps.gap_article_draft(gap=gap)
    context = {
        "form": form,
        "row": _row(gap, request.GET.urlencode()),
        "window": window,
        "staff_replies": gaps.gap_staff_replies(gap=gap),
        "write_url": f"{reverse('admin:support_knowledgearticle_add')}?{urlencode(draft)}",
        "back_url": f"{reverse('dashboard:gaps')}?{request.GET.urlencode()}",
    }
    return render(request, "dashboard/gap.html", context)
