from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from support import services
from support.management.commands._progress import Progress


class Command(BaseCommand):
    help = (
        "Recompute the daily analytics rollups from conversations and messages "
        "(after an import, a restore, or edits made outside the services)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=2000, help="Conversations read per query.")
        parser.add_argument("--no-progress", action="store_true", help="Do not print progress to stderr.")

    def handle(self, *args: Any, batch_size: int, no_progress: bool, **options: Any) -> None:
        started = time.monotonic()
        progress = Progress(self.stderr, "conversations", enabled=not no_progress, min_total=batch_size + 1)
        result = services.rollups_rebuild(batch_size=max(batch_size, 1), progress=progress)
        self.stdout.write(
            self.style.SUCCESS(
                f"Rebuilt rollups from {result.conversations:,} conversations and {result.messages:,} messages: "
                f"{result.rows:,} rows in {time.monotonic() - started:.1f} s."
            )
        )
