"""URLconf for the benchmark only (ROOT_URLCONF=bench.urls): the real API plus the stack's ceiling.

The ceiling is the cheapest useful write this stack can serve: a bare Django view that inserts
one row, behind the same gunicorn config and middleware as the API. Message logging is reported
as a fraction of it. Production never mounts this (ROOT_URLCONF defaults to rezvo_support.urls).
"""

from __future__ import annotations

import os

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from rezvo_support.urls import handler404, handler500
from rezvo_support.urls import urlpatterns as app_urlpatterns
from support.models import Message


@csrf_exempt
@require_POST
def insert_one(request: HttpRequest) -> JsonResponse:
    # One row into the messages table (same table and indexes message logging writes to), in a
    # conversation the integrity checks leave out.
    message = Message.objects.create(
        conversation_id=os.environ["BENCH_CEILING_CONVERSATION_ID"], role="user", content="ceiling"
    )
    return JsonResponse({"id": str(message.pk)}, status=201)


urlpatterns = [path("bench/insert", insert_one), *app_urlpatterns]

__all__ = ["handler404", "handler500", "urlpatterns"]
