"""bench/memory.py measures a worker with only the runtime requirements importable, as a production host has."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from bench.memory_packages import runtime_distributions, runtime_only

ROOT = Path(__file__).resolve().parents[2]


def test_the_runtime_set_is_requirements_txt_and_what_it_needs_without_the_dev_tools() -> None:
    runtime = runtime_distributions()
    assert {"django", "anthropic", "gunicorn", "pydantic-core", "httpx2"} <= runtime
    assert not {"pytest", "locust", "gevent", "requests", "pygments"} & runtime


def test_a_server_started_with_it_cannot_import_a_dev_tool_but_can_import_the_app(tmp_path: Path) -> None:
    env = runtime_only(dict(os.environ, PYTHONPATH=str(ROOT)), tmp_path)
    code = "import django, anthropic\ntry:\n    import gevent\nexcept ImportError:\n    print('blocked')"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["blocked"]
