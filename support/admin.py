"""Django admin for support data. Ticket changes go through services.conversation_update so they
write ticket events and keep the rollups right, exactly as the API and the dashboard do."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join

from support import selectors, services
from support.models import Conversation, KnowledgeArticle, Message, ModelPrice, Status, TicketEvent
from support.pricing import micros_to_usd

admin.site.site_header = "Rezvo Support admin"
admin.site.site_title = "Rezvo Support"
admin.site.site_url = "/dashboard/"  # "View site" goes to the staff dashboard


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = [
        "model",
        "effective_from",
        "input_per_mtok_micros",
        "output_per_mtok_micros",
        "cache_write_5m_per_mtok_micros",
        "cache_write_1h_per_mtok_micros",
        "cache_read_per_mtok_micros",
    ]
    list_filter = ["model"]
    date_hierarchy = "effective_from"
    ordering = ["model", "-effective_from"]


# Fields staff may change; each goes through services.conversation_update.
EDITABLE = ("status", "escalated", "escalation_reason", "assigned_to", "notes", "contact_email")


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = [
        "__str__",
        "status",
        "escalated",
        "escalation_reason",
        "source",
        "message_count",
        "cost_display",
        "assigned_to",
        "created_at",
    ]
    list_filter = ["status", "escalated", "source", "assigned_to", "created_at"]
    list_select_related = ["assigned_to"]
    search_fields = ["summary", "page_url", "contact_email"]
    search_help_text = "Summary, message content, page URL or contact email."
    date_hierarchy = "created_at"
    actions = ["close", "mark_needs_review", "mark_in_progress", "assign_to_me"]
    fieldsets = [
        (None, {"fields": ["summary", "status", "escalated", "escalation_reason", "escalation_detail"]}),
        ("Staff", {"fields": ["assigned_to", "notes", "contact_email"]}),
        (
            "Origin and usage",
            {
                "fields": [
                    "source",
                    "page_url",
                    "user_agent",
                    "user_id",
                    "business_id",
                    "message_count",
                    "cost_display",
                    "created_at",
                    "escalated_at",
                    "closed_at",
                ]
            },
        ),
        ("Transcript", {"fields": ["transcript"]}),
        ("History", {"fields": ["history"]}),
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # conversations start from the widget

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        every = [f.name for f in Conversation._meta.fields]
        return [name for name in every if name not in EDITABLE] + ["cost_display", "transcript", "history"]

    @admin.display(description="Cost (USD)", ordering="cost_micros")
    def cost_display(self, obj: Conversation) -> str:
        return f"${micros_to_usd(obj.cost_micros):.6f}"

    @admin.display(description="Transcript")
    def transcript(self, obj: Conversation) -> str:
        turns = selectors.message_list(conversation=obj)
        rows = format_html_join(
            "",
            '<tr><td style="white-space:nowrap">{}</td><td><strong>{}</strong></td>'
            '<td style="white-space:pre-wrap">{}</td><td style="white-space:nowrap">{} in / {} out · ${}</td></tr>',
            (
                (
                    m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    m.get_role_display(),
                    m.content,
                    m.input_tokens,
                    m.output_tokens,
                    f"{micros_to_usd(m.cost_micros):.6f}",
                )
                for m in turns
            ),
        )
        return format_html('<table class="transcript">{}</table>', rows) if rows else "No messages."

    @admin.display(description="Ticket history")
    def history(self, obj: Conversation) -> str:
        events = selectors.event_list(conversation=obj)
        items = format_html_join(
            "",
            "<li>{} — {} changed {} from “{}” to “{}”</li>",
            (
                (e.created_at.strftime("%Y-%m-%d %H:%M"), e.actor_label, e.field, e.old_value, e.new_value)
                for e in events
            ),
        )
        return format_html("<ul>{}</ul>", items) if items else "No changes yet."

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if term:
            # Message content, without a join: the MongoDB backend cannot nest the query (see selectors).
            by_content = selectors.conversation_list(filters=selectors.ConversationFilters(q=term))
            ids = list(by_content.values_list("pk", flat=True))
            queryset |= self.model.objects.filter(pk__in=ids)
        return queryset, may_have_duplicates

    def save_model(self, request: HttpRequest, obj: Conversation, form: Any, change: bool) -> None:
        stored = selectors.conversation_get(conversation_id=obj.pk)
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE}
        services.conversation_update(conversation=stored, actor=request.user, changes=changes)

    def _bulk(self, request: HttpRequest, queryset: QuerySet, changes: dict[str, Any], done: str) -> None:
        count = 0
        for conversation in queryset:
            services.conversation_update(conversation=conversation, actor=request.user, changes=changes)
            count += 1
        self.message_user(request, f"{count} ticket(s) {done}.", messages.SUCCESS)

    @admin.action(description="Close selected tickets")
    def close(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, {"status": Status.CLOSED}, "closed")

    @admin.action(description="Mark selected as needs review")
    def mark_needs_review(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, {"status": Status.NEEDS_REVIEW}, "marked needs review")

    @admin.action(description="Mark selected as in progress")
    def mark_in_progress(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, {"status": Status.IN_PROGRESS}, "marked in progress")

    @admin.action(description="Assign selected to me")
    def assign_to_me(self, request: HttpRequest, queryset: QuerySet) -> None:
        self._bulk(request, queryset, {"assigned_to": request.user}, "assigned to you")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = ["conversation", "role", "model", "input_tokens", "output_tokens", "cost_micros", "created_at"]
    list_filter = ["role", "model", "is_escalation", "is_partial", "is_truncated"]
    list_select_related = ["conversation"]
    date_hierarchy = "created_at"


@admin.register(TicketEvent)
class TicketEventAdmin(ReadOnlyAdmin):
    list_display = ["conversation", "actor_label", "field", "old_value", "new_value", "created_at"]
    list_filter = ["field"]


@admin.register(KnowledgeArticle)
class KnowledgeArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "active", "order", "updated_at"]
    list_editable = ["active", "order"]
    list_filter = ["active"]
    search_fields = ["title", "keywords", "answer"]
    fields = ["title", "keywords", "answer", "active", "order"]
