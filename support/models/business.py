"""Per-business (venue) settings: what the widget and hand-offs say for one business."""

from __future__ import annotations

from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from support import business_hours


def validate_business_hours(value: str) -> None:
    try:
        business_hours.parse(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class BusinessProfile(models.Model):
    """Optional: a business without a profile uses the site-wide SUPPORT_* settings."""

    business_id = models.CharField(
        max_length=128, unique=True, help_text="The site's own id for the business, as the widget sends it."
    )
    display_name = models.CharField(
        max_length=200, blank=True, help_text="Shown as the widget's title; blank: SUPPORT_WIDGET_TITLE."
    )
    greeting = models.CharField(
        max_length=500, blank=True, help_text="The widget's first line; blank: SUPPORT_WIDGET_GREETING."
    )
    business_hours = models.CharField(
        max_length=500,
        blank=True,
        validators=[validate_business_hours],
        help_text="When a person answers for this business, in SUPPORT_BUSINESS_HOURS format, e.g. "
        "'Europe/London; Mon-Fri 09:00-17:30'; blank: SUPPORT_BUSINESS_HOURS.",
    )
    support_email = models.EmailField(
        blank=True, help_text="The address hand-offs and the widget give out; blank: SUPPORT_EMAIL."
    )
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        db_table = "support_business_profiles"
        ordering = ["business_id"]

    def __str__(self) -> str:
        return self.display_name or self.business_id
