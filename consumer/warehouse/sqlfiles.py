"""The DDL and report queries: installed as ``consumer/sql``, or ``sql/`` of a checkout."""

from __future__ import annotations

from importlib import resources
from pathlib import Path


def sql_dir() -> Path:
    installed = Path(str(resources.files("consumer") / "sql"))
    return installed if installed.is_dir() else Path(__file__).resolve().parents[2] / "sql"


def report_query(name: str) -> str:
    return (sql_dir() / "reports" / f"{name}.sql").read_text()
