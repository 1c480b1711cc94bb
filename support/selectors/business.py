"""Per-business settings (BusinessProfile) merged over the site-wide ones, and a verified customer's history."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from support import business_hours
from support.business_hours import BusinessHours
from support.models import BusinessProfile, Conversation
from support.selectors.scope import conversation_scope


@dataclass(frozen=True)
class Venue:
    """What the widget and the hand-off messages say for one business (site-wide settings where unset)."""

    business_id: str
    title: str
    greeting: str
    support_email: str
    hours: BusinessHours


def business_profile_get(*, business_id: str) -> BusinessProfile | None:
    if not business_id:
        return None
    return BusinessProfile.objects.filter(business_id=business_id).first()


def venue_for(*, business_id: str) -> Venue:
    """The venue's public face. Display settings only (nothing private), so the page's stated business_id is
    enough; the knowledge base, which may be private, is scoped by the verified one (support.bot.scope)."""
    profile = business_profile_get(business_id=business_id)
    hours = business_hours.configured()
    if profile is not None and profile.business_hours:
        hours = business_hours.parse(profile.business_hours)
    return Venue(
        business_id=business_id,
        title=(profile and profile.display_name) or settings.SUPPORT_WIDGET_TITLE,
        greeting=(profile and profile.greeting) or settings.SUPPORT_WIDGET_GREETING,
        support_email=(profile and profile.support_email) or settings.SUPPORT_EMAIL,
        hours=hours,
    )


def customer_history(
    *, user_id: str, exclude_pk: int | str | None = None, viewer: Any = None
) -> QuerySet[Conversation] | None:
    """A verified customer's verified conversations, newest first (SUPPORT_IDENTITY_HISTORY_LIMIT of them);
    None without a user id. Unverified conversations never join: anyone could have typed that user_id.
    With a staff `viewer`, only the businesses that user may see (their StaffScope)."""
    if not user_id:
        return None
    queryset = Conversation.objects.filter(user_id=user_id, identity_verified=True).order_by("-created_at", "-pk")
    if viewer is not None:
        queryset = conversation_scope(queryset, user=viewer)
    if exclude_pk is not None:
        queryset = queryset.exclude(pk=exclude_pk)
    return queryset[: settings.SUPPORT_IDENTITY_HISTORY_LIMIT]
