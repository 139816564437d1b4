"""Reads for ``query``, ``sql`` and ``audit``, on either kind of warehouse. A lake is attached
read-only (each query sees one snapshot). A file no process holds is opened read-only; one that
a running consumer holds is read through that consumer's local channel."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from consumer.core.windows import EVERYTHING, Window
from consumer.errors import DatabaseLockedError
from consumer.runtime.channel import ask, socket_path
from consumer.settings import WarehouseSettings
from consumer.warehouse import lakeconn
from consumer.warehouse.adhoc import check_select, run_sql
from consumer.warehouse.reports import REPORTS, check_report, read_only, report_rows

Table = tuple[list[str], list[tuple[Any, ...]]]


@contextmanager
def connect(target: WarehouseSettings) -> Iterator[Any]:
    """A read-only connection on which the star schema's tables resolve."""
    if target.catalog is not None:
        with lakeconn.reader(target.catalog, target.data_path) as con:
            yield con
    else:
        assert target.db_path is not None
        with read_only(target.db_path) as con:
            yield con


def _through_consumer(
    target: WarehouseSettings, request: dict[str, Any], locked: DatabaseLockedError
) -> Table:
    assert target.db_path is not None
    sock = socket_path(target.db_path)
    if not sock.exists():
        raise DatabaseLockedError(f"{locked}, and offers no local channel ({sock} is missing)")
    return ask(sock, request)


def report(
    target: WarehouseSettings, name: str, limit: int | None, window: Window = EVERYTHING
) -> Table:
    check_report(name, limit)
    try:
        with connect(target) as con:
            rows = report_rows(con, name, limit, window)
        return list(REPORTS[name]), [tuple(r.values()) for r in rows]
    except DatabaseLockedError as locked:
        request = {"op": "report", "name": name, "limit": limit}
        request |= {k: None if v is None else v.isoformat() for k, v in window.params().items()}
        return _through_consumer(target, request, locked)


def sql(target: WarehouseSettings, query: str) -> Table:
    check_select(query)
    try:
        with connect(target) as con:
            return run_sql(con, query)
    except DatabaseLockedError as locked:
        return _through_consumer(target, {"op": "sql", "sql": query}, locked)
