"""selectors.venue_for and selectors.customer_history (issue 15)."""

from __future__ import annotations

from typing import Any

import pytest

from support import business_hours, selectors, services
from support.identity import Identity
from support.models import BusinessProfile

pytestmark = pytest.mark.django_db


def test_a_venue_without_a_profile_uses_the_site_wide_settings(settings: Any) -> None:
    venue = selectors.venue_for(business_id="b404")
    assert (venue.title, venue.greeting, venue.support_email) == (
        settings.SUPPORT_WIDGET_TITLE,
        settings.SUPPORT_WIDGET_GREETING,
        settings.SUPPORT_EMAIL,
    )
    assert venue.hours == business_hours.configured()


def test_a_profiles_blank_fields_fall_back_one_by_one(settings: Any) -> None:
    BusinessProfile.objects.create(
        business_id="b7", display_name="Sette", business_hours="Europe/Rome; Mon 09:00-17:00"
    )
    venue = selectors.venue_for(business_id="b7")
    assert (venue.title, venue.greeting, venue.support_email) == (
        "Sette",
        settings.SUPPORT_WIDGET_GREETING,
        settings.SUPPORT_EMAIL,
    )
    assert venue.hours.zone == "Europe/Rome"


def test_history_lists_only_verified_conversations_of_the_user_newest_first(settings: Any) -> None:
    settings.SUPPORT_IDENTITY_HISTORY_LIMIT = 2
    made = [services.conversation_create(identity=Identity(user_id="u1", verified=True))[0] for _ in range(3)]
    services.conversation_create(identity=Identity(user_id="u1"))
    services.conversation_create(identity=Identity(user_id="u2", verified=True))
    history = selectors.customer_history(user_id="u1")
    assert history is not None
    assert [c.pk for c in history] == [made[2].pk, made[1].pk]
    assert [c.pk for c in selectors.customer_history(user_id="u1", exclude_pk=made[2].pk) or []] == [
        made[1].pk,
        made[0].pk,
    ]


def test_history_without_a_user_id_is_none() -> None:
    assert selectors.customer_history(user_id="") is None
