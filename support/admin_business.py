"""Admin for per-business settings (issue 15): one BusinessProfile per venue, all fields optional."""

from __future__ import annotations

from django.contrib import admin

from support.models import BusinessProfile


@admin.register(BusinessProfile)
class BusinessProfileAdmin(admin.ModelAdmin):
    list_display = ["business_id", "display_name", "support_email", "business_hours", "updated_at"]
    search_fields = ["business_id", "display_name", "support_email"]
    fields = ["business_id", "display_name", "greeting", "business_hours", "support_email"]
