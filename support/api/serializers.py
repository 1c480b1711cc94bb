"""Output shapes shared by several API operations."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from rest_framework import serializers
from rest_framework.fields import SkipField
from rest_framework.relations import PKOnlyObject

from support.pricing import micros_to_usd

_shared: dict[tuple[type[serializers.Serializer], bool], serializers.Serializer] = {}
_sharing = threading.Lock()


def _shared_instance(serializer_class: type[serializers.Serializer], client: bool) -> serializers.Serializer:
    """One instance of the class per process (and context), its fields bound once.

    DRF deep-copies every declared field of a serializer each time one is made, and binds the copies: on
    the message-logging path that was a tenth of the request's CPU. An instance that keeps no state of
    its own between calls (no context beyond `client`, no `instance`/`data` kept: only to_representation
    and run_validation are called on it) can serve every request and thread."""
    key = (serializer_class, client)
    found = _shared.get(key)
    if found is None:
        with _sharing:
            found = _shared.get(key)
            if found is None:
                found = serializer_class(context={"client": client})
                found.fields  # noqa: B018 - bound here, once, before any other thread sees the instance
                _shared[key] = found
    return found


def represent(serializer_class: type[serializers.Serializer], instance: Any) -> Any:
    """serializer_class(instance).data, from a shared instance (_shared_instance). Only for serializers
    that read nothing from their context."""
    return _shared_instance(serializer_class, False).to_representation(instance)


def validated(serializer_class: type[serializers.Serializer], data: Any, *, client: bool = False) -> Any:
    """serializer_class(data=data, context={"client": client}) validated, from a shared instance: the
    same values, and the same ValidationError (400, each field named) on bad input."""
    return _shared_instance(serializer_class, client).run_validation(data)


_MISSING = object()


class OutputSerializer(serializers.Serializer):
    """A serializer for output only, whose to_representation gives what DRF's gives with less work per field.

    DRF reads each field's value through Field.get_attribute (a generic walk of `source`, with its error
    handling) and re-filters the readable fields on every call: a page of 50 tickets of 10 messages was
    ~10,000 such reads, a third of the request's CPU. A field with a one-step source is read here with
    getattr; anything else (a callable, a mapping, a missing attribute, a field with its own get_attribute)
    goes through DRF's own path, and every value is still turned into its output by the field itself."""

    def _plan(self) -> list[tuple[str, str | None, serializers.Field]]:
        plan = self.__dict__.get("_output_plan")
        if plan is None:
            plan = [
                (
                    field.field_name,
                    field.source_attrs[0]
                    if len(field.source_attrs) == 1 and type(field).get_attribute is serializers.Field.get_attribute
                    else None,
                    field,
                )
                for field in self._readable_fields
            ]
            self.__dict__["_output_plan"] = plan
        return plan

    def to_representation(self, instance: Any) -> dict[str, Any]:
        if isinstance(instance, Mapping):
            return super().to_representation(instance)
        ret: dict[str, Any] = {}
        for name, attr, field in self._plan():
            value = _MISSING if attr is None else getattr(instance, attr, _MISSING)
            if value is _MISSING or callable(value):
                try:
                    value = field.get_attribute(instance)
                except SkipField:
                    continue
                if isinstance(value, PKOnlyObject) and value.pk is None:
                    value = None
            ret[name] = None if value is None else field.to_representation(value)
        return ret


class UserRefSerializer(OutputSerializer):
    id = serializers.CharField(source="pk")
    username = serializers.CharField()


class MessageOutputSerializer(OutputSerializer):
    id = serializers.CharField(source="pk")
    role = serializers.CharField()
    content = serializers.CharField()
    model = serializers.CharField()
    input_tokens = serializers.IntegerField()
    output_tokens = serializers.IntegerField()
    cache_read_tokens = serializers.IntegerField()
    cache_write_tokens = serializers.IntegerField()
    cost_micros = serializers.IntegerField()
    cost_usd = serializers.FloatField()
    price_id = serializers.CharField(allow_null=True)
    price_fallback = serializers.BooleanField()
    is_escalation = serializers.BooleanField()
    is_partial = serializers.BooleanField()
    author = UserRefSerializer(
        allow_null=True, help_text="The staff user who wrote an agent turn (role `agent`); null for the rest."
    )
    created_at = serializers.DateTimeField()


