"""The task queue's SQLite flavour: Huey's, with its folder made on first use (a clean clone has no var/)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import huey


class SqliteHuey(huey.SqliteHuey):
    def get_storage(self, **kwargs: Any) -> Any:
        filename = kwargs.get("filename")
        if filename:
            Path(filename).parent.mkdir(parents=True, exist_ok=True)
        return super().get_storage(**kwargs)


def huey_settings(*, name: str, immediate: bool, workers: int, redis_url: str, sqlite_path: str) -> dict[str, Any]:
    """The HUEY setting: Redis when REDIS_URL is set, else a SQLite file (var/ by default); thread workers."""
    config: dict[str, Any] = {
        "name": name,
        "immediate": immediate,
        "consumer": {"workers": workers, "worker_type": "thread"},
    }
    if redis_url:
        return config | {"huey_class": "huey.RedisHuey", "url": redis_url}
    return config | {"huey_class": "rezvo_support.task_queue.SqliteHuey", "filename": sqlite_path}
