"""A worker's SQLite connections (one per gunicorn thread) keep a bounded cache of prepared statements (issue 13)."""

from __future__ import annotations

import pytest
from django.db import connection

pytestmark = pytest.mark.skipif(connection.vendor != "sqlite", reason="SQLite's connection options")


def test_each_connection_keeps_at_most_sixteen_prepared_statements() -> None:
    # Python's default, 128 a connection, held ~11 MiB more per worker of 16 threads after 1,000 requests.
    assert connection.get_connection_params()["cached_statements"] == 16


@pytest.mark.django_db
def test_each_connection_keeps_a_page_cache_of_256_kib() -> None:
    # SQLite's default, 2,000 KiB a connection, held ~8 MiB more per worker of 32 threads after 5,000 requests
    # (bench/memory.py). With every request writing, WAL readers find the database changed and drop their
    # cache at nearly every transaction anyway, so a bigger one only holds stale pages.
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA cache_size")
        assert cursor.fetchone()[0] == -256
