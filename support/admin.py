from __future__ import annotations

from django.contrib import admin

from support.models import Conversation, KnowledgeArticle, Message, ModelPrice, TicketEvent


@admin.register(ModelPrice)
class ModelPriceAdmin(admin.ModelAdmin):
    list_display = ["model", "effective_from", "input_per_mtok_micros", "output_per_mtok_micros"]
    list_filter = ["model"]


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = ["__str__", "status", "escalated", "source", "message_count", "cost_micros", "created_at"]
    list_filter = ["status", "escalated", "source"]
    readonly_fields = ["token_hash"]


@admin.register(Message)
class MessageAdmin(admin.ModelAdmin):
    list_display = ["conversation", "role", "model", "cost_micros", "created_at"]

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(TicketEvent)
class TicketEventAdmin(admin.ModelAdmin):
    list_display = ["conversation", "actor_label", "field", "old_value", "new_value", "created_at"]

    def has_change_permission(self, request: object, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: object, obj: object = None) -> bool:
        return False


@admin.register(KnowledgeArticle)
class KnowledgeArticleAdmin(admin.ModelAdmin):
    list_display = ["title", "active", "order", "updated_at"]
    list_editable = ["active", "order"]
    list_filter = ["active"]
    search_fields = ["title", "keywords", "answer"]
    fields = ["title", "keywords", "answer", "active", "order"]
