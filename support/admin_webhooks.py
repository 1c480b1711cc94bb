"""Admin for webhooks: endpoints are edited here (or with `manage.py webhooks`); deliveries and their
attempts are read-only, so staff see what each receiver answered and when the next try is due."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.http import HttpRequest

from support.models import WEBHOOK_EVENTS, WebhookAttempt, WebhookDelivery, WebhookEndpoint


class WebhookEndpointForm(forms.ModelForm):
    url = forms.URLField(max_length=500, assume_scheme="https", help_text="https only.")
    events = forms.MultipleChoiceField(
        choices=[(event, event) for event in WEBHOOK_EVENTS], widget=forms.CheckboxSelectMultiple
    )

    class Meta:
        model = WebhookEndpoint
        fields = ["url", "events", "is_active"]


@admin.register(WebhookEndpoint)
class WebhookEndpointAdmin(admin.ModelAdmin):
    form = WebhookEndpointForm
    list_display = ["url", "events_label", "is_active", "created_at"]
    list_filter = ["is_active"]
    readonly_fields = ["secret", "created_at"]

    @admin.display(description="Events")
    def events_label(self, obj: WebhookEndpoint) -> str:
        return ", ".join(obj.events or [])

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # The secret is made on save; a new endpoint shows it on its change page after saving.
        return ["secret", "created_at"] if obj is not None else []


class WebhookAttemptInline(admin.TabularInline):
    model = WebhookAttempt
    extra = 0
    can_delete = False
    fields = ["number", "attempted_at", "duration_ms", "status_code", "response_excerpt", "error"]
    readonly_fields = ["number", "attempted_at", "duration_ms", "status_code", "response_excerpt", "error"]

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(admin.ModelAdmin):
    list_display = ["event", "endpoint", "status", "attempt_count", "status_code", "next_attempt_at", "created_at"]
    list_filter = ["status", "event"]
    list_select_related = ["endpoint"]
    date_hierarchy = "created_at"
    inlines = [WebhookAttemptInline]
    readonly_fields = [
        "endpoint",
        "event",
        "webhook_id",
        "status",
        "attempt_count",
        "status_code",
        "response_excerpt",
        "error",
        "next_attempt_at",
        "delivered_at",
        "created_at",
        "payload",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Viewing the change page needs view permission only; nothing here is editable.
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
