"""Reads of bot checks: the checks, the latest run and its results."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from support.models import BotCheck, BotCheckResult, BotCheckRun


def botcheck_list() -> QuerySet[BotCheck]:
    return BotCheck.objects.select_related("must_cite").order_by("pk")


def botcheck_run_latest() -> BotCheckRun | None:
    return BotCheckRun.objects.order_by("-started_at", "-pk").first()


def botcheck_run_get(*, run_id: Any) -> BotCheckRun | None:
    return BotCheckRun.objects.filter(pk=run_id).first()


def botcheck_results(*, run: BotCheckRun) -> QuerySet[BotCheckResult]:
    return BotCheckResult.objects.filter(run=run).order_by("pk")
