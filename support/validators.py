"""Validators shared by the API serializers, the dashboard forms and the models."""

from __future__ import annotations

from datetime import date

from django.core.exceptions import ValidationError

# An end date is included whole, so filters compare with the midnight after it; 9999-12-31 has none
# (date + 1 day overflows), so the last end date a filter can take is the day before.
LAST_END_DATE = date(9999, 12, 30)


def validate_end_date(value: date) -> None:
    if value > LAST_END_DATE:
        raise ValidationError(f"Must not be after {LAST_END_DATE.isoformat()}.", code="max_value")
