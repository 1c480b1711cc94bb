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
