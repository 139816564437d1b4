"""Reads while a consumer holds the file: the local channel's server and client, read-only SQL,
and the fallback of ``query``/``sql`` to the channel when the file is locked."""

from __future__ import annotations

import os
import shutil
import stat
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from consumer.commands import reading
from consumer.core.windows import Window
from consumer.errors import ConfigError, DatabaseError
from consumer.serving.channel import Channel, answer, ask, socket_path
from consumer.settings import WarehouseSettings
from consumer.warehouse.adhoc import check_read, run_sql
from consumer.warehouse.duckdb_file import DuckDBWarehouse
from consumer.warehouse.reports import report_rows
from tests.unit.warehouse.batchkit import held_by_another_process, warehouse_with_orders


@pytest.fixture
def warehouse(tmp_path: Path) -> DuckDBWarehouse:
    path = warehouse_with_orders(tmp_path / "w.duckdb")
    opened = DuckDBWarehouse(path)
    yield opened  # type: ignore[misc]
    opened.close()


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("DELETE FROM dim_order", "only reads"),
        ("SELECT 1; SELECT 2", "exactly one statement"),
        ("COPY dim_order TO '/tmp/x.csv'", "only reads"),
        ("SELEC 1", "sql:"),
    ],
)
def test_anything_but_one_read_is_refused(sql: str, message: str) -> None:
    """Writes, several statements and syntax errors are ConfigError (exit 2)."""
    with pytest.raises(ConfigError, match=message):
        check_read(sql)


def test_a_read_returns_columns_and_rows_and_a_huge_one_is_refused(
    warehouse: DuckDBWarehouse,
) -> None:
    """One SELECT gives names and rows; more rows than the cap is refused, not truncated."""
    con = warehouse.cursor()
    columns, rows = run_sql(con, "SELECT count(*) AS n FROM dim_order")
    assert columns == ["n"] and rows[0][0] > 0
    with pytest.raises(ConfigError, match="more than 1 rows"):
        run_sql(con, "SELECT * FROM range(5)", max_rows=1)
    with pytest.raises(ConfigError, match="sql:"):
        run_sql(con, "SELECT * FROM no_such_table")


def test_the_channel_answers_reports_and_sql_with_their_types(warehouse: DuckDBWarehouse) -> None:
    """Decimals, timestamps and text come back as they are, through an owner-only socket."""
    sock = socket_path(warehouse.path)
    channel = Channel(sock, warehouse.cursor)
    try:
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        columns, rows = ask(sock, {"op": "report", "name": "top-users", "limit": 2})
        expected = report_rows(warehouse.cursor(), "top-users", 2)
        assert columns == ["user_id", "total_sales", "currency"]
        assert [dict(zip(columns, r, strict=True)) for r in rows] == expected
        assert all(isinstance(r[1], Decimal) for r in rows)
        _, stamped = ask(sock, {"op": "sql", "sql": "SELECT max(created_at) FROM dim_order"})
        assert isinstance(stamped[0][0], datetime)
        with pytest.raises(ConfigError, match="only reads"):
            ask(sock, {"op": "sql", "sql": "DROP TABLE dim_order"})
        # The report options travel too: in EUR, with no rate, nothing converts.
        _, in_eur = ask(sock, {"op": "report", "name": "top-users", "currency": "EUR"})
        assert in_eur == []
        with pytest.raises(ConfigError, match="currency"):
            ask(sock, {"op": "report", "name": "top-users", "currency": "euro"})
        with pytest.raises(ConfigError, match="unknown request"):
            ask(sock, {"op": "write"})
    finally:
        channel.close()
    assert not sock.exists()
    with pytest.raises(DatabaseError, match="does not answer"):
        ask(sock, {"op": "sql", "sql": "SELECT 1"})


def test_a_bad_window_is_a_usage_error_from_the_channel(warehouse: DuckDBWarehouse) -> None:
    """A since after until, sent to a running consumer, comes back as exit-2 material."""
    reply = answer(
        warehouse.cursor,
        {"op": "report", "name": "top-users", "since": "2025-02-01", "until": "2025-01-01"},
    )
    assert reply["ok"] is False and reply["code"] == 2


def test_query_and_sql_on_a_held_file_go_through_the_holders_channel(tmp_path: Path) -> None:
    """The file is locked by another process: reading falls back to the socket beside it."""
    held = warehouse_with_orders(tmp_path / "held.duckdb")
    copy = tmp_path / "copy.duckdb"
    shutil.copy(held, copy)
    serving = DuckDBWarehouse(copy)
    channel = Channel(socket_path(held), serving.cursor)
    target = WarehouseSettings(db_path=held)
    try:
        offline = report_rows(serving.cursor(), "top-products", None)
        with held_by_another_process(held):
            columns, rows = reading.report(target, "top-products", None, Window())
            _, counted = reading.sql(target, "SELECT count(*) FROM dim_order")
        assert [dict(zip(columns, r, strict=True)) for r in rows] == offline
        assert (
            counted[0][0]
            == serving.cursor().execute("SELECT count(*) FROM dim_order").fetchall()[0][0]
        )
    finally:
        channel.close()
        serving.close()
