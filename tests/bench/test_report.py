"""bench/harness.py's report writing: each bench replaces its own sections of docs/benchmarks.md and leaves
the others' (a `make bench` run regenerates the whole report; a single bench reruns only its part)."""

from __future__ import annotations

from pathlib import Path

from bench import harness

OLD = """# Benchmarks

Old header.

## SQLite (WAL) (FAIL)

old sqlite

## The write path's shape (PASS)

write path figures

## Worker memory (FAIL)

memory figures
"""


def test_it_replaces_the_load_benchs_sections_and_keeps_the_others(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text(OLD)
    harness.report_merge(report, "# Benchmarks\n\nNew header.\n\n## SQLite (WAL) (PASS)\n\nnew sqlite\n")
    text = report.read_text()
    assert "New header." in text and "Old header." not in text
    assert "## SQLite (WAL) (PASS)\n\nnew sqlite" in text and "old sqlite" not in text
    assert "write path figures" in text and "memory figures" in text
    assert text.index("new sqlite") < text.index("write path figures") < text.index("memory figures")


def test_it_adds_a_section_the_report_did_not_have_after_the_replaced_ones(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    report.write_text(OLD)
    new = "# Benchmarks\n\nNew header.\n\n## SQLite (WAL) (PASS)\n\nnew sqlite\n"
    new += "\n## MongoDB (SecantusDB) (FAIL)\n\nmongo\n"
    harness.report_merge(report, new)
    text = report.read_text()
    assert text.index("new sqlite") < text.index("mongo") < text.index("write path figures")
    assert text.count("## ") == 4


def test_it_writes_the_whole_report_when_there_was_none(tmp_path: Path) -> None:
    report = tmp_path / "benchmarks.md"
    harness.report_merge(report, "# Benchmarks\n\n## SQLite (WAL) (PASS)\n\nnew sqlite\n")
    assert report.read_text() == "# Benchmarks\n\n## SQLite (WAL) (PASS)\n\nnew sqlite\n"
