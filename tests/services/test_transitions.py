"""Conversation state changes: one transition function, exact rollups under concurrency, 409 not 500."""

from __future__ import annotations

import random
import threading
from collections import Counter
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from support import selectors, services
from support.models import (
    QUEUE_STATUSES,
    Conversation,
    DailyCloseRollup,
    DailyConversationRollup,
    EscalationReason,
    Rating,
    Status,
    TicketEvent,
)
from support.services import conversations
from tests.services.test_rollups import snapshot

BASE = "/api/support"
THREADS = 40
OPS_PER_THREAD = 4
NO_THROTTLES = {
    "SUPPORT_THROTTLE_IP_RATE": "100000/min",
    "SUPPORT_THROTTLE_CONVERSATION_RATE": "100000/min",
    # The mix includes the seed widget's flagged messages (its own logging).
    "SUPPORT_CLIENT_LOGGING": "seed",
}


def _staff_client(user: Any) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.get_or_create(user=user)[0].key}")
    return client


def _widget_client(token: str) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_X_CONVERSATION_TOKEN=token)
    return client


def _random_op(rng: random.Random, *, staff_user: Any) -> tuple[str, str, dict[str, Any]]:
    """(who, path suffix, body) of one random state change: PATCH, rating, contact or a flagged message."""
    kind = rng.choice(["patch", "patch", "rating", "contact", "flag"])
    if kind == "patch":
        body: dict[str, Any] = rng.choice(
            [
                {"status": rng.choice(Status.values)},
                {"escalated": rng.choice([True, False])},
                {"status": Status.CLOSED, "escalated": True},
                {"escalation_reason": rng.choice(EscalationReason.values)},
                {"assigned_to": rng.choice([str(staff_user.pk), None])},
            ]
        )
        return "staff", "", body
    if kind == "rating":
        return "widget", "/rating", {"rating": rng.choice(Rating.values)}
    if kind == "contact":
        return "widget", "/contact", {"email": f"diner{rng.randrange(5)}@example.com"}
    return "widget", "/messages", {"user_message": "help", "assistant_message": "Email us.", "is_escalation": True}


