"""Admin for StaffScope (which businesses a staff user may see), and the mixin that scopes admin lists by it."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from support import selectors
from support.models import StaffScope


class ScopedAdminMixin:
    """Admin lists and pages limited to the businesses the signed-in staff user may see (selectors.conversation_scope).

    `scope_field` names the business_id lookup: the row's own, or its conversation's."""

    scope_field = "business_id"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset: QuerySet[Any] = super().get_queryset(request)  # type: ignore[misc]
        return selectors.conversation_scope(queryset, user=request.user, field=self.scope_field)


class ScopedByConversationMixin(ScopedAdminMixin):
    scope_field = "conversation__business_id"


class StaffScopeForm(forms.ModelForm):
    """Business ids typed one per line or comma-separated, stored as a list."""

    business_ids = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 4}),
        help_text="The business ids this user may see, one per line or comma-separated. Empty: none at all "
        "(delete the row to let them see every business).",
    )

    class Meta:
        model = StaffScope
        fields = ["user", "business_ids"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk and not self.is_bound:
            self.initial["business_ids"] = "\n".join(self.instance.business_ids or [])

    def clean_business_ids(self) -> list[str]:
        raw = str(self.cleaned_data.get("business_ids") or "")
        ids = [part.strip() for line in raw.splitlines() for part in line.split(",") if part.strip()]
        too_long = [value for value in ids if len(value) > 128]
        if too_long:
            raise forms.ValidationError(f"A business id has at most 128 characters: {too_long[0][:40]!r}…")
        return sorted(set(ids))

    def clean_user(self) -> Any:
        user = self.cleaned_data["user"]
        if user.is_superuser:
            raise forms.ValidationError("Superusers always see every business; a scope would not apply.")
        return user


@admin.register(StaffScope)
class StaffScopeAdmin(admin.ModelAdmin):
    form = StaffScopeForm
    list_display = ["user", "businesses", "updated_at"]
    search_fields = ["user__username", "user__email"]
    list_select_related = ["user"]

    @admin.display(description="Businesses")
    def businesses(self, obj: StaffScope) -> str:
        return ", ".join(obj.business_ids or []) or "none"

    def has_module_permission(self, request: HttpRequest) -> bool:
        # Only superusers decide who sees which venue: a limited user must not widen their own scope.
        return bool(request.user.is_active and request.user.is_superuser)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return self.has_module_permission(request)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return self.has_module_permission(request)
