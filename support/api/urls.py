from __future__ import annotations

from django.urls import path

from support.api import chat, views
from support.api.schema import method_dispatch

app_name = "support_api"

urlpatterns = [
    path(
        "conversations",
        method_dispatch(get=views.ConversationListApi, post=views.ConversationCreateApi),
        name="conversations",
    ),
    path(
        "conversations/<str:conversation_id>",
        method_dispatch(get=views.ConversationDetailApi, patch=views.ConversationUpdateApi),
        name="conversation",
    ),
    path("conversations/<str:conversation_id>/messages", views.MessageCreateApi.as_view(), name="messages"),
    path("conversations/<str:conversation_id>/chat", chat.ChatApi.as_view(), name="chat"),
    path("conversations/<str:conversation_id>/rating", views.ConversationRateApi.as_view(), name="rating"),
    path("conversations/<str:conversation_id>/contact", views.ConversationContactApi.as_view(), name="contact"),
    path("widget/config", views.WidgetConfigApi.as_view(), name="widget-config"),
    path("tickets", views.TicketListApi.as_view(), name="tickets"),
    path("analytics", views.AnalyticsApi.as_view(), name="analytics"),
]
