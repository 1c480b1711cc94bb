from __future__ import annotations

from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from support import selectors, services
from support.management.commands._progress import Progress
from support.pricing import micros_to_usd


class Command(BaseCommand):
    help = (
        "Recompute the stored cost of one model's turns logged since a date with the price rows now in "
        "effect (after adding or correcting a ModelPrice), updating conversations and rollups; reports "
        "the old and new totals."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--model", required=True, help="Model id, e.g. claude-haiku-4-5.")
        parser.add_argument("--since", required=True, help="First day (UTC, YYYY-MM-DD) whose turns are repriced.")
        parser.add_argument("--dry-run", action="store_true", help="Report the totals without changing anything.")
        parser.add_argument("--batch-size", type=int, default=2000)

    def handle(self, *args: Any, model: str, since: str, dry_run: bool, batch_size: int, **options: Any) -> None:
        try:
            since_day = date.fromisoformat(since)
        except ValueError:
            raise CommandError(f"--since must be a date like 2026-01-31, got {since!r}") from None
        if not selectors.model_is_known(model=model):
            raise CommandError(
                f"Unknown model {model!r}: it has no ModelPrice rows and no logged turns "
                "(check the spelling; after an import run rebuild_rollups first)."
            )
        result = services.messages_reprice(
            model=model,
            since=since_day,
            dry_run=dry_run,
            batch_size=max(batch_size, 1),
            progress=Progress(self.stderr, "messages", min_total=batch_size + 1),
        )
        old, new = result.old_total_micros, result.new_total_micros
        verb = "would change" if dry_run else "changed"
        self.stdout.write(f"Model {model}, turns since {since_day.isoformat()}: {result.messages:,}")
        self.stdout.write(f"Old total: ${micros_to_usd(old):.6f} ({old} micro-USD)")
        self.stdout.write(f"New total: ${micros_to_usd(new):.6f} ({new} micro-USD)")
        self.stdout.write(f"Difference: ${micros_to_usd(new - old):+.6f}")
        self.stdout.write(
            self.style.SUCCESS(
                f"{verb.capitalize()} {result.changed:,} turns in {result.conversations:,} conversations."
            )
        )
