from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from support import selectors
from support.management.commands._progress import Progress


class Command(BaseCommand):
    help = (
        "Write a person's conversations (turns, ticket events, rating) as JSON, for a data-subject access "
        "request: by the site's user id or their contact email. Staff notes are left out (README 'Data handling')."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        who = parser.add_mutually_exclusive_group(required=True)
        who.add_argument("--user-id", help="The site's user id (Conversation.user_id).")
        who.add_argument("--email", help="The contact email the customer gave (any case).")
        parser.add_argument("--output", help="Write to this file instead of stdout.")
        parser.add_argument("--no-progress", action="store_true", help="Do not print progress to stderr.")

    def handle(self, *args: Any, **options: Any) -> None:
        subject = {name: options[name] for name in ("user_id", "email") if options[name] is not None}
        try:
            total = selectors.conversations_of_subject(**subject).count()
            exported = selectors.conversations_export(**subject)
        except ValueError as error:
            raise CommandError(f"--user-id or --email: {error}") from None
        # Progress on stderr: stdout carries only the JSON.
        progress = Progress(self.stderr, "conversations", enabled=not options["no_progress"])
        conversations = []
        for conversation in exported:
            conversations.append(conversation)
            progress(len(conversations), total)
        document = {"exported_at": timezone.now().isoformat(), "subject": subject, "conversations": conversations}
        text = json.dumps(document, indent=2, ensure_ascii=False)
        if options["output"]:
            Path(options["output"]).write_text(text + "\n", encoding="utf-8")
            self.stdout.write(f"Wrote {len(conversations):,} conversations to {options['output']}.")
        else:
            self.stdout.write(text)
