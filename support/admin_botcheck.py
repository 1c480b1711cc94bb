"""Bot checks in the admin: the saved test questions; runs and results are read-only history."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from support.models import BotCheck, BotCheckResult, BotCheckRun


@admin.register(BotCheck)
class BotCheckAdmin(admin.ModelAdmin):
    list_display = ["question", "escalation", "must_cite", "active", "created_at"]
    list_editable = ["active"]
    list_filter = ["active", "escalation"]
    search_fields = ["question", "must_mention", "must_not_mention"]
    fields = ["question", "escalation", "must_mention", "must_not_mention", "must_cite", "active"]
    autocomplete_fields = ["must_cite"]


class BotCheckResultInline(admin.TabularInline):
    model = BotCheckResult
    fields = ("passed", "question", "reply", "escalation_reason", "failures", "cost_micros", "latency_ms")
    readonly_fields = ("passed", "question", "reply", "escalation_reason", "failures", "cost_micros", "latency_ms")
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(BotCheckRun)
class BotCheckRunAdmin(admin.ModelAdmin):
    list_display = ["started_at", "responder", "status", "checks", "passed", "failed", "cost_micros", "duration_ms"]
    list_filter = ["status", "responder"]
    inlines = [BotCheckResultInline]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False
