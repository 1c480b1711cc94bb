"""GET tickets: escalated conversations with their messages, for staff."""

from __future__ import annotations

from rest_framework.request import Request
from rest_framework.response import Response

from support import selectors
from support.api.base import ApiViewSet, Pagination
from support.api.filters import FilterSerializer, read_filters
from support.api.openapi import errors, extend_schema
from support.api.serializers import ConversationWithMessagesOutputSerializer, represent


class TicketViewSet(ApiViewSet):
    policy_name = "tickets"
    pagination_class = Pagination  # also tells the schema the response is a page

    @extend_schema(
        parameters=[FilterSerializer],
        responses={200: ConversationWithMessagesOutputSerializer(many=True), **errors(400, 404)},
        operation_id="ticket_list",
    )
    def list(self, request: Request) -> Response:
        queryset = selectors.ticket_list(filters=read_filters(request), user=request.user, with_assignee=False)
        paginator = Pagination()
        page = list(paginator.paginate_queryset(queryset, request, view=self) or [])
        selectors.conversation_assignees_attach(page)
        selectors.conversation_messages_attach(page)
        data = [represent(ConversationWithMessagesOutputSerializer, c) for c in page]
        return paginator.get_paginated_response(data)
