"""What every API view shares: rate limits that name themselves on 429, the per-conversation limits run
after the token check, and the ViewSet base that reads support/api/policies.py."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, ClassVar

from django.conf import settings
from django.core.paginator import Page
from django.core.paginator import Paginator as DjangoPaginator
from django.db.models import QuerySet
from rest_framework import viewsets
from rest_framework.pagination import PageNumberPagination
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from support import db
from support.api.access import conversation_for_request
from support.api.openapi import TOKEN_PARAMETER, SchemaOnDemand
from support.api.policies import POLICIES, Policy
from support.api.ratelimit import RateLimited
from support.api.throttles import ClientIPThrottle, PerConversationThrottle
from support.models import Conversation

__all__ = ["TOKEN_PARAMETER", "ApiViewSet", "Pagination", "WidgetApi", "max_turns_refusal", "single_line"]

_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")

#: Retry-After for a conversation at its turn limit. The limit never lifts for that conversation
#: (start a new one); the header is there because every 429 of this API carries one.
MAX_TURNS_RETRY_AFTER_S = 24 * 60 * 60


def max_turns_refusal() -> RateLimited:
    return RateLimited(
        reason="max_turns",
        wait=MAX_TURNS_RETRY_AFTER_S,
        detail=f"This conversation has reached its limit of {settings.SUPPORT_CHAT_MAX_TURNS} "
        "turns; start a new conversation.",
    )


def single_line(value: str) -> str:
    """Header-like values (user agent) lose control characters so they cannot forge log or header lines."""
    return _CONTROL_CHARS.sub(" ", value).strip()


class _CountedPaginator(DjangoPaginator):
    """Django's Paginator, with a page of a queryset read together with its count (db.page_with_count)."""

    def page(self, number: Any) -> Any:
        try:
            wanted = int(number)
        except (TypeError, ValueError):
            wanted = 0
        if wanted < 1 or self.orphans or "count" in self.__dict__ or not isinstance(self.object_list, QuerySet):
            return super().page(number)
        count, rows = db.page_with_count(self.object_list, (wanted - 1) * self.per_page, self.per_page)
        self.__dict__["count"] = count  # Paginator.count is a cached_property
        return Page(rows, self.validate_number(number), self)


class Pagination(PageNumberPagination):
    django_paginator_class = _CountedPaginator
    page_size = 25
    page_size_query_param = "page_size"
    max_page_size = 100


def _throttle(request: Request, view: Any, throttle: BaseThrottle) -> None:
    if not throttle.allow_request(request, view):
        raise RateLimited(reason=getattr(throttle, "scope", "rate_limited"), wait=throttle.wait())


# No docstrings on these bases: drf-spectacular would print them as every operation's description.


class _ConversationChecks:
    # Rate limits raised as RateLimited, and conversation_checked() for the per-conversation ones.

    checked_conversation: Conversation | None = None

    def get_throttles(self) -> Sequence[BaseThrottle]:
        raise NotImplementedError

    def conversation_throttles(self) -> Sequence[PerConversationThrottle]:
        raise NotImplementedError

    def check_throttles(self, request: Request) -> None:
        for throttle in self.get_throttles():
            _throttle(request, self, throttle)

    def conversation_checked(
        self, request: Request, conversation_id: str, *, with_assignee: bool = True
    ) -> Conversation:
        """conversation_for_request(), then the per-conversation limits."""
        self.checked_conversation = conversation_for_request(request, conversation_id, with_assignee=with_assignee)
        for throttle in self.conversation_throttles():
            _throttle(request, self, throttle)
        return self.checked_conversation


class WidgetApi(_ConversationChecks, APIView):
    # Base of an APIView the public widget calls (POST conversations/{id}/chat): throttled per client IP,
    # then per conversation once its token is checked; the limit is named on 429.

    throttle_classes = [ClientIPThrottle]
    conversation_throttle_classes: ClassVar[list[type[PerConversationThrottle]]] = []

    def get_throttles(self) -> list[BaseThrottle]:
        return APIView.get_throttles(self)

    def conversation_throttles(self) -> list[PerConversationThrottle]:
        return [throttle_class() for throttle_class in self.conversation_throttle_classes]


class ApiViewSet(_ConversationChecks, viewsets.ViewSet):
    # A plain ViewSet (no generic or model ViewSet: every write goes through a service) whose
    # permissions and rate limits per action come from POLICIES.

    policy_name: ClassVar[str]
    lookup_field = "conversation_id"
    lookup_value_converter = "str"  # <str:conversation_id>, as the seed's paths always were
    schema = SchemaOnDemand()  # issue 13: the router builds the URLs without loading the schema generator

    @property
    def policy(self) -> Policy:
        action = "metadata/detail" if self.action == "metadata" and self.detail else self.action
        return POLICIES.get((self.policy_name, action)) or POLICIES[(self.policy_name, None)]

    def get_permissions(self) -> list[BasePermission]:
        return [permission() for permission in self.policy.permissions]

    def get_throttles(self) -> list[BaseThrottle]:
        return [throttle() for throttle in self.policy.throttles]

    def conversation_throttles(self) -> list[PerConversationThrottle]:
        return [throttle() for throttle in self.policy.conversation_throttles]
