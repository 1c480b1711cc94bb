"""A request's objects are freed when it ends, not left for the garbage collector.

A DRF serializer made per request is a reference cycle (each field points back at its serializer), and
everything it read (the page of conversations, their turns) stayed alive until a full collection found it:
thousands of objects a staff read, collected in pauses of 50-96 ms that stop every thread of the worker
(`make bench-polling`). The API serialises through one shared instance per class (represent/validated)."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from rest_framework.fields import Field

from support.models import Conversation, Message

pytestmark = pytest.mark.django_db
WATCHED = (Field, Message, Conversation)


@pytest.fixture
def cyclic_garbage() -> Iterator[Callable[[Callable[[], Any]], list[str]]]:
    """Run a callable and name the request's objects that only the cycle collector could free."""

    def left_in_cycles(call: Callable[[], Any]) -> list[str]:
        gc.collect()
        gc.garbage.clear()
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            call()
            gc.collect()
            # type(), not isinstance(): the latter evaluates a lazy object (request.user, the CSP nonce).
            return sorted({type(o).__name__ for o in gc.garbage if issubclass(type(o), WATCHED)})
        finally:
            gc.set_debug(0)
            gc.garbage.clear()

    yield left_in_cycles


@pytest.fixture
def escalated(make_conversation: Any, staff: Any) -> tuple[str, str]:
    conversation, token = make_conversation()
    url = f"/api/support/conversations/{conversation.pk}"
    for n in range(3):
        body = {"user_message": f"question {n}", "assistant_message": "answer", "input_tokens": 10, "output_tokens": 5}
        assert staff.post(f"{url}/messages", body, format="json").status_code == 201
    assert staff.patch(url, {"escalated": True}, format="json").status_code == 200
    return str(conversation.pk), token


def test_staff_reads_leave_no_serializer_or_turn_in_cycles(cyclic_garbage: Any, staff: Any, escalated: Any) -> None:
    conversation_id, _token = escalated
    assert cyclic_garbage(lambda: staff.get("/api/support/tickets?page_size=25")) == []
    assert cyclic_garbage(lambda: staff.get("/api/support/conversations?page_size=50&status=open")) == []
    assert cyclic_garbage(lambda: staff.get(f"/api/support/conversations/{conversation_id}")) == []


def test_writes_leave_no_serializer_or_turn_in_cycles(
    cyclic_garbage: Any, staff: Any, widget: Any, escalated: Any
) -> None:
    conversation_id, token = escalated
    url = f"/api/support/conversations/{conversation_id}"
    assert cyclic_garbage(lambda: staff.patch(url, {"status": "in_progress"}, format="json")) == []
    assert cyclic_garbage(lambda: widget(token).get(url)) == []
    assert (
        cyclic_garbage(lambda: widget(token).post("/api/support/conversations", {"source": "web"}, format="json")) == []
    )
    reply = {"content": "Hello, Sam here."}
    assert cyclic_garbage(lambda: staff.post(f"{url}/replies", reply, format="json")) == []


def test_bad_input_is_still_named_by_field(staff: Any, escalated: Any) -> None:
    conversation_id, _token = escalated
    response = staff.patch(f"/api/support/conversations/{conversation_id}", {"status": "nonsense"}, format="json")
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"status"}
