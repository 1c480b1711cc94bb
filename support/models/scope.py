"""Which businesses a staff user may see (issue 15): no row, or a superuser, sees every business."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class StaffScope(models.Model):
    """Limits one staff user to some businesses: every list, ticket, analytics figure and export they see.

    Superusers always see everything; a staff user without a row sees every business, as before.
    """

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="support_scope",
        limit_choices_to={"is_staff": True},
        help_text="The staff user limited (superusers are never limited).",
    )
    business_ids = models.JSONField(
        default=list,
        blank=True,
        help_text="The business ids (Conversation.business_id) this user may see; empty: none at all.",
    )
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "support_staff_scopes"
        verbose_name = "staff business scope"

    def __str__(self) -> str:
        return f"{self.user}: {', '.join(self.business_ids) or 'no business'}"
