"""The OpenAPI generator (SPECTACULAR_SETTINGS["DEFAULT_GENERATOR_CLASS"]): drf_spectacular's, with the views'
recorded @extend_schema applied first (support.api.openapi says why they wait). Imported only to generate
a schema: by /api/schema/, `manage.py spectacular` and the deploy check."""

from __future__ import annotations

from typing import Any

from django.urls import get_resolver
from drf_spectacular.generators import SchemaGenerator as SpectacularSchemaGenerator

from support.api.openapi import apply_schema_extensions


class SchemaGenerator(SpectacularSchemaGenerator):
    def get_schema(self, *args: Any, **kwargs: Any) -> Any:
        # Every view module is imported by the URLconf, so every decoration is recorded before it is applied.
        get_resolver(self.urlconf).url_patterns  # noqa: B018 - the property imports the URLconf
        apply_schema_extensions()
        return super().get_schema(*args, **kwargs)
