"""The primary key of every `support` model, so one migration set serves SQLite and MongoDB.

Migrations record a field's import path, not its class body: with `BigAutoField` on SQLite and
`ObjectIdAutoField` on MongoDB they would differ by leg and need a set each. This class keeps one
path on both legs (`support.fields.AutoPrimaryKey`) and takes its base from the database chosen at
start-up: integer ids on SQLite, ObjectIds (the `_id` column) on MongoDB. A database migrated by the
former per-leg sets has the same migration names and the same columns, so it has nothing to apply.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models

# Decided once, at import: the database cannot change while the process runs. Type-checked as the
# SQLite base (django-mongodb-backend ships no stubs; both are AutoField subclasses).
if TYPE_CHECKING or not settings.USE_MONGODB:
    _Base = models.BigAutoField
else:
    from django_mongodb_backend.fields import ObjectIdAutoField as _Base


class AutoPrimaryKey(_Base):
    """`BigAutoField` on SQLite, `ObjectIdAutoField` on MongoDB, under one migration path."""
