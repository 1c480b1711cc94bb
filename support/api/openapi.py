"""What the OpenAPI schema says beyond the serializers: the error shape, which errors each operation
declares, and responses whose shape depends on the caller (staff or the widget).

The schema generator (drf_spectacular.openapi and what it loads: jinja2, django.test, unittest...) is
imported only when a schema is generated, never by a worker that just serves the API. drf_spectacular's
own @extend_schema subclasses the generator's AutoSchema the moment it decorates, so the views use this
module's `extend_schema`, which records the decoration and has drf_spectacular's applied, in the same
order, by `apply_schema_extensions()` (support.api.schema.SchemaGenerator calls it before generating).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework import serializers

from support.api.access import TOKEN_HEADER

if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema
    from drf_spectacular.utils import Direction

_Decorated = TypeVar("_Decorated", bound=Callable[..., Any])
_extensions_lock = threading.Lock()
_pending: list[tuple[Any, dict[str, Any]]] = []
_applied = False


def extend_schema(**kwargs: Any) -> Callable[[_Decorated], _Decorated]:
    """drf_spectacular.utils.extend_schema (same arguments), applied when a schema is first generated."""

    def record(view: _Decorated) -> _Decorated:
        with _extensions_lock:
            if _applied:  # a module imported after the first schema: nothing to wait for
                _apply(view, kwargs)
            else:
                _pending.append((view, kwargs))
        return view

    return record


def apply_schema_extensions() -> None:
    """Apply every recorded @extend_schema, in decoration order, once; and register the extensions."""
    global _applied
    with _extensions_lock:
        if _applied:
            return
        _define_staff_or_widget_extension()
        for view, kwargs in _pending:
            _apply(view, kwargs)
        _pending.clear()
        _applied = True


def _apply(view: Any, kwargs: dict[str, Any]) -> None:
    from drf_spectacular.utils import extend_schema as spectacular_extend_schema

    spectacular_extend_schema(**kwargs)(view)


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


class SchemaOnDemand:
    """A viewset's `schema`: DRF's, except that reading it from the class loads nothing until the generator
    is loaded. DRF's router reads every attribute of a viewset to find its extra actions, and DRF's own
    descriptor answers a class read by importing DEFAULT_SCHEMA_CLASS, the generator."""

    def __init__(self) -> None:
        from rest_framework.schemas.inspectors import DefaultSchema

        self.drf = DefaultSchema()

    def __get__(self, instance: Any, owner: type) -> Any:
        if instance is None and "drf_spectacular.openapi" not in sys.modules:
            return self
        return self.drf.__get__(instance, owner)

    def __set__(self, instance: Any, value: Any) -> None:
        self.drf.__set__(instance, value)


def _define_staff_or_widget_extension() -> None:
    # drf_spectacular registers an extension when its class is defined, and the base class loads the generator.
    from drf_spectacular.extensions import OpenApiSerializerExtension

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
