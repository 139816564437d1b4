"""Reads for ``query`` and ``sql``: a warehouse file no process holds is opened read-only; one
that a running consumer holds is read through that consumer's local channel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from consumer.core.windows import EVERYTHING, Window
from consumer.errors import DatabaseLockedError
from consumer.runtime.channel import ask, socket_path
from consumer.warehouse.adhoc import check_select, run_sql
from consumer.warehouse.reports import REPORTS, check_report, read_only, report_rows

Table = tuple[list[str], list[tuple[Any, ...]]]


def _through_consumer(db: Path, request: dict[str, Any], locked: DatabaseLockedError) -> Table:
    sock = socket_path(db)
    if not sock.exists():
        raise DatabaseLockedError(f"{locked}, and offers no local channel ({sock} is missing)")
    return ask(sock, request)


def report(db: Path, name: str, limit: int | None, window: Window = EVERYTHING) -> Table:
    check_report(name, limit)
    try:
        with read_only(db) as con:
            rows = report_rows(con, name, limit, window)
        return list(REPORTS[name]), [tuple(r.values()) for r in rows]
    except DatabaseLockedError as locked:
        request = {"op": "report", "name": name, "limit": limit}
        request |= {k: None if v is None else v.isoformat() for k, v in window.params().items()}
        return _through_consumer(db, request, locked)


def sql(db: Path, query: str) -> Table:
    check_select(query)
    try:
        with read_only(db) as con:
            return run_sql(con, query)
    except DatabaseLockedError as locked:
        return _through_consumer(db, {"op": "sql", "sql": query}, locked)
