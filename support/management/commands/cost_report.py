from __future__ import annotations

import csv
import json
from dataclasses import asdict
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from support import selectors
from support.management.commands._progress import Progress
from support.models import Audience
from support.pricing import micros_to_usd

#: The usage columns, then the part of them the widget reported itself (unverified, already in the totals).
COLUMNS = (*selectors.USAGE_COLUMNS, *selectors.CLIENT_REPORT_COLUMNS)


def _day(value: str, option: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"{option} must be a date like 2026-01-31, got {value!r}") from None


class Command(BaseCommand):
    help = (
        "Claude usage and cost of the conversations started in a window, grouped by day, model, source, "
        "status, outcome, business or audience, with a totals row and the outcome figures (resolution rate, cost "
        "per resolution); --business / --audience keep one venue or audience. "
        "Read from conversations and messages (not the rollups). The client_ columns are "
        "the part of each row the widget reported itself (SUPPORT_CLIENT_LOGGING=seed): unverified."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--days", type=int, default=30, help="The last N days, today included (default 30).")
        parser.add_argument("--from", dest="date_from", help="First day (UTC, YYYY-MM-DD); overrides --days.")
        parser.add_argument("--to", dest="date_to", help="Last day (UTC, YYYY-MM-DD), included; default today.")
        parser.add_argument("--by", choices=selectors.COST_REPORT_GROUPS, default="day")
        parser.add_argument("--business", default="", help="Only this business's conversations (its business_id).")
        parser.add_argument("--audience", choices=Audience.values, help="Only this audience's conversations.")
        parser.add_argument("--format", choices=("table", "csv", "json"), default="table")
        parser.add_argument("--batch-size", type=int, default=2000, help="Conversations read per query.")
        parser.add_argument("--no-progress", action="store_true", help="Do not print progress to stderr.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["days"] < 1:
            raise CommandError("--days must be at least 1")
        start = _day(options["date_from"], "--from") if options["date_from"] else None
        end = _day(options["date_to"], "--to") if options["date_to"] else None
        try:
            window = selectors.window_for(days=options["days"], date_from=start, date_to=end)
        except ValueError:
            raise CommandError("--from must not be after --to") from None
        # Progress goes to stderr: stdout carries only the report, so CSV and JSON stay parseable.
        progress = Progress(
            self.stderr,
            "conversations",
            enabled=not options["no_progress"],
            min_total=options["batch_size"] + 1,
        )
        report = selectors.cost_report(
            window=window,
            by=options["by"],
            batch_size=max(options["batch_size"], 1),
            progress=progress,
            business_id=options["business"] or "",
            audience=options["audience"] or "",
        )
        {"table": self._table, "csv": self._csv, "json": self._json}[options["format"]](report)

    def _cells(self, row: selectors.CostRow) -> list[Any]:
        return [getattr(row, name) for name in COLUMNS] + [f"{micros_to_usd(row.cost_micros):.6f}"]

    def _csv(self, report: selectors.CostReport) -> None:
        writer = csv.writer(self.stdout, lineterminator="\n")
        writer.writerow([report.by, *COLUMNS, "cost_usd"])
        for row in [*report.rows, report.total]:
            writer.writerow([row.key, *self._cells(row)])

    def _json(self, report: selectors.CostReport) -> None:
        # Every row, the total too, has the same keys: the group's name (as in the CSV header) holds
        # the day, model, source or status, and "total" in the total row, as in the CSV and table.
        def as_dict(row: selectors.CostRow) -> dict[str, Any]:
            data = {report.by: row.key, **asdict(row)}
            del data["key"]
            data["cost_usd"] = micros_to_usd(row.cost_micros)
            return data

        body = {
            "from": report.window.date_from.isoformat(),
            "to": report.window.date_to.isoformat(),
            "by": report.by,
            "rows": [as_dict(row) for row in report.rows],
            "total": as_dict(report.total),
            "outcomes": report.outcome_figures(),
        }
        self.stdout.write(json.dumps(body, indent=2))

    def _table(self, report: selectors.CostReport) -> None:
        headers = [
            report.by,
            "conv",
            "msgs",
            "input",
            "output",
            "cache_read",
            "cache_write",
            "micro-USD",
            "client_msgs",
            "client_micro-USD",
            "USD",
        ]
        lines = [[row.key, *(f"{v:,}" if isinstance(v, int) else v for v in self._cells(row))] for row in report.rows]
        total = [report.total.key, *(f"{v:,}" if isinstance(v, int) else v for v in self._cells(report.total))]
        widths = [max(len(str(r[i])) for r in [headers, *lines, total]) for i in range(len(headers))]

        def fmt(cells: list[Any]) -> str:
            first = str(cells[0]).ljust(widths[0])
            return "  ".join([first, *(str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True))])

        self.stdout.write(
            f"Cost report by {report.by}: conversations started {report.window.date_from} to {report.window.date_to}"
        )
        self.stdout.write(fmt(headers))
        self.stdout.write("  ".join("-" * w for w in widths))
        for line in lines:
            self.stdout.write(fmt(line))
        self.stdout.write("  ".join("-" * w for w in widths))
        self.stdout.write(fmt(total))
        self._outcome_lines(report.outcome_figures())

    def _outcome_lines(self, figures: dict[str, Any]) -> None:
        """The resolution figures under the table (support.outcomes.resolution_figures)."""

        def pct(value: float | None) -> str:
            return "n/a" if value is None else f"{value}%"

        def usd(value: float | None) -> str:
            return "n/a" if value is None else f"${value:.6f}"

        decided = figures["resolution_denominator"]
        self.stdout.write("")
        self.stdout.write(
            f"Resolved by the bot: {pct(figures['resolution_pct'])} of {decided} decided "
            f"(confirmed {figures['confirmed_count']} = {pct(figures['confirmed_resolution_pct'])}, "
            f"assumed {figures['assumed_count']} = {pct(figures['assumed_resolution_pct'])}); "
            f"abandoned {figures['abandoned_count']} and open {figures['open_count']} left out"
        )
        self.stdout.write(
            f"Cost per resolution {usd(figures['cost_per_resolution_usd'])}, per confirmed resolution "
            f"{usd(figures['cost_per_confirmed_resolution_usd'])}; escalated conversations cost "
            f"{usd(figures['escalated_cost_usd'])}, abandoned {usd(figures['abandoned_cost_usd'])}"
        )
