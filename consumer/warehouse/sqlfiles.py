"""The DDL and report queries: installed as ``consumer/sql``, or ``sql/`` of a checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sql_dir() -> Path:
    installed = Path(str(resources.files("consumer") / "sql"))
    return installed if installed.is_dir() else Path(__file__).resolve().parents[2] / "sql"


def read_script(path: Path) -> str:
    """A schema script, with each ``-- @include NAME`` line replaced by sql/NAME (the lake's
    scripts share the file's where the two are the same)."""
    lines = []
    for line in path.read_text().splitlines():
        name = line.removeprefix("-- @include ").strip() if line.startswith("-- @include ") else ""
        lines.append((sql_dir() / name).read_text() if name else line)
    return "\n".join(lines)


INCLUDES = {"{{priced}}": "_priced.sql", "{{total_sales}}": "_total_sales.sql",
            "{{window}}": "_window.sql"}  # fmt: skip


def report_query(name: str) -> str:
    """A report's query, with the shared parts it names (``{{priced}}`` ...) put in."""
    reports = sql_dir() / "reports"
    text = (reports / f"{name}.sql").read_text()
    for marker, part in INCLUDES.items():
        if marker in text:
            text = text.replace(marker, (reports / part).read_text().strip())
    return text