def _run_mix(*, seed: int, staff_user: Any, conversations: list[tuple[Conversation, str]]) -> Counter[int]:
    statuses: Counter[int] = Counter()
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(index: int) -> None:
        rng = random.Random(seed * 1000 + index)
        staff = _staff_client(staff_user)
        try:
            for _ in range(OPS_PER_THREAD):
                conversation, token = rng.choice(conversations)
                who, suffix, body = _random_op(rng, staff_user=staff_user)
                url = f"{BASE}/conversations/{conversation.pk}{suffix}"
                if who == "staff":
                    response = staff.patch(url, body, format="json")
                else:
                    response = _widget_client(token).post(url, body, format="json")
                with lock:
                    statuses[response.status_code] += 1
                if response.status_code >= 500:
                    errors.append(AssertionError(f"{url} {body} -> {response.status_code} {response.content!r}"))
        except BaseException as exc:  # noqa: BLE001 - reported by the caller's assertion
            errors.append(exc)
        finally:
            connection.close()

    with override_settings(**NO_THROTTLES):
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(THREADS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert errors == [], errors[:3]
    return statuses


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("seed", [11, 2026])
def test_a_random_concurrent_mix_of_state_changes_keeps_the_rollups_equal_to_a_rebuild(
    seed: int, staff_user: Any
) -> None:
    conversations = [services.conversation_create(source=source) for source in ("web", "web", "app_owner")]

    statuses = _run_mix(seed=seed, staff_user=staff_user, conversations=conversations)

    assert set(statuses) <= {200, 201, 409}, statuses
    # A conflict that outlasts the retries is a 409 the client may repeat; most changes must get through.
    assert statuses[409] <= THREADS * OPS_PER_THREAD // 10, statuses
    assert not DailyConversationRollup.objects.filter(conversations__lt=0).exists()
    assert not DailyCloseRollup.objects.filter(conversations__lt=0).exists()
    # The rows a state change moves. (Usage rows are message logging's: not compared here.)
    live = {name: rows for name, rows in snapshot().items() if name in ("state", "closes")}
    services.rollups_rebuild()
    assert {name: rows for name, rows in snapshot().items() if name in ("state", "closes")} == live
    assert sum(row[-1] for row in live["state"]) == len(conversations)


@pytest.mark.django_db
def test_an_escalation_racing_a_change_of_rating_or_reason_is_recomputed_from_the_stored_row(
    staff_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A competing writer changes a rollup field other than status/escalated between the read and the write."""
    write = conversations._transition_write
    competitors = {
        "rating": lambda pk: services.conversation_rate(conversation=Conversation.objects.get(pk=pk), rating="up"),
        "escalation_reason": lambda pk: services.conversation_update(
            conversation=Conversation.objects.get(pk=pk), actor=staff_user, changes={"escalation_reason": "staff"}
        ),
    }
    for field, compete in competitors.items():
        conversation, _ = services.conversation_create(source="web")
        pending = [compete]

        def racing_write(*, conversation: Conversation, pending: list[Any] = pending, **kwargs: Any) -> bool:
            if pending:
                pending.pop()(conversation.pk)
            return write(conversation=conversation, **kwargs)

        monkeypatch.setattr(conversations, "_transition_write", racing_write)
        assert services.conversation_escalate(conversation=conversation, reason=EscalationReason.BOT_TOOL)
        monkeypatch.setattr(conversations, "_transition_write", write)
        stored = Conversation.objects.get(pk=conversation.pk)
        assert (stored.status, stored.escalation_reason) == (Status.NEEDS_REVIEW, EscalationReason.BOT_TOOL), field
        assert stored.rating == ("up" if field == "rating" else "")
    live = snapshot()
    services.rollups_rebuild()
    assert snapshot() == live


def _always_losing(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every compare-and-set finds the rating changed by someone else just before it."""
    write = conversations._transition_write

    def losing_write(*, conversation: Conversation, **kwargs: Any) -> bool:
        stored = Conversation.objects.get(pk=conversation.pk)
        flipped = Rating.UP if stored.rating != Rating.UP else Rating.DOWN
        Conversation.objects.filter(pk=conversation.pk).update(rating=flipped)
        return write(conversation=conversation, **kwargs)

    monkeypatch.setattr(conversations, "_transition_write", losing_write)


@pytest.mark.django_db
def test_a_conflict_that_outlasts_the_retries_is_a_409_json_and_writes_nothing(
    staff_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation, _ = services.conversation_create(source="web")
    before = snapshot()
    _always_losing(monkeypatch)
    response = _staff_client(staff_user).patch(
        f"{BASE}/conversations/{conversation.pk}", {"status": Status.CLOSED}, format="json"
    )
    assert response.status_code == 409
    assert response.json()["reason"] == "conflict"
    assert "try again" in response.json()["detail"]
    stored = Conversation.objects.get(pk=conversation.pk)
    assert stored.status == Status.AUTO_RESOLVED
    assert not TicketEvent.objects.filter(conversation=conversation).exists()
    assert snapshot() == before


@pytest.mark.django_db
def test_the_dashboard_shows_a_conflict_as_a_message_not_an_error_page(
    client: Any, staff_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation, _ = services.conversation_create(source="web")
    client.force_login(staff_user)
    _always_losing(monkeypatch)
    response = client.post(
        f"/dashboard/conversations/{conversation.pk}/", {"action": "status", "status": Status.CLOSED}, follow=True
    )
    assert response.status_code == 200
    assert "kept changing" in response.content.decode()
    assert Conversation.objects.get(pk=conversation.pk).status == Status.AUTO_RESOLVED


@pytest.mark.django_db
def test_a_thumbs_down_flags_an_auto_resolved_conversation_for_review(staff_user: Any) -> None:
    conversation, token = services.conversation_create(source="web")
    response = _widget_client(token).post(
        f"{BASE}/conversations/{conversation.pk}/rating", {"rating": "down"}, format="json"
    )
    assert response.status_code == 200
    stored = Conversation.objects.get(pk=conversation.pk)
    assert (stored.status, stored.escalated, stored.escalation_reason) == (
        Status.NEEDS_REVIEW,
        True,
        EscalationReason.THUMBS_DOWN,
    )
    assert stored.escalated_at is not None
    fields = list(TicketEvent.objects.filter(conversation=stored).order_by("pk").values_list("field", flat=True))
    assert fields == ["rating", "escalated", "status", "escalation_reason"]
    assert stored.pk in {c.pk for c in selectors.ticket_list(filters=selectors.ConversationFilters())}
    by_reason = selectors.analytics_summary(days=7)["escalations_by_reason"]
    assert by_reason == [{"reason": "thumbs_down", "label": "Customer gave a thumbs-down", "count": 1}]
    live = snapshot()
    services.rollups_rebuild()
    assert snapshot() == live


@pytest.mark.django_db
def test_a_thumbs_down_leaves_a_ticket_staff_are_working_on_as_it_is(staff_user: Any) -> None:
    conversation, _ = services.conversation_create(source="web")
    services.conversation_update(conversation=conversation, actor=staff_user, changes={"status": Status.IN_PROGRESS})
    services.conversation_rate(conversation=conversation, rating=Rating.DOWN)
    stored = Conversation.objects.get(pk=conversation.pk)
    assert stored.status == Status.IN_PROGRESS and stored.status in QUEUE_STATUSES
    assert (stored.rating, stored.escalated, stored.escalation_reason) == (Rating.DOWN, False, "")


@pytest.mark.django_db
def test_a_thumbs_up_or_a_repeated_thumbs_down_does_not_flag_again(staff_user: Any) -> None:
    liked, _ = services.conversation_create(source="web")
    services.conversation_rate(conversation=liked, rating=Rating.UP)
    assert Conversation.objects.get(pk=liked.pk).status == Status.AUTO_RESOLVED
    disliked, _ = services.conversation_create(source="web")
    services.conversation_rate(conversation=disliked, rating=Rating.DOWN)
    services.conversation_update(conversation=disliked, actor=staff_user, changes={"status": Status.CLOSED})
    services.conversation_rate(conversation=disliked, rating=Rating.DOWN)
    assert Conversation.objects.get(pk=disliked.pk).status == Status.CLOSED
