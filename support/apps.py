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

        # Issue 14: an article edit makes every process rebuild its retrieval index.
        from django.db.models.signals import post_delete, post_save

        from support.bot.retrieval import kb_version_bump

        post_save.connect(kb_version_bump, sender="support.KnowledgeArticle", dispatch_uid="kb_version_on_save")
        post_delete.connect(kb_version_bump, sender="support.KnowledgeArticle", dispatch_uid="kb_version_on_delete")

        # Issue 13: turns are priced from an in-process copy of the price table; a saved price drops it.
        from support.selectors.prices import prices_table_forget

        post_save.connect(prices_table_forget, sender="support.ModelPrice", dispatch_uid="prices_on_save")
        post_delete.connect(prices_table_forget, sender="support.ModelPrice", dispatch_uid="prices_on_delete")

        from rezvo_support.sqlite_file.base import database_files_pin

        database_files_pin()

        from support.db import mongodb_query_shapes

        mongodb_query_shapes()
