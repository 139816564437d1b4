"""Reads for ``query``, ``sql`` and ``audit``, on either kind of warehouse. A lake is attached
read-only (each query sees one snapshot). A file no process holds is opened read-only; one that
a running consumer holds is read through that consumer's local channel."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from consumer.core.reporting import DEFAULT_OPTIONS, ReportOptions
from consumer.core.windows import EVERYTHING, Window
from consumer.errors import DatabaseLockedError
from consumer.serving.channel import ask, socket_path
from consumer.settings import WarehouseSettings
from consumer.warehouse import accounts as account_readers
from consumer.warehouse import lakeconn
from consumer.warehouse.adhoc import check_read, run_sql
from consumer.warehouse.protocol import Accounts
from consumer.warehouse.reports import REPORTS, check_report, read_only, report_rows

Table = tuple[list[str], list[tuple[Any, ...]]]


@contextmanager
def connect(target: WarehouseSettings) -> Iterator[Any]:
    """A read-only connection on which the star schema's tables resolve."""
    if target.catalog is not None:
        with lakeconn.reader(target.catalog, target.data_path) as con:
            confine_to_lake(con)
            yield con
    else:
        assert target.db_path is not None
        with read_only(target.db_path) as con:
            yield con


@contextmanager
def accounts(target: WarehouseSettings) -> Iterator[Accounts]:
    """What the warehouse says it holds, read-only (for ``audit``), the way its kind keeps it."""
    with connect(target) as con:
        lake_kind = target.catalog is not None
        yield account_readers.of_lake(con) if lake_kind else account_readers.of_file(con)


def confine_to_lake(con: Any) -> None:
    """Once the lake is attached, no file outside its data path: a query can then neither read
    nor write one (the parser's check refuses writes inside it too, see warehouse.adhoc)."""
    row = con.execute(
        "SELECT value FROM ducklake_options('lake') WHERE option_name = 'data_path'"
    ).fetchone()
    if row and row[0]:
        con.execute("SET allowed_directories = [?]", [str(row[0])])
    con.execute("SET enable_external_access = false")


def _through_consumer(
    target: WarehouseSettings, request: dict[str, Any], locked: DatabaseLockedError
) -> Table:
    assert target.db_path is not None
    sock = socket_path(target.db_path)
    if not sock.exists():
        raise DatabaseLockedError(f"{locked}, and offers no local channel ({sock} is missing)")
    return ask(sock, request)


def report(
    target: WarehouseSettings,
    name: str,
    limit: int | None,
    window: Window = EVERYTHING,
    options: ReportOptions = DEFAULT_OPTIONS,
) -> Table:
    check_report(name, limit)
    try:
        with connect(target) as con:
            rows = report_rows(con, name, limit, window, options)
        return list(REPORTS[name]), [tuple(r.values()) for r in rows]
    except DatabaseLockedError as locked:
        request: dict[str, Any] = {"op": "report", "name": name, "limit": limit}
        request |= {k: None if v is None else v.isoformat() for k, v in window.params().items()}
        request |= options.params()
        return _through_consumer(target, request, locked)


def sql(target: WarehouseSettings, query: str) -> Table:
    check_read(query)
    try:
        with connect(target) as con:
            return run_sql(con, query)
    except DatabaseLockedError as locked:
        return _through_consumer(target, {"op": "sql", "sql": query}, locked)
