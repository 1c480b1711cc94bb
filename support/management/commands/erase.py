from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from support import services
from support.management.commands._deletion import add_common_arguments, operator_default, summary
from support.management.commands._progress import Progress


class Command(BaseCommand):
    help = (
        "Erase a person's conversations (a GDPR erasure request): by the site's user id, their contact email, "
        "or one conversation id. Writes an erasure record (who, when, the identifier given, rows per table), "
        "never the erased content. Analytics keep counting the conversations (README 'Data handling')."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user-id", help="The site's user id (Conversation.user_id).")
        who.add_argument("--email", help="The contact email the customer gave (any case).")
        who.add_argument("--conversation", help="One conversation id.")
        add_common_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        progress = Progress(self.stderr, "conversations", enabled=not options["no_progress"])
        try:
            result = services.subject_erase(
                operator=options["operator"] or operator_default(),
                user_id=options["user_id"],
                email=options["email"],
                conversation_id=options["conversation"],
                dry_run=options["dry_run"],
                batch_size=max(options["batch_size"], 1),
                progress=progress,
            )
        except ValueError as error:
            raise CommandError(f"--user-id, --email or --conversation: {error}") from None
        self.stdout.write(self.style.SUCCESS(summary(result)))
