"""The Makefile as a newcomer meets it: `make help`, and what `make run` installs."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEV_ONLY = ("pytest", "pytest-django", "SecantusDB", "ruff", "playwright", "greenlet", "schemathesis", "hypothesis")
DEV_ONLY += ("locust", "gevent")


def _make(*args: str) -> str:
    result = subprocess.run(["make", *args], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (ROOT / name).read_text().splitlines():
        line = line.strip()
        if line and not line.startswith(("#", "-r ")):
            package, sep, version = line.partition("==")
            assert sep and version, f"{name}: {line!r} is not pinned exactly"
            pins[package.lower()] = version
    return pins


def test_make_help_lists_every_documented_target_without_make_escapes() -> None:
    out = _make("help")
    assert "$$" not in out
    targets = {line.split()[0] for line in out.splitlines() if line.strip()}
    for target in ("run", "test", "test-mongo", "superuser", "try-production", "serve", "lint"):
        assert target in targets, f"`make help` omits {target}"
    assert "MONGODB_URI" in out
    assert "NOT FOR THE INTERNET" in out


def test_runtime_and_development_requirements_are_split_and_pinned() -> None:
    runtime = _pins("requirements.txt")
    dev = _pins("requirements-dev.txt")
    assert (ROOT / "requirements-dev.txt").read_text().splitlines()[1:2] == ["-r requirements.txt"] or (
        "-r requirements.txt" in (ROOT / "requirements-dev.txt").read_text().splitlines()[:3]
    )
    assert "django" in runtime and "gunicorn" in runtime
    for tool in DEV_ONLY:
        assert tool.lower() not in runtime, f"{tool} is a development tool, not a runtime requirement"
    assert {"pytest", "playwright", "secantusdb", "locust", "schemathesis"} <= set(dev)
    assert not set(runtime) & set(dev), "a package is pinned in both files"


def test_make_run_installs_the_runtime_set_only_and_make_test_adds_the_tools() -> None:
    # -n: print the recipes without running them; -B: as on a fresh clone, every stamp out of date.
    run = _make("-n", "-B", "run")
    assert "-r requirements.txt" in run
    assert "requirements-dev.txt" not in run
    test = _make("-n", "-B", "test")
    assert "-r requirements-dev.txt" in test
