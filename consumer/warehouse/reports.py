"""The report queries (CONTRACT §5): money in one currency, as was or as is, over time; with
an optional time window; and read-only access to a warehouse file."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from consumer.core.reporting import DEFAULT_OPTIONS, ReportOptions
from consumer.core.windows import EVERYTHING, Window
from consumer.errors import ConfigError, DatabaseError, DatabaseLockedError
from consumer.warehouse.adhoc import read_transaction
from consumer.warehouse.duckdb_file import translate
from consumer.warehouse.sqlfiles import report_query

REPORTS: dict[str, tuple[str, ...]] = {
    "top-users": ("user_id", "total_sales", "currency"),
    "top-products": ("sku", "name", "units_sold"),
    "top-countries": ("country", "total_sales", "currency"),
    "sales-by-channel": ("source", "total_sales", "currency"),
    "sales-over-time": ("period", "orders", "units", "total_sales", "currency"),
    "unconverted-sales": ("currency", "lines", "total"),
}
UNLIMITED = ("sales-by-channel", "sales-over-time", "unconverted-sales")
DEFAULT_LIMIT = 5
MAX_LIMIT = 10_000


def check_report(name: str, limit: int | None) -> int | None:
    """The limit to apply, or ConfigError for an unknown report or a limit out of range."""
    if name not in REPORTS:
        raise ConfigError(f"unknown report {name!r}; choose from {', '.join(REPORTS)}")
    if limit is None and name not in UNLIMITED:
        limit = DEFAULT_LIMIT
    if limit is not None and not 0 <= limit <= MAX_LIMIT:
        raise ConfigError(f"--limit must be within 0..{MAX_LIMIT}, got {limit}")
    return limit


def report_rows(
    con: Any,
    name: str,
    limit: int | None = None,
    window: Window = EVERYTHING,
    options: ReportOptions = DEFAULT_OPTIONS,
) -> list[dict[str, Any]]:
    """Rows of one report as dicts with exactly the contract's keys, in the contract's order,
    read on ``con`` (any DuckDB connection that sees the star schema)."""
    limit = check_report(name, limit)
    query = report_query(name)
    given = {"limit": limit, **window.params(), **options.params()}
    params = {key: value for key, value in given.items() if f"${key}" in query}
    with read_transaction(con):
        rows = con.execute(query, params).fetchall()
    return [dict(zip(REPORTS[name], row, strict=True)) for row in rows]


def run_report(
    db_path: Path,
    name: str,
    limit: int | None = None,
    window: Window = EVERYTHING,
    options: ReportOptions = DEFAULT_OPTIONS,
) -> list[dict[str, Any]]:
    """A report read from a warehouse file that no process holds."""
    check_report(name, limit)
    with read_only(db_path) as con:
        return report_rows(con, name, limit, window, options)


@contextmanager
def read_only(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to a warehouse file, without access to any other file (so that
    no query can write one); DuckDB errors become one-line errors."""
    if not db_path.is_file():
        raise ConfigError(f"--db {db_path} does not exist")
    try:
        config: dict[str, str | bool | int | float | list[str]] = {"enable_external_access": False}
        with duckdb.connect(str(db_path), read_only=True, config=config) as con:
            yield con
    except duckdb.Error as exc:
        error = translate(exc, db_path)
        if isinstance(error, DatabaseLockedError):
            raise error from exc
        raise DatabaseError(f"cannot read {db_path}: {str(exc).splitlines()[0]}") from exc
