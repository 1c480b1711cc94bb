from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from support.models import WEBHOOK_EVENTS
from support.selectors.webhooks import webhook_endpoint_list
from support.services.webhooks import webhook_endpoint_create


class Command(BaseCommand):
    help = (
        "Webhook receivers. `webhooks add URL --event E [--event E ...]` adds one and prints its signing secret "
        "(shown once); `webhooks list` shows them. Events: " + ", ".join(WEBHOOK_EVENTS) + "."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        commands = parser.add_subparsers(dest="action", required=True)
        add = commands.add_parser("add", help="Add a receiver and print its signing secret once.")
        add.add_argument("url", help="https URL (http only with SUPPORT_WEBHOOKS_ALLOW_HTTP=true).")
        add.add_argument("--event", action="append", required=True, choices=WEBHOOK_EVENTS, dest="events")
        commands.add_parser("list", help="List the receivers (never their secrets).")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["action"] == "add":
            self._add(url=options["url"], events=options["events"])
        else:
            self._list()

    def _add(self, *, url: str, events: list[str]) -> None:
        try:
            endpoint = webhook_endpoint_create(url=url, events=events)
        except ValidationError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(
            self.style.SUCCESS(f"Added webhook {endpoint.pk}: {endpoint.url} ({', '.join(endpoint.events)})")
        )
        self.stdout.write("Signing secret (shown once; give it to the receiver, which verifies webhook-signature):")
        self.stdout.write(endpoint.secret)

    def _list(self) -> None:
        endpoints = list(webhook_endpoint_list())
        if not endpoints:
            self.stdout.write("No webhooks. Add one: manage.py webhooks add https://... --event conversation.escalated")
        for endpoint in endpoints:
            state = "active" if endpoint.is_active else "inactive"
            self.stdout.write(f"{endpoint.pk}\t{state}\t{endpoint.url}\t{', '.join(endpoint.events or [])}")
