"""Which businesses a staff user may see (StaffScope), and the one filter that applies it to conversations.

Every staff surface (queue, ticket list, ticket page, API, analytics, CSV export) goes through
conversation_scope or, for the rollups, allowed_business_ids: a limited user never reads another venue.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.db.models import Model, QuerySet

from support.models import StaffScope

_M = TypeVar("_M", bound=Model)

#: Where the lookup is kept on the user object, so a request asks the database once.
_CACHE_ATTR = "_support_business_scope"


def allowed_business_ids(*, user: Any) -> frozenset[str] | None:
    """The business ids `user` may see, or None for every business (superusers; staff without a StaffScope).

    Anyone who is not a signed-in staff user may see none: the caller forgot to check, so nothing leaks."""
    if user is None or not getattr(user, "is_authenticated", False) or not getattr(user, "is_staff", False):
        return frozenset()
    if user.is_superuser:
        return None
    if not hasattr(user, _CACHE_ATTR):
        row = StaffScope.objects.filter(user_id=user.pk).values_list("business_ids", flat=True).first()
        setattr(user, _CACHE_ATTR, None if row is None else frozenset(str(b) for b in row or []))
    scope: frozenset[str] | None = getattr(user, _CACHE_ATTR)
    return scope


def conversation_scope(queryset: QuerySet[_M], *, user: Any, field: str = "business_id") -> QuerySet[_M]:
    """`queryset` (conversations, or rollup rows: anything with a business_id) limited to what `user` may see."""
    allowed = allowed_business_ids(user=user)
    if allowed is None:
        return queryset
    return queryset.filter(**{f"{field}__in": sorted(allowed)})


def business_visible(*, user: Any, business_id: str) -> bool:
    allowed = allowed_business_ids(user=user)
    return allowed is None or business_id in allowed
