from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from support import selectors, services
from support.management.commands._progress import Progress
from support.pricing import micros_to_usd


class Command(BaseCommand):
    help = (
        "Ask the bot every active bot check's question (admin: Bot checks) and report pass/fail, cost and time. "
        "Answers come from Claude when ANTHROPIC_API_KEY is set, else from the offline responder. Runs never "
        "create conversations, spend the daily budget or enter the queue or analytics. Exits 1 if a check fails."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--no-progress", action="store_true", help="Do not print progress to stderr.")

    def handle(self, *args: Any, no_progress: bool, **options: Any) -> None:
        if not selectors.botcheck_list().filter(active=True).exists():
            raise CommandError("No active bot checks: add some in the admin (Bot checks) first.")
        run = services.botcheck_run_start(actor_label="command")
        services.botcheck_run_execute(run=run, progress=Progress(self.stderr, "checks", enabled=not no_progress))
        for result in selectors.botcheck_results(run=run):
            mark = "PASS" if result.passed else "FAIL"
            self.stdout.write(f"{mark}  {result.question[:70]}")
            for failure in result.failures:
                self.stdout.write(f"      {failure}")
        summary = (
            f"{run.passed}/{run.checks} passed against {run.get_responder_display()}, "
            f"cost ${micros_to_usd(run.cost_micros):.6f}, {run.duration_ms / 1000:.1f} s (run {run.pk})."
        )
        if run.failed:
            self.stdout.write(self.style.ERROR(summary))
            raise CommandError(f"{run.failed} of {run.checks} bot checks failed.", returncode=1)
        self.stdout.write(self.style.SUCCESS(summary))
