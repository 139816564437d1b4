"""The report queries on a real DuckDB file: exact totals worked out by hand, the limit, and
the files a report cannot be read from."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from consumer.commands import reading
from consumer.errors import ConfigError, DatabaseError, DatabaseLockedError
from consumer.formats import to_csv, to_json, to_table
from consumer.settings import WarehouseSettings
from consumer.warehouse.reports import run_report
from tests.unit.warehouse.batchkit import held_by_another_process, warehouse_with_orders


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file for the module: the tests only read it."""
    return warehouse_with_orders(tmp_path_factory.mktemp("query") / "w.duckdb")


def test_each_report_has_the_contract_keys_and_hand_computed_figures(db: Path) -> None:
    """top-users, top-products and sales-by-channel match the totals of batchkit.ORDERS."""
    assert run_report(db, "top-users") == [
        {"user_id": "u-1", "total_sales": Decimal("34.00"), "currency": "USD"},
        {"user_id": "u-2", "total_sales": Decimal("13.75"), "currency": "USD"},
    ]
    assert run_report(db, "top-products") == [
        {"sku": "p-2", "name": None, "units_sold": 5},
        {"sku": "p-1", "name": None, "units_sold": 3},
    ]
    assert run_report(db, "sales-by-channel") == [
        {"source": "web", "total_sales": Decimal("21.00"), "currency": "USD"},
        {"source": "app", "total_sales": Decimal("13.75"), "currency": "USD"},
        {"source": None, "total_sales": Decimal("13.00"), "currency": "USD"},
    ]


def test_the_limit_cuts_the_rows_and_zero_gives_none(db: Path) -> None:
    """--limit N keeps the first N rows of the order; 0 is allowed and prints nothing."""
    assert [r["user_id"] for r in run_report(db, "top-users", 1)] == ["u-1"]
    assert run_report(db, "sales-by-channel", 0) == []


def test_a_negative_limit_is_a_usage_error(db: Path) -> None:
    """A negative --limit is ConfigError (exit 2), naming the flag."""
    with pytest.raises(ConfigError, match="--limit") as caught:
        run_report(db, "top-users", -1)
    assert caught.value.exit_code == 2


def test_an_unknown_report_is_a_usage_error(db: Path) -> None:
    """A report name outside the four is ConfigError listing the four."""
    with pytest.raises(ConfigError, match="top-users, top-products"):
        run_report(db, "bottom-users")


def test_a_missing_file_is_a_usage_error_and_is_not_created(tmp_path: Path) -> None:
    """Querying a path with no database is ConfigError; no empty database is left behind."""
    missing = tmp_path / "none.duckdb"
    with pytest.raises(ConfigError, match="does not exist"):
        run_report(missing, "top-users")
    assert not missing.exists()


def test_a_file_that_is_not_a_database_is_a_database_error(tmp_path: Path) -> None:
    """A file of another kind is DatabaseError (exit 1), one line naming the file."""
    bogus = tmp_path / "notes.duckdb"
    bogus.write_text("just some text, long enough to look like a header of something\n" * 100)
    with pytest.raises(DatabaseError) as caught:
        run_report(bogus, "top-users")
    assert str(bogus) in str(caught.value)
    assert "\n" not in str(caught.value)
    assert caught.value.exit_code == 1


def test_a_database_held_by_a_running_consumer_says_so(db: Path) -> None:
    """A file a writer holds is DatabaseLockedError naming the holder; read through
    ``reading`` it also says that the holder offers no local channel to read it through."""
    with held_by_another_process(db) as pid, pytest.raises(DatabaseLockedError) as caught:
        run_report(db, "top-users")
    assert f"PID {pid}" in str(caught.value)
    with held_by_another_process(db), pytest.raises(DatabaseLockedError) as through:
        reading.report(WarehouseSettings(db_path=db), "top-users", None)
    assert "offers no local channel" in str(through.value)


# -- output formats -------------------------------------------------------------------------

ROWS: list[dict[str, Any]] = [
    {"source": "web", "total_sales": Decimal("1234.5000")},
    {"source": "app", "total_sales": Decimal("0.1250")},
    {"source": None, "total_sales": Decimal("7")},
]


def test_json_output_has_exact_keys_and_exact_decimal_numbers() -> None:
    """--format json prints row objects whose money parses back to the exact decimal."""
    rows = json.loads(to_json(ROWS), parse_float=Decimal, parse_int=Decimal)
    assert [list(row) for row in rows] == [["source", "total_sales"]] * 3
    assert [row["total_sales"] for row in rows] == [
        Decimal("1234.5"),
        Decimal("0.125"),
        Decimal("7"),
    ]
    assert rows[2]["source"] is None


def test_table_output_aligns_numbers_right_and_shows_null() -> None:
    """The default table right-aligns money with cents and prints NULL keys as (null)."""
    lines = to_table(ROWS, ("source", "total_sales")).splitlines()
    assert lines[0].split() == ["source", "total_sales"]
    assert lines[2].endswith("1,234.50")
    assert lines[3].endswith("0.125")
    assert lines[4].startswith("(null)")
    assert len({len(line) for line in lines[2:]}) == 1


def test_an_empty_table_says_so() -> None:
    """A report without rows prints its header and (no rows)."""
    assert to_table([], ("source", "total_sales")).splitlines()[-1] == "(no rows)"


def test_csv_output_has_a_header_and_empty_nulls() -> None:
    """--format csv prints a header row, plain decimals and empty fields for NULL."""
    assert to_csv(ROWS, ("source", "total_sales")).splitlines() == [
        "source,total_sales",
        "web,1234.50",
        "app,0.125",
        ",7.00",
    ]
