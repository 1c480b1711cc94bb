from __future__ import annotations

from django.urls import path

from support.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("conversations/", views.conversations, name="conversations"),
    path("conversations.csv", views.conversations_csv, name="conversations_csv"),
    path("conversations/<str:conversation_id>/", views.ticket, name="ticket"),
    path("analytics/", views.analytics, name="analytics"),
]
