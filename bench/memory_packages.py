"""A worker as a production host runs it: only requirements.txt and what it depends on can be imported.

The bench's venv also holds the dev tools (requirements-dev.txt), and some runtime packages import
optional extras just because they are installed: huey imports gevent (locust's), Django REST framework
imports requests and pygments (schemathesis' and pytest's). A production install has none of them, so
`make bench-memory` hides them from the server it starts: a `sitecustomize` on the server's PYTHONPATH
refuses to import any module whose file belongs to a distribution outside that set (measured: the app
loads about 10 MiB lighter). `--all-installed` measures the dev venv as it is.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
from pathlib import Path

from packaging.requirements import Requirement

from bench import harness

_SITECUSTOMIZE = '''"""Written by bench/memory_packages.py: only the runtime requirements can be imported."""
import importlib.machinery, json, os, sys

_BLOCKED = frozenset(json.loads(open(os.environ["REZVO_BENCH_BLOCKED_FILES"]).read()))


class _RuntimeOnly:
    @staticmethod
    def find_spec(name, path=None, target=None):
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is None:
            return None
        files = [spec.origin or ""] + [os.path.join(p, "__init__.py") for p in spec.submodule_search_locations or ()]
        if any(os.path.realpath(f) in _BLOCKED for f in files if f):
            raise ModuleNotFoundError(f"No module named {name!r} (not a runtime requirement)", name=name)
        return None


sys.meta_path.insert(0, _RuntimeOnly)
'''


def _name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def runtime_distributions(requirements: Path = harness.ROOT / "requirements.txt") -> set[str]:
    """The distributions requirements.txt names and everything they need (no extras), normalised names."""
    lines = (line.split("#")[0].strip() for line in requirements.read_text().splitlines())
    pending = [Requirement(line).name for line in lines if line]
    found: set[str] = set()
    while pending:
        name = _name(pending.pop())
        if name in found:
            continue
        found.add(name)
        try:
            requires = importlib.metadata.distribution(name).requires or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for raw in requires:
            requirement = Requirement(raw)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                pending.append(requirement.name)
    return found


def dev_only_files() -> list[str]:
    """The real paths of every module file that belongs to an installed distribution outside the runtime set."""
    runtime = runtime_distributions()
    files = []
    for distribution in importlib.metadata.distributions():
        if _name(distribution.metadata["Name"]) in runtime:
            continue
        for file in distribution.files or ():
            if file.suffix in (".py", ".so"):
                files.append(os.path.realpath(str(distribution.locate_file(file))))
    return sorted(files)


def runtime_only(env: dict[str, str], workdir: Path) -> dict[str, str]:
    """`env` for a server that can import only what a production install has."""
    folder = workdir / "runtime-only"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(_SITECUSTOMIZE)
    blocked = folder / "blocked.json"
    blocked.write_text(json.dumps(dev_only_files()))
    path = os.pathsep.join(part for part in (str(folder), env.get("PYTHONPATH", "")) if part)
    return dict(env, PYTHONPATH=path, REZVO_BENCH_BLOCKED_FILES=str(blocked))
