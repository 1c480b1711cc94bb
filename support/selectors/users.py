"""Staff users: who tickets can be assigned to."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db.models import QuerySet


def staff_user_get(*, user_id: object) -> Any:
    User = get_user_model()
    try:
        pk = User._meta.pk.to_python(user_id)
        return User.objects.get(pk=pk, is_staff=True, is_active=True)
    except (ValidationError, ValueError, TypeError, User.DoesNotExist):
        return None


def staff_user_list() -> QuerySet:
    return get_user_model().objects.filter(is_staff=True, is_active=True).order_by("username")


def agent_display(user: Any) -> dict[str, str] | None:
    """How the customer sees a staff member: a first name and the initial for their badge, never their
    email or username (a username is often an email, or a handle the customer need not know)."""
    if user is None:
        return None
    first = " ".join(str(getattr(user, "first_name", "") or "").split())[:30]
    username = str(user.get_username() or "")
    initial = (first or username or "?")[0].upper()
    return {"name": first or initial, "initial": initial}
