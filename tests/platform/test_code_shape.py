"""The code's shape rules (README "Code map"): small files, small functions, no generic viewsets."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SKIPPED_PARTS = {"migrations", "mongo_migrations", "tests", ".venv", "var", "staticfiles"}


def _sources() -> list[Path]:
    return [path for path in sorted(ROOT.rglob("*.py")) if not SKIPPED_PARTS.intersection(path.relative_to(ROOT).parts)]


def test_no_python_file_outside_tests_and_migrations_is_over_500_lines() -> None:
    long_files = [
        f"{path.relative_to(ROOT)} ({n})" for path in _sources() if (n := len(path.read_text().splitlines())) > 500
    ]
    assert long_files == []


def test_no_function_outside_tests_and_migrations_is_over_60_lines() -> None:
    long_functions = []
    for path in _sources():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = (node.end_lineno or node.lineno) - node.lineno + 1
                if length > 60:
                    long_functions.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({length})")
    assert long_functions == []
