"""Ad-hoc read-only SQL over the warehouse (``orders-consumer sql``): one SELECT, nothing else."""

from __future__ import annotations

from typing import Any

import duckdb

from consumer.errors import ConfigError

READS = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}
MAX_ROWS = 100_000


def check_select(sql: str) -> None:
    """ConfigError unless ``sql`` is exactly one read: a SELECT (WITH, FROM-first, DESCRIBE,
    SUMMARIZE included) or an EXPLAIN."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ConfigError(f"sql: {str(exc).splitlines()[0]}") from None
    if len(statements) != 1:
        raise ConfigError(f"sql: exactly one statement, please (got {len(statements)})")
    kind = statements[0].type
    if kind not in READS:
        raise ConfigError(f"sql: only reads are allowed, not {kind.name}")


def run_sql(
    con: Any, sql: str, max_rows: int = MAX_ROWS
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of one read; ConfigError for anything else or a failing query."""
    check_select(sql)
    try:
        result = con.execute(sql)
        columns = [d[0] for d in result.description or []]
        rows = result.fetchmany(max_rows + 1)
    except duckdb.Error as exc:
        raise ConfigError(f"sql: {str(exc).splitlines()[0]}") from None
    if len(rows) > max_rows:
        raise ConfigError(f"sql: more than {max_rows:,} rows; add a LIMIT or aggregate")
    return columns, rows
