from __future__ import annotations

from django.urls import path

from support.dashboard import botcheck, replies, views

app_name = "dashboard"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("queue/live", views.queue_live, name="queue_live"),
    path("conversations/", views.conversations, name="conversations"),
    path("conversations.csv", views.conversations_csv, name="conversations_csv"),
    path("conversations/<str:conversation_id>/", views.ticket, name="ticket"),
    path("conversations/<str:conversation_id>/reply", replies.ticket_reply, name="ticket_reply"),
    path("conversations/<str:conversation_id>/handoff", replies.ticket_handoff, name="ticket_handoff"),
    path("conversations/<str:conversation_id>/turns", replies.ticket_turns, name="ticket_turns"),
    path("analytics/", views.analytics, name="analytics"),
    path("bot-checks/", botcheck.bot_checks, name="bot_checks"),
    path("bot-checks/run", botcheck.bot_checks_run, name="bot_checks_run"),
]

# Issue 14: knowledge gaps.
from support.dashboard import gaps  # noqa: E402

urlpatterns += [
    path("gaps/", gaps.gap_list, name="gaps"),
    path("gaps/<str:key>/", gaps.gap_detail, name="gap"),
]