class LoadedMessages(serializers.ListSerializer):
    """A conversation's messages as the view loaded them beside it (selectors.conversation_messages_attach,
    batched for a page of conversations), never read per row."""

    def get_attribute(self, instance: Any) -> Any:
        return instance.loaded_messages


class WidgetMessageOutputSerializer(OutputSerializer):
    """What the customer may see of a turn: no costs, no models."""

    id = serializers.CharField(source="pk")
    role = serializers.CharField()
    content = serializers.CharField()
    is_partial = serializers.BooleanField()
    created_at = serializers.DateTimeField()


class ConversationOutputSerializer(OutputSerializer):
    id = serializers.CharField(source="pk")
    source = serializers.CharField()  # type: ignore[assignment]  # the API's field, not Field.source
    page_url = serializers.CharField()
    user_agent = serializers.CharField()
    user_id = serializers.CharField()
    business_id = serializers.CharField()
    audience = serializers.CharField(help_text="`diner`, `owner`, or empty (the page did not say).")
    identity_verified = serializers.BooleanField(
        help_text="True: user_id (and the identity sent with it) was signed by the embedding site's server. "
        "False: user_id, business_id, audience, contact_email and contact_name are the page's unverified claims."
    )
    contact_name = serializers.CharField()
    status = serializers.CharField()
    escalated = serializers.BooleanField()
    escalation_reason = serializers.CharField()
    escalation_detail = serializers.CharField()
    summary = serializers.CharField()
    message_count = serializers.IntegerField()
    total_input_tokens = serializers.IntegerField()
    total_output_tokens = serializers.IntegerField()
    total_cache_read_tokens = serializers.IntegerField()
    total_cache_write_tokens = serializers.IntegerField()
    cost_micros = serializers.IntegerField()
    estimated_cost_usd = serializers.SerializerMethodField()
    assigned_to = UserRefSerializer(allow_null=True)
    notes = serializers.CharField(
        help_text="Staff notes: the texts of the ticket's notes timeline, oldest first, joined by a blank line."
    )
    contact_email = serializers.CharField()
    rating = serializers.CharField(help_text="The customer's thumbs: up, down, or empty.")
    outcome = serializers.CharField(
        help_text="What it achieved (support/outcomes.py): confirmed, assumed, escalated, negative, abandoned, open."
    )
    handled_by = serializers.CharField(help_text="Who answers the customer: `bot`, or `human` (the bot is silent).")
    customer_last_seen_at = serializers.DateTimeField(
        allow_null=True,
        help_text="The widget's last poll or turn as stored: a turn within 30 s, a poll within about a "
        "minute (polls are stamped in Redis and written every minute); none for 2 minutes: gone.",
    )
    rated_at = serializers.DateTimeField(allow_null=True)
    rated_message_id = serializers.CharField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
    first_response_due_at = serializers.DateTimeField(
        allow_null=True, help_text="When a person should first reply to the latest escalation (business hours)."
    )
    first_human_response_at = serializers.DateTimeField(allow_null=True)
    overdue = serializers.BooleanField(
        source="first_response_overdue", help_text="Waiting past first_response_due_at with no reply from a person."
    )

    def get_estimated_cost_usd(self, obj: Any) -> float:
        return micros_to_usd(obj.cost_micros)


class ConversationWithMessagesOutputSerializer(ConversationOutputSerializer):
    messages = LoadedMessages(child=MessageOutputSerializer())


class WidgetConversationOutputSerializer(OutputSerializer):
    """The customer's view of their conversation: no staff notes, assignment or costs."""

    id = serializers.CharField(source="pk")
    source = serializers.CharField()  # type: ignore[assignment]  # the API's field, not Field.source
    status = serializers.CharField()
    escalated = serializers.BooleanField()
    escalation_reason = serializers.CharField()
    message_count = serializers.IntegerField()
    contact_email = serializers.CharField()
    rating = serializers.CharField(help_text="The customer's own thumbs: up, down, or empty.")
    handled_by = serializers.CharField(help_text="Who answers: `bot`, or `human` (a person replies in the widget).")
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()
    closed_at = serializers.DateTimeField(allow_null=True)
