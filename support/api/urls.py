from __future__ import annotations

from django.urls import path
from rest_framework.routers import SimpleRouter

from support.api.analytics import AnalyticsViewSet
from support.api.chat import ChatApi
from support.api.conversations import ConversationViewSet
from support.api.customer_history import CustomerHistoryViewSet
from support.api.tickets import TicketViewSet
from support.api.widget_config import WidgetConfigViewSet

app_name = "support_api"

#: The seed's paths have no trailing slash: conversations, conversations/{id}, conversations/{id}/messages...
router = SimpleRouter(trailing_slash=False, use_regex_path=False)

router.register("conversations", ConversationViewSet, basename="conversation")
router.register("tickets", TicketViewSet, basename="tickets")
router.register("analytics", AnalyticsViewSet, basename="analytics")
router.register("widget/config", WidgetConfigViewSet, basename="widget-config")
router.register("widget/history", CustomerHistoryViewSet, basename="widget-history")

urlpatterns = [
    *router.urls,
    # The chat proxy streams its reply: its own APIView, not a ViewSet action.
    path("conversations/<str:conversation_id>/chat", ChatApi.as_view(), name="chat"),
]
