"""Writes of bot-check runs: start one, ask every active check (support.botcheck), record each result.

Nothing here touches conversations, the daily budget, the queue or the rollups: a run's cost lives on the
run and its results only."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from django.db.models import F
from django.utils import timezone

from support import botcheck
from support.models import BotCheck, BotCheckResult, BotCheckRun, BotCheckRunStatus

logger = logging.getLogger(__name__)

#: progress(done, total) after each check.
Progress = Callable[[int, int], None]


def botcheck_run_start(*, actor: Any = None, actor_label: str = "") -> BotCheckRun:
    """A new run, not yet executed (the dashboard queues botcheck_run_execute; the command calls it)."""
    label = actor_label or ("" if actor is None else actor.get_username())
    return BotCheckRun.objects.create(responder=botcheck.responder(), started_by=actor, started_by_label=label)


def botcheck_run_execute(*, run: BotCheckRun, progress: Progress | None = None) -> BotCheckRun:
    """Ask every active check's question and record the results; the run's totals follow each one."""
    started = time.monotonic()
    checks = list(BotCheck.objects.filter(active=True).order_by("pk"))
    try:
        for done, check in enumerate(checks, start=1):
            _result_record(run=run, check=check)
            if progress is not None:
                progress(done, len(checks))
    except Exception as exc:
        # A run that dies part-way says so on the page; the results it has are kept.
        logger.exception("bot-check run %s stopped", run.pk)
        _finish(run, started=started, status=BotCheckRunStatus.FAILED, error=f"{type(exc).__name__}: {exc}"[:500])
        raise
    _finish(run, started=started, status=BotCheckRunStatus.DONE, error="")
    return run


def _result_record(*, run: BotCheckRun, check: BotCheck) -> BotCheckResult:
    reply = botcheck.botcheck_ask(check.question)
    failures = botcheck.botcheck_evaluate(check=check, reply=reply)
    result = BotCheckResult.objects.create(
        run=run,
        bot_check=check,
        question=check.question,
        reply=reply.text,
        escalated=reply.escalated,
        escalation_reason=reply.escalation_reason,
        cited_article_ids=reply.cited_article_ids,
        passed=not failures,
        failures=failures,
        model=reply.model,
        input_tokens=reply.input_tokens,
        output_tokens=reply.output_tokens,
        cost_micros=reply.cost_micros,
        latency_ms=reply.latency_ms,
    )
    BotCheckRun.objects.filter(pk=run.pk).update(
        checks=F("checks") + 1,
        passed=F("passed") + (0 if failures else 1),
        failed=F("failed") + (1 if failures else 0),
        cost_micros=F("cost_micros") + reply.cost_micros,
    )
    return result


def _finish(run: BotCheckRun, *, started: float, status: str, error: str) -> None:
    BotCheckRun.objects.filter(pk=run.pk).update(
        status=status,
        error=error,
        duration_ms=int((time.monotonic() - started) * 1000),
        finished_at=timezone.now(),
    )
    run.refresh_from_db()
