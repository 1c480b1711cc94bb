"""Bot checks: saved test questions with what the reply must (not) do, and the runs that asked them.

A run never creates a conversation, never reserves or spends the daily budget and never enters the queue
or the analytics: its cost is kept on the run alone (support/botcheck.py)."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.utils import timezone

from support.models.choices import BotCheckEscalation, BotCheckResponder, BotCheckRunStatus
from support.models.knowledge import KnowledgeArticle


class BotCheck(models.Model):
    """One test question and its expectations; every expectation given must hold for the check to pass."""

    question = models.TextField(help_text="What a customer would ask, as they would write it.")
    escalation = models.CharField(
        max_length=10,
        choices=BotCheckEscalation.choices,
        default=BotCheckEscalation.ANY,
        blank=True,
        help_text="Whether the bot must hand the question to a person (or must not).",
    )
    must_mention = models.TextField(
        blank=True,
        help_text="Phrases the reply must contain, one per line (case and spacing ignored), e.g. a price.",
    )
    must_not_mention = models.TextField(
        blank=True, help_text="Phrases the reply must not contain, one per line, e.g. a competitor or an old price."
    )
    must_cite = models.ForeignKey(
        KnowledgeArticle,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The article the reply must cite (read from the reply's citations).",
    )
    active = models.BooleanField(default=True, help_text="Inactive checks are kept but not run.")
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        db_table = "support_bot_checks"
        ordering = ["pk"]

    def __str__(self) -> str:
        return self.question[:80]


class BotCheckRun(models.Model):
    """One run of every active check, against Claude or the offline responder."""

    status = models.CharField(max_length=10, choices=BotCheckRunStatus.choices, default=BotCheckRunStatus.RUNNING)
    responder = models.CharField(max_length=10, choices=BotCheckResponder.choices)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_by_label = models.CharField(max_length=150, blank=True, help_text="Who started it: a user, or 'command'.")
    checks = models.PositiveIntegerField(default=0, help_text="Checks run so far.")
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    cost_micros = models.PositiveBigIntegerField(
        default=0, help_text="Claude cost of the run in micro-USD: outside the daily budget and the analytics."
    )
    duration_ms = models.PositiveIntegerField(default=0, help_text="Wall-clock time of the whole run.")
    error = models.CharField(max_length=500, blank=True, help_text="Why the run stopped, if it did.")
    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "support_bot_check_runs"
        ordering = ["-started_at", "-pk"]

    def __str__(self) -> str:
        return f"Run {self.pk}: {self.passed}/{self.checks} passed"


class BotCheckResult(models.Model):
    """What one check's question got in one run, and which expectations failed."""

    run = models.ForeignKey(BotCheckRun, on_delete=models.CASCADE, related_name="results")
    bot_check = models.ForeignKey(BotCheck, null=True, on_delete=models.SET_NULL, related_name="results")
    question = models.TextField(help_text="The question as it was asked (the check may change later).")
    reply = models.TextField(blank=True)
    escalated = models.BooleanField(default=False)
    escalation_reason = models.CharField(max_length=32, blank=True)
    cited_article_ids = models.JSONField(default=list, blank=True, help_text="The articles the reply cited.")
    passed = models.BooleanField(default=False)
    failures = models.JSONField(default=list, blank=True, help_text="Each expectation that did not hold, in words.")
    model = models.CharField(max_length=100, blank=True)
    input_tokens = models.PositiveIntegerField(default=0)
    output_tokens = models.PositiveIntegerField(default=0)
    cost_micros = models.PositiveBigIntegerField(default=0)
    latency_ms = models.PositiveIntegerField(default=0)

    class Meta:
        db_table = "support_bot_check_results"
        ordering = ["pk"]

    def __str__(self) -> str:
        return f"{'pass' if self.passed else 'FAIL'}: {self.question[:60]}"
