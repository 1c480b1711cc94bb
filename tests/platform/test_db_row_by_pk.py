"""support.db.row_by_pk: the widget's fetch of its conversation by pk, with its statement prepared once per
connection instead of compiled by the ORM on every request, must load what the ORM loads, on both databases."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models.sql.query import Query
from django.utils import timezone

from support import db
from support.models import Conversation

pytestmark = pytest.mark.django_db


def _fields(conversation: Conversation) -> dict[str, Any]:
    return {field.attname: getattr(conversation, field.attname) for field in Conversation._meta.concrete_fields}


def test_it_loads_every_field_as_the_orm_does(make_conversation: Any, staff_user: Any) -> None:
    conversation, _ = make_conversation()
    Conversation.objects.filter(pk=conversation.pk).update(
        assigned_to=staff_user, closed_at=timezone.now(), rollup_marks={"day": "2026-11-30"}, rating="up"
    )
    found = db.row_by_pk(Conversation, conversation.pk)
    assert found is not None
    assert _fields(found) == _fields(Conversation.objects.get(pk=conversation.pk))
    assert found.closed_at is not None and found.closed_at.tzinfo is not None


def test_it_answers_none_for_an_unknown_pk(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    conversation.delete()
    assert db.row_by_pk(Conversation, conversation.pk) is None


def test_it_gives_an_instance_that_saves_as_an_update(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    found = db.row_by_pk(Conversation, conversation.pk)
    assert found is not None and not found._state.adding and found._state.db == "default"
    found.summary = "Where is my booking?"
    found.save(update_fields=["summary"])
    assert Conversation.objects.count() == 1
    assert Conversation.objects.get(pk=conversation.pk).summary == "Where is my booking?"


def test_it_does_not_compile_a_query_after_the_first_call(make_conversation: Any, monkeypatch: Any) -> None:
    first, _ = make_conversation()
    second, _ = make_conversation()
    assert db.row_by_pk(Conversation, first.pk) == first

    def no_compiler(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the ORM compiled a query")

    monkeypatch.setattr(Query, "get_compiler", no_compiler)
    assert db.row_by_pk(Conversation, second.pk) == second
