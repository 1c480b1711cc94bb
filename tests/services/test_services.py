"""Pricing, counters and history written by support.services."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone

from support import pricing, rollups, services
from support.models import Conversation, Message, ModelPrice, TicketEvent


def _price(**micros: int) -> ModelPrice:
    defaults = dict(
        input_per_mtok_micros=1_000_000,
        output_per_mtok_micros=5_000_000,
        cache_write_5m_per_mtok_micros=1_250_000,
        cache_write_1h_per_mtok_micros=2_000_000,
        cache_read_per_mtok_micros=100_000,
    )
    return ModelPrice(model="m", effective_from=timezone.now(), **(defaults | micros))


def test_the_seed_figure_holds_45_input_and_105_output_tokens_on_haiku_cost_570_micro_usd() -> None:
    price = _price()
    assert pricing.cost_micros(price, pricing.Usage(input_tokens=45, output_tokens=105)) == 570
    assert pricing.micros_to_usd(570) == 0.00057


def test_cache_tokens_are_priced_by_kind_and_rounded_once() -> None:
    price = _price()
    usage = pricing.Usage(cache_read_tokens=7, cache_write_tokens=10, cache_write_1h_tokens=4)
    # 7 * 0.1 + 6 * 1.25 + 4 * 2 = 0.7 + 7.5 + 8 = 16.2 micro-USD
    assert pricing.cost_micros(price, usage) == 16
    assert pricing.cost_micros(price, pricing.Usage(cache_read_tokens=5)) == 1  # 0.5 rounds half up


def test_usd_strings_become_exact_micros() -> None:
    assert pricing.usd_to_micros("0.10") == 100_000
    assert pricing.usd_to_micros("1.25") == 1_250_000
    assert pricing.usd_to_micros("15") == 15_000_000


def test_questions_are_normalised_for_grouping() -> None:
    assert rollups.normalise_question("  How MUCH is it?!  ") == "how much is it"
    assert rollups.normalise_question("Où   est-ce ?") == "où est ce"


@pytest.mark.django_db
def test_a_message_is_priced_with_the_row_in_effect_at_its_time(make_conversation: Any) -> None:
    now = timezone.now()
    ModelPrice.objects.create(
        model="claude-haiku-4-5",
        input_per_mtok_micros=2_000_000,
        output_per_mtok_micros=10_000_000,
        cache_write_5m_per_mtok_micros=0,
        cache_write_1h_per_mtok_micros=0,
        cache_read_per_mtok_micros=0,
        effective_from=now + timedelta(days=1),
    )
    conversation, _ = make_conversation()
    [message] = services.message_log(
        conversation=conversation, turns=[services.Turn(role="user", content="hi", input_tokens=10)]
    )
    assert message.cost_micros == 10, "tomorrow's price must not apply today"
    assert message.price.effective_from < now


@pytest.mark.django_db
def test_default_prices_are_seeded_once(db: None) -> None:
    before = ModelPrice.objects.count()
    assert services.model_price_ensure_defaults() == 0
    assert ModelPrice.objects.count() == before == len(pricing.DEFAULT_PRICES_USD)


@pytest.mark.django_db
def test_ticket_events_are_append_only(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    services.conversation_update(conversation=conversation, actor=None, changes={"status": "open"})
    event = TicketEvent.objects.get()
    event.new_value = "closed"
    with pytest.raises(ValueError, match="append-only"):
        event.save()
    with pytest.raises(ValueError, match="append-only"):
        event.delete()


@pytest.mark.django_db(transaction=True)
def test_concurrent_logging_loses_no_update(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    threads, per_thread = 6, 10
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(per_thread):
                services.message_log(
                    conversation=Conversation.objects.get(pk=conversation.pk),
                    turns=[
                        services.Turn(role="user", content="q", input_tokens=45),
                        services.Turn(role="assistant", content="a", output_tokens=105),
                    ],
                )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connection.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    assert not errors, errors
    conversation.refresh_from_db()
    pairs = threads * per_thread
    assert Message.objects.filter(conversation=conversation).count() == 2 * pairs
    assert conversation.message_count == 2 * pairs
    assert conversation.total_input_tokens == 45 * pairs
    assert conversation.total_output_tokens == 105 * pairs
    assert conversation.cost_micros == 570 * pairs


@pytest.mark.django_db
def test_recount_repairs_counters_from_the_messages(make_conversation: Any) -> None:
    conversation, _ = make_conversation()
    services.message_log(conversation=conversation, turns=[services.Turn(role="user", content="q", input_tokens=45)])
    Conversation.objects.filter(pk=conversation.pk).update(message_count=99, cost_micros=1)
    services.conversation_recount(conversation=conversation)
    assert (conversation.message_count, conversation.cost_micros) == (1, 45)
