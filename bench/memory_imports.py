"""The import cost of each heavy package (RSS and time), each measured in a fresh interpreter.

Two figures a package: "alone" (python -c "import it") and "on top of the app" (after what a gunicorn
worker loads at start: django.setup(), rezvo_support.wsgi and the URLconf with every view module), which
is what a worker pays when the one path that needs it first runs. "at start" says whether a worker has it
loaded before serving anything (issue 13: only what every request needs should be).

    python bench/memory_imports.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import harness
from bench.memory_packages import runtime_only

#: (label, module to import): the packages issue 13 names, then the other big ones a worker loads.
HEAVY = (
    ("anthropic (Claude SDK; with a key, gunicorn's master preloads it)", "anthropic"),
    ("pymongo", "pymongo"),
    ("django_mongodb_backend", "django_mongodb_backend.base"),
    ("drf_spectacular generator", "drf_spectacular.views"),
    ("rest_framework", "rest_framework.viewsets"),
    ("huey", "huey"),
    ("redis", "redis"),
    ("limits", "limits"),
    ("markdown_it", "markdown_it"),
    ("pydantic (the SDK's models)", "pydantic"),
)

_MEASURE = r"""
import importlib, json, os, sys, time

def rss_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])

module, with_app = sys.argv[1], sys.argv[2] == "app"
if with_app:
    import rezvo_support.wsgi
    from django.urls import get_resolver
    get_resolver().url_patterns
loaded_at_start = module in sys.modules
before, count, started = rss_kib(), len(sys.modules), time.perf_counter()
importlib.import_module(module)
print(json.dumps({"kib": rss_kib() - before, "ms": (time.perf_counter() - started) * 1000,
                  "modules": len(sys.modules) - count, "at_start": loaded_at_start, "total_kib": rss_kib()}))
"""


@dataclass
class Cost:
    label: str
    alone_mib: float | None
    alone_ms: float | None
    app_mib: float
    app_ms: float
    app_modules: int
    at_start: bool


def _measure(module: str, env: dict[str, str], *, with_app: bool) -> dict[str, float] | None:
    """The child's figures; None when the module cannot be imported on its own (it needs Django's apps)."""
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, module, "app" if with_app else "alone"],
        cwd=harness.ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        if not with_app and "AppRegistryNotReady" in result.stderr:
            return None
        raise RuntimeError(f"measuring {module} failed:\n{result.stderr[-2000:]}")
    measured: dict[str, float] = json.loads(result.stdout.strip().splitlines()[-1])
    return measured


def app_environment(workdir: Path, *, all_installed: bool = False) -> dict[str, str]:
    """The SQLite leg's production settings (nothing is queried: importing needs no database), with only
    the runtime requirements importable unless `all_installed` (bench/memory_packages.py)."""
    env = harness.leg_environment(workdir)
    env.pop("ROOT_URLCONF")  # the app's own URLconf, not the bench's
    return env if all_installed else runtime_only(env, workdir)


def import_costs(progress: bool = True, *, all_installed: bool = False) -> list[Cost]:
    from tqdm import tqdm

    with tempfile.TemporaryDirectory(prefix="rezvo-imports-") as tmp:
        env = app_environment(Path(tmp), all_installed=all_installed)
        costs = []
        for label, module in tqdm(HEAVY, desc="import cost", unit="package", disable=not progress):
            alone = _measure(module, env, with_app=False)
            app = _measure(module, env, with_app=True)
            assert app is not None
            costs.append(
                Cost(
                    label=f"{label} (`{module}`)",
                    alone_mib=None if alone is None else alone["kib"] / 1024,
                    alone_ms=None if alone is None else alone["ms"],
                    app_mib=app["kib"] / 1024,
                    app_ms=app["ms"],
                    app_modules=int(app["modules"]),
                    at_start=bool(app["at_start"]),
                )
            )
        return costs


def app_cost(*, all_installed: bool = False) -> tuple[float, float, int]:
    """(MiB, ms, modules) of what a worker imports at start: the WSGI app and its URLconf."""
    code = (
        "import json,sys,time\nt=time.perf_counter()\nimport rezvo_support.wsgi\n"
        "from django.urls import get_resolver\nget_resolver().url_patterns\n"
        "kib=[int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmRSS:')][0]\n"
        "print(json.dumps([kib, (time.perf_counter()-t)*1000, len(sys.modules)]))"
    )
    with tempfile.TemporaryDirectory(prefix="rezvo-imports-") as tmp:
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=harness.ROOT,
            env=app_environment(Path(tmp), all_installed=all_installed),
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
    kib, ms, modules = json.loads(result.stdout.strip().splitlines()[-1])
    return kib / 1024, ms, modules


def table(costs: list[Cost]) -> list[str]:
    lines = [
        "| package | alone MiB | alone ms | on top of the app MiB | on top of the app ms | modules added | at start |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for cost in costs:
        alone = "n/a | n/a" if cost.alone_mib is None else f"{cost.alone_mib:.1f} | {cost.alone_ms:.0f}"
        lines.append(
            f"| {cost.label} | {alone} | {cost.app_mib:.1f} | {cost.app_ms:.0f} "
            f"| {cost.app_modules} | {'yes' if cost.at_start else 'no (lazy)'} |"
        )
    return lines


def main() -> int:
    mib, ms, modules = app_cost()
    print(f"A worker's imports (WSGI app + URLconf): {mib:.1f} MiB RSS, {ms:.0f} ms, {modules} modules")
    print("\n".join(table(import_costs())))
    return 0


if __name__ == "__main__":
    sys.exit(main())
