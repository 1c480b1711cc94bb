"""The API's views are plain ViewSets (or, for chat, an APIView): no generic or model ViewSet, no DRF
mixins, so every write goes through a service rather than a serializer's save()."""

from __future__ import annotations

from typing import Any

from django.urls import URLPattern, URLResolver, get_resolver
from rest_framework import generics, mixins, viewsets
from rest_framework.views import APIView

from support.api.urls import router

FORBIDDEN = (generics.GenericAPIView, viewsets.GenericViewSet, viewsets.ModelViewSet)


def _is_drf_mixin(base: type) -> bool:
    return base.__module__ == mixins.__name__ and base.__name__.endswith("Mixin")


def generic_views(classes: list[type]) -> list[str]:
    """The names of the classes that inherit a generic or model ViewSet, GenericAPIView or a DRF mixin."""
    return sorted(
        cls.__name__
        for cls in classes
        if issubclass(cls, FORBIDDEN) or any(_is_drf_mixin(base) for base in cls.__mro__)
    )


def _api_view_classes(patterns: list[Any]) -> list[type]:
    classes = []
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            classes += _api_view_classes(pattern.url_patterns)
        elif isinstance(pattern, URLPattern):
            cls = getattr(pattern.callback, "cls", None)
            if isinstance(cls, type) and issubclass(cls, APIView):
                classes.append(cls)
    return classes


def test_it_names_a_model_viewset_a_generic_view_or_a_mixin_user() -> None:
    class Models(viewsets.ModelViewSet):
        pass

    class Listing(mixins.ListModelMixin, viewsets.ViewSet):
        pass

    class Generic(generics.GenericAPIView):
        pass

    class Plain(viewsets.ViewSet):
        pass

    assert generic_views([Models, Listing, Generic, Plain]) == ["Generic", "Listing", "Models"]


def test_no_api_view_inherits_a_generic_or_model_viewset() -> None:
    classes = _api_view_classes(get_resolver().url_patterns)
    assert {cls.__name__ for cls in classes} >= {"ConversationViewSet", "TicketViewSet", "ChatApi"}
    assert generic_views(classes) == []


def test_every_router_viewset_is_a_plain_viewset() -> None:
    registered = [viewset for _prefix, viewset, _basename in router.registry]
    assert len(registered) >= 5  # issue 15 added widget/history; ">=" so parallel branches merge cleanly
    assert all(issubclass(viewset, viewsets.ViewSet) for viewset in registered)
    assert generic_views(registered) == []
