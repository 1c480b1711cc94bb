from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand
from django.utils import timezone

from support import services


class Command(BaseCommand):
    help = (
        "Delete the Idempotency-Key records older than SUPPORT_IDEMPOTENCY_TTL_HOURS "
        "(run it daily, from cron or a scheduler)."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        hours = settings.SUPPORT_IDEMPOTENCY_TTL_HOURS
        pruned = services.idempotency_prune(older_than=timezone.now() - timedelta(hours=hours))
        self.stdout.write(self.style.SUCCESS(f"Pruned {pruned:,} idempotency keys older than {hours} hours."))
