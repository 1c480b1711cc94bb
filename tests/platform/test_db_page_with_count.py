"""support.db.page_with_count and the API's paginator: a page of a list and the list's count, which on
MongoDB come from one aggregate (the filter once, a $facet of the count and the page's documents), the rows
built from those documents, or read again by pk where the query joins or defers; the same count and rows as
count() and a slice, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from django.db.models import F
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from support import db
from support.models import Conversation

pytestmark = pytest.mark.django_db


def _queue(make_conversation: Any) -> list[Conversation]:
    made = []
    for n, status in enumerate(["open", "closed", "needs_review", "open", "in_progress", "closed", "open"]):
        conversation, _ = make_conversation(business_id=f"venue-{n % 2}")
        Conversation.objects.filter(pk=conversation.pk).update(status=status, summary=f"ticket {n}")
        made.append(conversation)
    return made


def _listed(queryset: Any) -> list[str]:
    return [c.summary for c in queryset]


def test_it_gives_the_count_and_the_page_the_orm_gives(make_conversation: Any) -> None:
    _queue(make_conversation)
    queue = Conversation.objects.filter(status__in=["open", "needs_review", "in_progress"]).order_by("summary")
    for offset in (0, 2, 4, 9):
        count, rows = db.page_with_count(queue, offset, 2)
        assert (count, _listed(rows)) == (queue.count(), _listed(queue[offset : offset + 2]))
    assert _listed(db.page_with_count(queue, 0, 3)[1]) == ["ticket 0", "ticket 2", "ticket 3"]


def _fields(rows: list[Conversation]) -> list[dict[str, Any]]:
    return [{f.attname: getattr(row, f.attname) for f in Conversation._meta.concrete_fields} for row in rows]


def test_it_reads_the_count_and_the_page_of_whole_rows_in_one_command(make_conversation: Any, on_mongodb: bool) -> None:
    _queue(make_conversation)
    Conversation.objects.filter(summary="ticket 3").update(rollup_marks={"turns": [1, 2]}, escalated_at=timezone.now())
    queue = Conversation.objects.filter(status="open").order_by("-created_at")
    with CaptureQueriesContext(connection) as queries:
        count, rows = db.page_with_count(queue, 1, 5)
    assert (count, _fields(rows)) == (3, _fields(list(queue[1:6])))
    assert rows[0].summary == "ticket 3" and rows[0].rollup_marks == {"turns": [1, 2]}
    assert rows[0].escalated_at is not None and rows[0].escalated_at.tzinfo is not None
    if on_mongodb:
        sent = [q["sql"] for q in queries.captured_queries]
        assert len(sent) == 1 and "'$facet'" in sent[0], sent


def test_it_reads_the_rows_by_pk_where_the_page_joins_or_defers(
    make_conversation: Any, staff_user: Any, on_mongodb: bool
) -> None:
    made = _queue(make_conversation)
    Conversation.objects.filter(pk=made[3].pk).update(assigned_to=staff_user)
    joined = Conversation.objects.filter(status="open").select_related("assigned_to").order_by("-created_at")
    with CaptureQueriesContext(connection) as queries:
        count, rows = db.page_with_count(joined, 1, 5)
    assert (count, [r.assigned_to for r in rows]) == (3, [staff_user, None])
    deferred = Conversation.objects.filter(status="open").only("summary").order_by("-created_at")
    assert _listed(db.page_with_count(deferred, 0, 5)[1]) == ["ticket 6", "ticket 3", "ticket 0"]
    if on_mongodb:
        sent = [q["sql"] for q in queries.captured_queries]
        assert len(sent) == 2 and "'$facet'" in sent[0], sent
        assert "'$in'" in sent[1] and sent[1].index("'_id'") < sent[1].index("'$in'"), sent[1]


def test_it_counts_an_empty_list_and_a_page_past_its_end(make_conversation: Any) -> None:
    _queue(make_conversation)
    assert db.page_with_count(Conversation.objects.filter(status="spam").order_by("pk"), 0, 25) == (0, [])
    assert db.page_with_count(Conversation.objects.filter(pk__in=[]), 0, 25) == (0, [])
    assert db.page_with_count(Conversation.objects.order_by("pk"), 50, 25) == (7, [])


def test_the_api_pages_tickets_with_their_count_and_refuses_a_page_past_the_end(
    make_conversation: Any, staff_user: Any
) -> None:
    _queue(make_conversation)
    staff = APIClient()
    staff.force_authenticate(staff_user)
    first = staff.get("/api/support/tickets?page_size=3").json()
    second = staff.get("/api/support/tickets?page_size=3&page=2").json()
    assert (first["count"], second["count"]) == (5, 5)
    newest_first = ["ticket 6", "ticket 4", "ticket 3", "ticket 2", "ticket 0"]
    assert [t["summary"] for t in first["results"] + second["results"]] == newest_first
    assert first["next"] and second["next"] is None
    assert staff.get("/api/support/tickets?page_size=3&page=3").status_code == 404


def test_it_pages_an_order_by_a_computed_key(make_conversation: Any) -> None:
    _queue(make_conversation)
    Conversation.objects.filter(summary__in=["ticket 3", "ticket 6"]).update(first_response_due_at=timezone.now())
    queue = Conversation.objects.filter(status="open").order_by(F("first_response_due_at").asc(nulls_last=True), "pk")
    count, rows = db.page_with_count(queue, 0, 2)
    assert (count, _listed(rows)) == (3, _listed(queue[:2])) == (3, ["ticket 3", "ticket 6"])
