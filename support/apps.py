from __future__ import annotations

from django.apps import AppConfig


class SupportConfig(AppConfig):
    name = "support"
    # One migration set for both databases: support/fields.py picks the base class per database.
    default_auto_field = "support.fields.AutoPrimaryKey"
    verbose_name = "Support desk"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from support.signals import seed_default_prices

        post_migrate.connect(seed_default_prices, sender=self)

        from rezvo_support.sqlite_file.base import database_files_pin

        database_files_pin()
