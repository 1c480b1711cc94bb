"""The admin's side of retention and erasure: deleting conversations through the retention service, and the
read-only erasure records (who deleted what, when, how many rows)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from support import services
from support.models import Conversation, ErasureRecord


class ConversationDeleteMixin:
    """Conversation deletes (the change page's Delete, the list's "Delete selected") go through
    services.conversations_admin_delete: batched, recorded in an ErasureRecord, rollups left as they are."""

    def get_deleted_objects(self, objs: Sequence[Any] | QuerySet[Any], request: HttpRequest) -> Any:
        deleted, counts, _perms_needed, protected = super().get_deleted_objects(objs, request)  # type: ignore[misc]
        # The turns, events and notes listed go with their conversation; their own admins are read-only
        # (never deleted alone), which would otherwise refuse the whole delete for want of those permissions.
        return deleted, counts, set(), protected

    def delete_model(self, request: HttpRequest, obj: Conversation) -> None:
        services.conversations_admin_delete(
            conversations=Conversation.objects.filter(pk=obj.pk), operator=request.user.get_username()
        )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        services.conversations_admin_delete(conversations=queryset, operator=request.user.get_username())


@admin.register(ErasureRecord)
class ErasureRecordAdmin(admin.ModelAdmin):
    """Read only: the record is the audit trail, written by the retention service alone."""

    list_display = ["created_at", "kind", "operator", "matched_display", "conversations", "finished_at"]
    list_filter = ["kind"]
    date_hierarchy = "created_at"
    fields = ("kind", "operator", "matched_display", "counts_display", "days_display", "created_at", "finished_at")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: object = None) -> bool:
        return False

    @admin.display(description="Matched")
    def matched_display(self, obj: ErasureRecord) -> str:
        return json.dumps(obj.matched, sort_keys=True)

    @admin.display(description="Conversations")
    def conversations(self, obj: ErasureRecord) -> int:
        return int((obj.counts or {}).get("conversations", 0))

    @admin.display(description="Rows deleted per table")
    def counts_display(self, obj: ErasureRecord) -> str:
        return ", ".join(f"{name}: {number}" for name, number in sorted((obj.counts or {}).items())) or "—"

    @admin.display(description="Days whose analytics keep the deleted conversations")
    def days_display(self, obj: ErasureRecord) -> str:
        return ", ".join(obj.days or []) or "—"
