"""The four report queries of the original design (CONTRACT §5) and their output formats."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from consumer.errors import ConfigError, DatabaseError, DatabaseLockedError
from consumer.warehouse.duckdb_file import translate
from consumer.warehouse.sqlfiles import report_query

REPORTS: dict[str, tuple[str, ...]] = {
    "top-users": ("user_id", "total_sales"),
    "top-products": ("sku", "name", "units_sold"),
    "top-countries": ("country", "total_sales"),
    "sales-by-channel": ("source", "total_sales"),
}
UNLIMITED = ("sales-by-channel",)
DEFAULT_LIMIT = 5


def run_report(db_path: Path, name: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Rows of one report as dicts with exactly the contract's keys, in the contract's order."""
    if name not in REPORTS:
        raise ConfigError(f"unknown report {name!r}; choose from {', '.join(REPORTS)}")
    if limit is None and name not in UNLIMITED:
        limit = DEFAULT_LIMIT
    if limit is not None and limit < 0:
        raise ConfigError(f"--limit must be >= 0, got {limit}")
    with read_only(db_path) as con:
        rows = con.execute(report_query(name), {"limit": limit}).fetchall()
    return [dict(zip(REPORTS[name], row, strict=True)) for row in rows]


@contextmanager
def read_only(db_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection to a warehouse file; DuckDB errors become one-line errors."""
    if not db_path.is_file():
        raise ConfigError(f"--db {db_path} does not exist")
    try:
        with duckdb.connect(str(db_path), read_only=True) as con:
            yield con
    except duckdb.Error as exc:
        error = translate(exc, db_path)
        if isinstance(error, DatabaseLockedError):
            raise DatabaseLockedError(
                f"{error}; a running consumer holds it, query it after the consumer stops"
            ) from exc
        raise DatabaseError(f"cannot read {db_path}: {str(exc).splitlines()[0]}") from exc


def _decimal_text(value: Decimal) -> str:
    """Plain notation without trailing zeros beyond cents: 1234.5 -> '1234.50'."""
    text = format(value.normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def to_json(rows: Sequence[dict[str, Any]]) -> str:
    """A JSON array of objects; money stays an exact JSON number (never a binary float)."""

    def value(v: Any) -> str:
        return _decimal_text(v) if isinstance(v, Decimal) else json.dumps(v, ensure_ascii=False)

    objects = (
        "{" + ", ".join(f"{json.dumps(k)}: {value(v)}" for k, v in row.items()) + "}"
        for row in rows
    )
    return "[" + ",\n ".join(objects) + "]"


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            "" if v is None else _decimal_text(v) if isinstance(v, Decimal) else v
            for v in row.values()
        )
    return out.getvalue().rstrip("\n")


def to_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """An aligned table: text left, numbers right, NULL shown as (null)."""

    def cell(v: Any) -> str:
        if v is None:
            return "(null)"
        if isinstance(v, Decimal):
            return f"{v:,.2f}" if v == v.quantize(Decimal("0.01")) else f"{v.normalize():,f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [[cell(v) for v in row.values()] for row in rows]
    numeric = [any(isinstance(r[c], int | Decimal) for r in rows) for c in columns]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    body = [line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)]
    if not rows:
        body.append("(no rows)")
    return "\n".join(body)
