"""The poll's cached state: an ETag that changes with every reply and transition, also while widgets poll
at the same moment, a token checked from the cache as strictly as from the database, and the database
answering when the cache does not."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.db import connection
from django.test import override_settings
from rest_framework.test import APIClient

from support import poll_cache, selectors, services
from support.api import replies as reply_api
from support.models import Conversation, HandledBy, Message, Role

BASE = "/api/support"


def _url(conversation: Conversation, after: Any = None) -> str:
    url = f"{BASE}/conversations/{conversation.pk}/messages"
    return url if after is None else f"{url}?after={after}"


class _Widget:
    """What widget.js keeps between polls: the newest turn, the ETag, what it has shown."""

    def __init__(self, conversation: Conversation, token: str) -> None:
        self.conversation, self.client = conversation, APIClient()
        self.client.credentials(HTTP_X_CONVERSATION_TOKEN=token)
        self.last_id: str | None = None
        self.etag = ""
        self.shown: list[str] = []
        self.handled_by = ""

    def poll(self) -> int:
        headers = {"HTTP_IF_NONE_MATCH": self.etag} if self.etag else {}
        response = self.client.get(_url(self.conversation, self.last_id), **headers)
        if response.status_code == 200:
            body = response.json()
            self.shown += [m["id"] for m in body["messages"]]
            self.last_id = self.shown[-1] if self.shown else None
            self.handled_by = body["handled_by"]
            self.etag = response["ETag"]
        assert response.status_code in (200, 304), response.content
        return response.status_code


# The widgets poll in a tight loop for as long as the replies take: the per-IP limit is not the question here.
@override_settings(SUPPORT_THROTTLE_IP_RATE="1000000/min")
@pytest.mark.django_db(transaction=True)
def test_widgets_polling_while_staff_reply_and_hand_back_see_every_reply_and_the_last_handler(
    staff_user: Any,
) -> None:
    conversation, token = services.conversation_create()
    widgets = [_Widget(conversation, token) for _ in range(3)]
    for widget in widgets:
        widget.poll()
    done = threading.Event()
    errors: list[BaseException] = []

    def staff() -> None:
        try:
            for i in range(12):
                copy = Conversation.objects.get(pk=conversation.pk)
                services.conversation_reply(
                    conversation=copy, author=staff_user, content=f"reply {i}", hand_back=i == 11
                )
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)
        finally:
            done.set()
            connection.close()

    def poll(widget: _Widget) -> None:
        try:
            while not done.is_set():
                widget.poll()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=staff)] + [threading.Thread(target=poll, args=(w,)) for w in widgets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    replies = [
        str(pk)
        for pk in Message.objects.filter(conversation=conversation)
        .order_by("created_at", "pk")
        .values_list("pk", flat=True)
    ]
    assert len(replies) == 12
    for widget in widgets:
        widget.poll()  # the first poll after the last write: a stale tag would be a 304 here
        assert widget.shown == replies
        assert widget.handled_by == HandledBy.BOT
        assert widget.poll() == 304  # and then nothing is new


@pytest.mark.django_db
def test_a_transition_without_a_new_turn_changes_the_tag(make_conversation: Any, staff_user: Any) -> None:
    conversation, token = make_conversation()
    widget = _Widget(conversation, token)
    widget.poll()
    assert widget.poll() == 304

    services.conversation_update(conversation=conversation, actor=staff_user, changes={"status": "in_progress"})

    assert widget.poll() == 200
    assert widget.poll() == 304


@pytest.mark.django_db
def test_the_cached_token_check_refuses_a_wrong_token_even_with_the_right_tag(
    make_conversation: Any, widget: Any, anon: APIClient
) -> None:
    conversation, token = make_conversation()
    tag = widget(token).get(_url(conversation))["ETag"]
    assert widget(token).get(_url(conversation), HTTP_IF_NONE_MATCH=tag).status_code == 304  # cache warm

    assert widget("wrong").get(_url(conversation), HTTP_IF_NONE_MATCH=tag).status_code == 404
    assert anon.get(_url(conversation), HTTP_IF_NONE_MATCH=tag).status_code == 404
    assert widget(token).get(f"{_url(conversation)}?after=not-an-id", HTTP_IF_NONE_MATCH=tag).status_code == 400


@pytest.mark.django_db
def test_staff_get_304s_from_the_cache_and_are_not_the_customer(make_conversation: Any, staff: APIClient) -> None:
    conversation, _ = make_conversation()

    tag = staff.get(_url(conversation))["ETag"]
    unchanged = staff.get(_url(conversation), HTTP_IF_NONE_MATCH=tag)

    assert unchanged.status_code == 304
    assert selectors.conversation_last_seen(conversation=conversation) is None


class _Down:
    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise ConnectionError("cache down")

        return fail


@pytest.mark.django_db
def test_with_the_cache_down_the_poll_answers_from_the_database(
    make_conversation: Any, widget: Any, staff_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation, token = make_conversation()
    monkeypatch.setattr(poll_cache, "cache", _Down())
    monkeypatch.setattr(poll_cache, "_redis", lambda: None)
    client = widget(token)

    tag = client.get(_url(conversation))["ETag"]
    unchanged = client.get(_url(conversation), HTTP_IF_NONE_MATCH=tag)
    services.conversation_reply(conversation=conversation, author=staff_user, content="Hi")
    changed = client.get(_url(conversation), HTTP_IF_NONE_MATCH=tag)

    assert unchanged.status_code == 304
    assert changed.status_code == 200 and [m["role"] for m in changed.json()["messages"]] == [Role.AGENT]
    conversation.refresh_from_db()
    assert conversation.customer_last_seen_at is not None  # written straight to the database instead


@pytest.mark.django_db
@override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}})
def test_without_redis_the_poll_writes_the_last_seen_stamp_to_the_database(make_conversation: Any, widget: Any) -> None:
    conversation, token = make_conversation()
    client = widget(token)

    tag = client.get(_url(conversation))["ETag"]
    unchanged = client.get(_url(conversation), HTTP_IF_NONE_MATCH=tag)

    assert unchanged.status_code == 304
    conversation.refresh_from_db()
    assert conversation.customer_last_seen_at is not None


@override_settings(SUPPORT_THROTTLE_IP_RATE="4/min")
@pytest.mark.django_db
def test_the_poll_counts_in_the_per_ip_limit_it_shares_with_the_other_widget_calls(
    make_conversation: Any, widget: Any
) -> None:
    conversation, token = make_conversation()
    client = widget(token)

    tag = client.get(_url(conversation), REMOTE_ADDR="10.1.1.1")["ETag"]
    assert client.get(_url(conversation), HTTP_IF_NONE_MATCH=tag, REMOTE_ADDR="10.1.1.1").status_code == 304
    detail = client.get(f"{BASE}/conversations/{conversation.pk}", REMOTE_ADDR="10.1.1.1")
    assert detail.status_code == 200  # the third hit of 10.1.1.1, counted by ClientIPThrottle
    assert client.get(_url(conversation), HTTP_IF_NONE_MATCH=tag, REMOTE_ADDR="10.1.1.1").status_code == 304
    refused = client.get(_url(conversation), HTTP_IF_NONE_MATCH=tag, REMOTE_ADDR="10.1.1.1")
    other_ip = client.get(_url(conversation), HTTP_IF_NONE_MATCH=tag, REMOTE_ADDR="10.1.1.2")

    assert refused.status_code == 429, refused.content
    assert refused.json()["reason"] == "widget_ip"
    assert 0 < int(refused["Retry-After"]) <= 60
    assert other_ip.status_code == 304


@pytest.mark.django_db(transaction=True)
def test_sixty_concurrent_polls_from_one_ip_get_exactly_the_limit(settings: Any) -> None:
    settings.SUPPORT_THROTTLE_IP_RATE = "25/min"
    conversation, token = services.conversation_create()
    client = APIClient()
    client.credentials(HTTP_X_CONVERSATION_TOKEN=token)
    tag = client.get(_url(conversation), REMOTE_ADDR="10.2.2.2")["ETag"]  # the first of the 25
    barrier = threading.Barrier(12)

    def poll(i: int) -> int:
        try:
            if i < 12:
                barrier.wait(timeout=30)
            return int(client.get(_url(conversation), HTTP_IF_NONE_MATCH=tag, REMOTE_ADDR="10.2.2.2").status_code)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = sorted(pool.map(poll, range(60)))

    assert statuses.count(304) == 24, statuses
    assert statuses.count(429) == 36


@pytest.mark.django_db
def test_with_the_limiter_in_its_own_store_the_poll_counts_there(
    make_conversation: Any, widget: Any, settings: Any, tmp_path: Any
) -> None:
    settings.SUPPORT_RATE_LIMIT_STORAGE = f"sqlite:///{tmp_path / 'limits.sqlite3'}"
    settings.SUPPORT_THROTTLE_IP_RATE = "2/min"
    conversation, token = make_conversation()
    client = widget(token)

    tag = client.get(_url(conversation), REMOTE_ADDR="10.3.3.3")["ETag"]
    unchanged = client.get(_url(conversation), HTTP_IF_NONE_MATCH=tag, REMOTE_ADDR="10.3.3.3")
    refused = client.get(_url(conversation), HTTP_IF_NONE_MATCH=tag, REMOTE_ADDR="10.3.3.3")

    assert unchanged.status_code == 304
    assert refused.status_code == 429 and refused.json()["reason"] == "widget_ip"


@pytest.mark.django_db
def test_a_version_the_cache_refused_to_renew_is_renewed_before_the_next_poll_is_answered(
    make_conversation: Any, staff_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation, token = make_conversation()
    widget = _Widget(conversation, token)
    widget.poll()
    real_set = poll_cache.cache.set

    def down_for_versions(key: str, *args: Any, **kwargs: Any) -> Any:
        if key.startswith("poll:v:"):
            raise ConnectionError("cache down")
        return real_set(key, *args, **kwargs)

    with monkeypatch.context() as patched:
        patched.setattr(poll_cache.cache, "set", down_for_versions)
        services.conversation_reply(conversation=conversation, author=staff_user, content="Sam here.")

    assert widget.poll() == 200
    assert len(widget.shown) == 1


@pytest.mark.django_db
def test_a_widget_that_polled_while_the_cache_was_down_gets_a_304_once_it_is_back(
    make_conversation: Any, staff_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation, token = make_conversation()
    services.conversation_reply(conversation=conversation, author=staff_user, content="Sam here.")
    widget = _Widget(conversation, token)
    with monkeypatch.context() as patched:
        patched.setattr(poll_cache, "cache", _Down())
        patched.setattr(poll_cache, "_redis", lambda: None)
        assert widget.poll() == 200  # a tag made of the rows
        assert widget.poll() == 304

    assert widget.poll() == 304  # the cache is back: same answer, no second 200
    services.conversation_reply(conversation=conversation, author=staff_user, content="Still there?")
    assert widget.poll() == 200
    assert len(widget.shown) == 2


@pytest.mark.django_db
def test_a_200_with_new_turns_carries_the_tag_of_the_next_poll_unless_the_page_was_cut(
    make_conversation: Any, staff_user: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    conversation, token = make_conversation()
    widget = _Widget(conversation, token)
    widget.poll()
    services.conversation_reply(conversation=conversation, author=staff_user, content="Sam here.")

    assert widget.poll() == 200 and len(widget.shown) == 1
    assert widget.poll() == 304  # after its new last turn: no 200 with nothing new

    monkeypatch.setattr(reply_api, "POLL_LIMIT", 2)
    services.message_log(
        conversation=conversation,
        turns=[services.Turn(role=Role.USER, content=f"turn {i}", priced=False) for i in range(3)],
    )
    assert widget.poll() == 200 and len(widget.shown) == 3  # a page of two
    assert widget.poll() == 200 and len(widget.shown) == 4  # the rest, not a 304
    assert widget.poll() == 304


@pytest.mark.django_db
def test_a_deleted_conversation_is_not_answered_from_the_cache(make_conversation: Any, widget: Any) -> None:
    conversation, token = make_conversation()
    tag = widget(token).get(_url(conversation))["ETag"]
    assert widget(token).get(_url(conversation), HTTP_IF_NONE_MATCH=tag).status_code == 304  # cache warm

    services.conversations_delete(
        conversations=Conversation.objects.filter(pk=conversation.pk), kind="admin", operator="test", matched={}
    )

    assert widget(token).get(_url(conversation), HTTP_IF_NONE_MATCH=tag).status_code == 404


@pytest.mark.django_db
def test_versions_started_together_expire_spread_out_not_in_one_burst(make_conversation: Any) -> None:
    client = poll_cache._redis()
    if client is None:
        pytest.skip("the expiry is read from Redis")
    pks = [make_conversation()[0].pk for _ in range(12)]

    for pk in pks:
        poll_cache.version_get_or_add(pk)
    ttls = [client.ttl(poll_cache.cache.make_key(poll_cache.version_key(pk))) for pk in pks]

    assert all(poll_cache.VERSION_TTL_S * 3 // 4 - 1 <= ttl <= poll_cache.VERSION_TTL_S for ttl in ttls), ttls
    assert len(set(ttls)) > 1, "every widget of a restart would get its 200 in the same second"
