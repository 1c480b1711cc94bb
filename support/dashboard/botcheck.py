"""The bot checks page: the saved checks, a Run button, and the latest run's pass/fail, cost and time."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from support import botcheck, selectors, services, tasks
from support.dashboard.views import staff_required
from support.models import BotCheckRunStatus
from support.pricing import micros_to_usd


@require_GET
@staff_required
def bot_checks(request: HttpRequest) -> HttpResponse:
    run = selectors.botcheck_run_latest()
    context = {
        "checks": list(selectors.botcheck_list()),
        "run": run,
        "running": run is not None and run.status == BotCheckRunStatus.RUNNING,
        "run_cost": None if run is None else f"${micros_to_usd(run.cost_micros):.6f}",
        "results": [] if run is None else list(selectors.botcheck_results(run=run)),
        "responder": botcheck.responder(),
    }
    return render(request, "dashboard/bot_checks.html", context)


@require_POST
@staff_required
def bot_checks_run(request: HttpRequest) -> HttpResponse:
    if not selectors.botcheck_list().filter(active=True).exists():
        messages.error(request, "There are no active bot checks to run: add some in the admin first.")
        return redirect("dashboard:bot_checks")
    run = services.botcheck_run_start(actor=request.user)
    tasks.bot_check_run(str(run.pk))  # on the task queue: a run against Claude takes a while
    messages.success(request, "Bot checks started; this page shows the run when it finishes.")
    return redirect("dashboard:bot_checks")
