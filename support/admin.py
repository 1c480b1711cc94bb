"""Django admin for support data. Ticket changes go through services.conversation_update so they
write ticket events and keep the rollups right, exactly as the API and the dashboard do."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.db.models import QuerySet, URLField
from django.http import Http404, HttpRequest
from django.utils.html import format_html, format_html_join

from support import selectors, services
from support.admin_retention import ConversationDeleteMixin
from support.admin_scope import ScopedAdminMixin, ScopedByConversationMixin
from support.models import (
    MICROS_PER_USD,
    CannedReply,
    Conversation,
    KnowledgeArticle,
    Message,
    MessageOrigin,
    ModelPrice,
    Status,
    TicketEvent,
    TicketNote,
)
from support.pricing import PRICE_FIELDS, micros_to_usd, usd_per_mtok_label

admin.site.site_header = "Rezvo Support admin"
admin.site.site_title = "Rezvo Support"
admin.site.site_url = "/dashboard/"  # "View site" goes to the staff dashboard


class ModelPriceForm(forms.ModelForm):
    """Prices are edited in dollars per million tokens and stored as integer micro-USD."""

    class Meta:
        model = ModelPrice
        fields = ["model", *PRICE_FIELDS, "effective_from"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for name in PRICE_FIELDS:
            self.fields[name] = forms.DecimalField(
                min_value=Decimal(0),
                max_digits=12,
                decimal_places=6,
                label=f"{name.removesuffix('_per_mtok_micros').replace('_', ' ').capitalize()} ($ / MTok)",
                help_text="US dollars per million tokens, e.g. 1.25 (stored as integer micro-USD).",
            )
            if self.instance.pk is not None:
                self.initial[name] = Decimal(getattr(self.instance, name)) / MICROS_PER_USD

    def clean(self) -> dict[str, Any]:
        super().clean()
        cleaned = self.cleaned_data
        for name in PRICE_FIELDS:
            if cleaned.get(name) is not None:
                cleaned[name] = int((cleaned[name] * MICROS_PER_USD).to_integral_value(ROUND_HALF_UP))
        return cleaned


def _price_column(name: str, title: str) -> Any:
    @admin.display(description=title, ordering=name)
    def column(admin_: Any, obj: ModelPrice) -> str:
        return usd_per_mtok_label(getattr(obj, name))

    return column


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    form = ModelPriceForm
    list_display = [
        "model",
        "effective_from",
        "input_price",
        "output_price",
        "cache_write_5m_price",
        "cache_write_1h_price",
        "cache_read_price",
    ]
    list_filter = ["model"]
    date_hierarchy = "effective_from"
    ordering = ["model", "-effective_from"]
    input_price = _price_column("input_per_mtok_micros", "Input")
    output_price = _price_column("output_per_mtok_micros", "Output")
    cache_write_5m_price = _price_column("cache_write_5m_per_mtok_micros", "Cache write 5m")
    cache_write_1h_price = _price_column("cache_write_1h_per_mtok_micros", "Cache write 1h")
    cache_read_price = _price_column("cache_read_per_mtok_micros", "Cache read")


class ConversationAdminForm(forms.ModelForm):
    """`notes` here is one new entry for the timeline (services.ticket_note_add), so it starts empty."""

    notes = forms.CharField(
        required=False,
        max_length=20000,
        label="Add a note",
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Appended to the notes timeline above with your name and the time; earlier notes stay.",
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.initial["notes"] = ""


CONFLICT_MESSAGE = "The ticket kept changing while it was saved; it was left as it was. Reload it and try again."

# Fields staff may change; each goes through services.conversation_update.
EDITABLE = ("status", "escalated", "escalation_reason", "assigned_to", "notes", "contact_email")


@admin.register(Conversation)
class ConversationAdmin(ConversationDeleteMixin, ScopedAdminMixin, admin.ModelAdmin):
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
    form = ConversationAdminForm
    date_hierarchy = "created_at"
    actions = ["close", "mark_needs_review", "mark_in_progress", "assign_to_me"]
    fieldsets = [
        (None, {"fields": ["summary", "status", "escalated", "escalation_reason", "bot_note"]}),
        ("Staff", {"fields": ["assigned_to", "notes_timeline", "notes", "contact_email"]}),
        (
            "Origin and usage",
            {
                "fields": [
                    "source",
                    "page_url",
                    "user_agent",
                    "identity_verified",
                    "user_id_unverified",
                    "business_id_unverified",
                    "audience",
                    "contact_name",
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

    class Media:
        # Classes, not style attributes, for the transcript: the Content-Security-Policy allows no inline styles.
        css = {"all": ["support/admin.css"]}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # conversations start from the widget

    def get_changelist_instance(self, request: HttpRequest) -> Any:
        # The changelist counts its rows while it is built, and SQLite refuses an id past 64 bits only
        # then (?assigned_to=<40 digits>); the admin already answers a lookup it cannot use with ?e=1.
        try:
            return super().get_changelist_instance(request)
        except OverflowError as error:
            raise IncorrectLookupParameters(error) from error

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        every = [f.name for f in Conversation._meta.fields]
        shown = ["cost_display", "transcript", "history", "bot_note", "notes_timeline"]
        return (
            [name for name in every if name not in EDITABLE] + shown + ["user_id_unverified", "business_id_unverified"]
        )

    # The bot's escalate_to_human text and the widget's ids are claims, never shown as facts.
    @admin.display(description="The bot's note (not verified)")
    def bot_note(self, obj: Conversation) -> str:
        return obj.escalation_detail or "—"

    @admin.display(description="User id")
    def user_id_unverified(self, obj: Conversation) -> str:
        return _claim(obj, obj.user_id)

    @admin.display(description="Business id")
    def business_id_unverified(self, obj: Conversation) -> str:
        return _claim(obj, obj.business_id)

    @admin.display(description="Notes timeline")
    def notes_timeline(self, obj: Conversation) -> str:
        items = format_html_join(
            "",
            "<li>{} — <strong>{}</strong>: {}</li>",
            (
                (n.created_at.strftime("%Y-%m-%d %H:%M"), n.author_label, n.text)
                for n in selectors.ticket_note_list(conversation=obj)
            ),
        )
        return format_html("<ol>{}</ol>", items) if items else "No notes yet."

    @admin.display(description="Cost (USD)", ordering="cost_micros")
    def cost_display(self, obj: Conversation) -> str:
        return f"${micros_to_usd(obj.cost_micros):.6f}"

    @admin.display(description="Transcript")
    def transcript(self, obj: Conversation) -> str:
        turns = selectors.message_list(conversation=obj)
        rows = format_html_join(
            "",
            '<tr><td class="nowrap">{}</td><td><strong>{}</strong></td>'
            '<td class="prewrap">{}</td><td class="nowrap">{} in / {} out · ${}{}</td></tr>',
            (
                (
                    m.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                    m.get_role_display(),
                    m.content,
                    m.input_tokens,
                    m.output_tokens,
                    f"{micros_to_usd(m.cost_micros):.6f}",
                    # The widget's own figures are unverified: staff must be able to tell them apart.
                    f" · {m.get_origin_display()}" if m.origin == MessageOrigin.CLIENT else "",
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
                (
                    e.created_at.strftime("%Y-%m-%d %H:%M"),
                    e.actor_label,
                    e.get_field_display().lower(),
                    e.old_value,
                    e.new_value,
                )
                for e in events
            ),
        )
        return format_html("<ul>{}</ul>", items) if items else "No changes yet."

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        # The dashboard's search (selectors.conversation_search), so both find the same tickets.
        term = search_term.strip()
        if not term:
            return queryset, False
        return queryset.filter(selectors.conversation_search(term)), False

    def save_model(self, request: HttpRequest, obj: Conversation, form: Any, change: bool) -> None:
        stored = selectors.conversation_get(conversation_id=obj.pk, user=request.user)
        if stored is None:
            raise Http404("No conversation matches the given id.")
        changes = {name: form.cleaned_data[name] for name in form.changed_data if name in EDITABLE}
        try:
            services.conversation_update(conversation=stored, actor=request.user, changes=changes)
        except services.ConversationConflict:
            self.message_user(request, CONFLICT_MESSAGE, messages.ERROR)

    def _bulk(self, request: HttpRequest, queryset: QuerySet, changes: dict[str, Any], done: str) -> None:
        count = conflicts = 0
        for conversation in queryset:
            try:
                services.conversation_update(conversation=conversation, actor=request.user, changes=changes)
            except services.ConversationConflict:
                conflicts += 1
                continue
            count += 1
        self.message_user(request, f"{count} ticket(s) {done}.", messages.SUCCESS)
        if conflicts:
            left = f"{conflicts} ticket(s) kept changing and were left as they were."
            self.message_user(request, left, messages.ERROR)

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
class MessageAdmin(ScopedByConversationMixin, ReadOnlyAdmin):
    list_display = [
        "conversation",
        "role",
        "origin",
        "model",
        "input_tokens",
        "output_tokens",
        "cost_micros",
        "created_at",
    ]
    list_filter = ["role", "origin", "model", "is_escalation", "is_partial", "is_truncated"]
    list_select_related = ["conversation"]
    date_hierarchy = "created_at"


@admin.register(TicketEvent)
class TicketEventAdmin(ScopedByConversationMixin, ReadOnlyAdmin):
    list_display = ["conversation", "actor_label", "field", "old_value", "new_value", "created_at"]
    list_filter = ["field"]


@admin.register(TicketNote)
class TicketNoteAdmin(ScopedByConversationMixin, ReadOnlyAdmin):
    list_display = ["conversation", "author_label", "text", "created_at"]
    list_select_related = ["conversation"]
    search_fields = ["text"]


@admin.register(KnowledgeArticle)
class KnowledgeArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "active", "order", "business_ids", "audience", "updated_at"]
    list_editable = ["active", "order"]
    list_filter = ["active", "audience"]
    search_fields = ["title", "keywords", "answer", "business_ids"]
    fields = ["title", "keywords", "answer", "public_url", "active", "order", "business_ids", "audience"]
    formfield_overrides = {URLField: {"assume_scheme": "https"}}  # a bare 'example.com/help' is https


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    list_display = ["title", "is_active", "created_at"]
    list_editable = ["is_active"]
    list_filter = ["is_active"]
    search_fields = ["title", "content"]
    fields = ["title", "content", "is_active"]


def _claim(conversation: Conversation, value: str) -> str:
    """An id from the widget's page, marked verified only when the site's server signed it (support.identity)."""
    if not value:
        return "—"
    if conversation.identity_verified:
        return f"{value} (verified: signed by the site's server)"
    return f"{value} (unverified: sent by the widget's page)"


# Registered by importing: the webhook, business and bot-check admins live in their own modules.
from support import admin_botcheck, admin_business, admin_webhooks  # noqa: E402, F401
