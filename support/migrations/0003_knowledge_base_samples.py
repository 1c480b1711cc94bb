"""Seed the sample knowledge base once, so a fresh install answers pricing, getting-started, contact and
booking questions. A data migration rather than a post_migrate hook: articles staff delete stay deleted."""

from django.conf import settings
from django.db import migrations


def seed(apps, schema_editor):
    from support.bot.knowledge import seed_samples

    KnowledgeArticle = apps.get_model("support", "KnowledgeArticle")
    seed_samples(KnowledgeArticle, support_email=settings.SUPPORT_EMAIL, using=schema_editor.connection.alias)


class Migration(migrations.Migration):
    dependencies = [("support", "0002_chat_knowledge_base")]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
