from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from support import selectors, services
from support.management.commands._progress import Progress


class Command(BaseCommand):
    help = (
        "Recompute the daily analytics rollups from conversations and messages "
        "(after an import, a restore, or edits made outside the services). Days some conversations were "
        "purged or erased from keep their rows (those figures count conversations that are gone) unless --force."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch-size", type=int, default=2000, help="Conversations read per query.")
        parser.add_argument("--no-progress", action="store_true", help="Do not print progress to stderr.")
        parser.add_argument(
            "--force",
            action="store_true",
            help="Recompute the days conversations were deleted from too: their figures then drop the deleted "
            "conversations and their cost for good.",
        )

    def handle(self, *args: Any, batch_size: int, no_progress: bool, force: bool, **options: Any) -> None:
        started = time.monotonic()
        progress = Progress(self.stderr, "conversations", enabled=not no_progress, min_total=batch_size + 1)
        keep = () if force else selectors.deleted_days()
        result = services.rollups_rebuild(batch_size=max(batch_size, 1), progress=progress, keep_days=keep)
        self.stdout.write(
            self.style.SUCCESS(
                f"Rebuilt rollups from {result.conversations:,} conversations and {result.messages:,} messages: "
                f"{result.rows:,} rows in {time.monotonic() - started:.1f} s."
            )
        )
        if result.kept_days:
            self.stdout.write(
                f"Kept the rollups of {result.kept_days:,} days as they were: conversations started on them were "
                "purged or erased, so they cannot be recomputed (see the erasure records). --force recomputes "
                "them from the conversations left, dropping the deleted ones from analytics."
            )
