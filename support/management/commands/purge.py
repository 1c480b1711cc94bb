from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from support import services
from support.management.commands._deletion import add_common_arguments, operator_default, summary
from support.management.commands._progress import Progress

_AGE = re.compile(r"^(\d+)d?$")


def _age(value: str | None) -> timedelta:
    if value is None:
        if settings.SUPPORT_RETENTION_DAYS is None:
            raise CommandError("Give --older-than (e.g. 365d): SUPPORT_RETENTION_DAYS is not set.")
        return timedelta(days=settings.SUPPORT_RETENTION_DAYS)
    match = _AGE.match(value.strip())
    if match is None or int(match.group(1)) < 1:
        raise CommandError(f"--older-than must be a number of days of at least 1, like 365d; got {value!r}.")
    return timedelta(days=int(match.group(1)))


class Command(BaseCommand):
    help = (
        "Delete the conversations (with their messages, events, notes and idempotency keys) started more than "
        "--older-than days ago; default SUPPORT_RETENTION_DAYS. Analytics keep counting them (README 'Data handling')."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", help="An age in days, e.g. 365d (default: SUPPORT_RETENTION_DAYS).")
        add_common_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = _age(options["older_than"])
        progress = Progress(self.stderr, "conversations", enabled=not options["no_progress"])
        result = services.conversations_purge(
            older_than=older_than,
            operator=options["operator"] or operator_default(),
            dry_run=options["dry_run"],
            batch_size=max(options["batch_size"], 1),
            progress=progress,
        )
        self.stdout.write(self.style.SUCCESS(summary(result)))
