"""What purge and erase share: who is running them, and the summary they print."""

from __future__ import annotations

import getpass

from django.core.management.base import CommandParser

from support.services import DeletionResult


def operator_default() -> str:
    """The OS user running the command (the audit's "who" when --operator is not given)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry for the uid, no USER/LOGNAME: a container
        return "unknown"


def add_common_arguments(parser: CommandParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="Count what would be deleted; delete nothing.")
    parser.add_argument("--operator", help="Who runs it, for the erasure record (default: the OS user).")
    parser.add_argument("--batch-size", type=int, default=500, help="Conversations deleted per batch.")
    parser.add_argument("--no-progress", action="store_true", help="Do not print progress to stderr.")


def summary(result: DeletionResult) -> str:
    verb = "Would delete" if result.dry_run else "Deleted"
    rows = sorted(result.counts.items())
    tables = ", ".join(f"{number:,} {name}" for name, number in rows if name != "conversations")
    line = f"{verb} {result.conversations:,} conversations" + (f" ({tables})" if tables else "") + "."
    if result.record is not None:
        line += f" Erasure record {result.record.pk}."
    if result.days and not result.dry_run:
        line += f" The analytics of the {len(result.days):,} days they started on keep counting them."
    return line
