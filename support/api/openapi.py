"""What the OpenAPI schema says beyond the serializers: the error shape, which errors each operation
declares, and responses whose shape depends on the caller (staff or the widget)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import Direction, OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from support.api.access import TOKEN_HEADER

TOKEN_PARAMETER = OpenApiParameter(
    TOKEN_HEADER,
    str,
    OpenApiParameter.HEADER,
    required=False,
    description="The conversation's secret from POST /conversations (staff may omit it).",
)


class ErrorSerializer(serializers.Serializer):
    """The one error shape of the API (support/api/exceptions.py)."""

    detail = serializers.CharField()
    errors = serializers.DictField(  # type: ignore[assignment]  # the body's field, not Serializer.errors
        child=serializers.ListField(child=serializers.CharField()),
        required=False,
        help_text="Per field (or body / Content-Type / header name): what is wrong with it.",
    )
    reason = serializers.CharField(required=False, help_text="429 only: which rate limit was hit.")
    retry_after = serializers.IntegerField(required=False, allow_null=True, help_text="429 only: seconds to wait.")


#: The JSON errors an operation can answer with, so clients (and schemathesis) can rely on them.
ERROR_DESCRIPTIONS = {
    400: "Invalid input; `errors` names each field.",
    401: "No credentials: a staff token/session or the conversation's X-Conversation-Token.",
    403: "Credentials that do not give access to this (wrong token, not staff, missing CSRF).",
    404: "No such conversation, or a page past the end.",
    409: "A request with this Idempotency-Key is still running; retry after Retry-After.",
    413: "Body larger than DATA_UPLOAD_MAX_MEMORY_SIZE.",
    415: "Body is not application/json.",
    429: "Rate limited; `reason` names the limit, Retry-After says when to retry.",
    503: "The database is unavailable.",
}
#: Every operation may answer these.
ALWAYS = (401, 403, 503)
#: ...and an operation with a JSON body these.
BODY = (400, 413, 415)


def errors(*codes: int) -> dict[int, OpenApiResponse]:
    """`responses` entries for these error codes (plus ALWAYS), each with the Error shape."""
    return {
        code: OpenApiResponse(ErrorSerializer, description=ERROR_DESCRIPTIONS[code])
        for code in sorted({*codes, *ALWAYS})
    }


class StaffOrWidget(serializers.Serializer):
    """A response whose shape depends on the caller: staff get `staff`, the widget gets `widget` (and either
    may get one of `others`, shapes that depend on the state, not the caller).

    Schema only (never instantiated with data): documented as anyOf, not oneOf, since a staff body is a
    superset of the widget's and so matches both."""

    def __init__(
        self,
        *,
        name: str,
        staff: type[serializers.Serializer],
        widget: type[serializers.Serializer],
        others: tuple[type[serializers.Serializer], ...] = (),
    ) -> None:
        super().__init__()
        self.name, self.staff, self.widget, self.others = name, staff, widget, others


STAFF_OR_WIDGET_SUFFIX = "StaffOrWidget"


class StaffOrWidgetExtension(OpenApiSerializerExtension):
    target_class = StaffOrWidget

    def get_name(self, auto_schema: AutoSchema, direction: Direction) -> str | None:
        return f"{self.target.name}{STAFF_OR_WIDGET_SUFFIX}"

    def map_serializer(self, auto_schema: AutoSchema, direction: Direction) -> dict[str, Any]:
        return {
            "anyOf": [
                auto_schema.resolve_serializer(self.target.staff, direction).ref,
                auto_schema.resolve_serializer(self.target.widget, direction).ref,
                *(auto_schema.resolve_serializer(other, direction).ref for other in self.target.others),
            ]
        }


def inline_staff_or_widget(result: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    """POSTPROCESSING_HOOK: each StaffOrWidget response is written in place (`anyOf: [...]`), not as a
    component of its own: the schema clients know."""
    schemas = result.get("components", {}).get("schemas", {})
    inline = {name: schemas.pop(name) for name in list(schemas) if name.endswith(STAFF_OR_WIDGET_SUFFIX)}
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            for response in operation.get("responses", {}).values():
                for content in response.get("content", {}).values():
                    ref = content.get("schema", {}).get("$ref", "")
                    name = ref.rpartition("/")[2]
                    if name in inline:
                        content["schema"] = inline[name]
    return result
