"""The DuckDB warehouse on real temp files: locks, bad paths, foreign files, reconnecting,
reference upserts over placeholders, and what a committed batch reads back as."""

from __future__ import annotations

from pathlib import Path

import duckdb
import polars as pl
import pytest

from consumer.core.reasons import INVALID_JSON
from consumer.errors import DatabaseError, DatabaseLockedError, TerminalError, TransientError
from consumer.warehouse.duckdb_file import DuckDBWarehouse, translate
from consumer.warehouse.sqlfiles import sql_dir
from tests.unit.warehouse.batchkit import (
    ORDERS,
    TOPIC,
    held_by_another_process,
    write,
    write_files,
)


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_database_held_by_another_process_is_refused_naming_that_process(
    tmp_path: Path,
) -> None:
    """A second writer gets DatabaseLockedError (not a retryable error) naming the holder's PID."""
    path = tmp_path / "w.duckdb"
    DuckDBWarehouse(path).close()
    with held_by_another_process(path) as pid, pytest.raises(DatabaseLockedError) as caught:
        DuckDBWarehouse(path)
    message = str(caught.value)
    assert f"PID {pid}" in message
    assert str(path) in message
    assert "\n" not in message


def test_a_lock_message_without_a_pid_still_says_the_database_is_in_use() -> None:
    """DuckDB's lock error maps to DatabaseLockedError whether or not it names a PID."""
    error = translate(duckdb.IOException('Could not set lock on file "w.duckdb"'), Path("w"))
    assert isinstance(error, DatabaseLockedError)
    assert "PID" not in str(error)
    assert "in use" in str(error)


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (duckdb.IOException("disk full"), TransientError),
        (duckdb.TransactionException("conflict"), TransientError),
        (duckdb.ConstraintException("duplicate key"), TerminalError),
        (duckdb.CatalogException("no such table"), TerminalError),
    ],
)
def test_duckdb_errors_map_to_retryable_or_terminal(exc: duckdb.Error, kind: type) -> None:
    """I/O and transaction conflicts are retried; a broken statement or schema is not."""
    error = translate(exc, Path("w.duckdb"))
    assert type(error) is kind
    assert str(exc) in str(error)


def test_a_directory_is_not_a_database(tmp_path: Path) -> None:
    """Pointing the warehouse at a directory fails with DatabaseError naming the path."""
    with pytest.raises(DatabaseError, match="cannot open database") as caught:
        DuckDBWarehouse(tmp_path)
    assert str(tmp_path) in str(caught.value)


def test_a_parent_that_cannot_be_created_is_a_database_error(tmp_path: Path) -> None:
    """A database under a regular file (no directory can be made there) is DatabaseError."""
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(DatabaseError, match="cannot create"):
        DuckDBWarehouse(blocker / "sub" / "w.duckdb")


def test_a_foreign_duckdb_file_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    """A DuckDB file of another application, whose schema_version differs, is not migrated."""
    path = tmp_path / "other.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE schema_version (label VARCHAR)")
    with pytest.raises(DatabaseError, match="cannot apply the schema"):
        DuckDBWarehouse(path)
    tables = {r[0] for r in rows(path, "SELECT table_name FROM information_schema.tables")}
    assert tables == {"schema_version"}


def test_reopening_keeps_the_instance_id_and_the_ledger(tmp_path: Path) -> None:
    """The instance id (static membership) and the ledger survive a close and a reopen."""
    path = tmp_path / "w.duckdb"
    first = DuckDBWarehouse(path)
    write(first, ORDERS, partition=2, first=40)
    instance = first.instance_id()
    first.close()
    again = DuckDBWarehouse(path)
    try:
        assert again.instance_id() == instance
        assert {p: r.next_offset for p, r in again.ledger(TOPIC).items()} == {2: 40 + len(ORDERS)}
        assert again.ledger("another-topic") == {}
    finally:
        again.close()


def test_a_new_file_is_in_the_newer_storage_format_and_an_old_one_keeps_its_own(
    tmp_path: Path,
) -> None:
    """A file the warehouse creates carries DuckDB 1.5's storage format; a file made in the
    default (0.10.2) format is written on in that format, not converted."""

    def storage(path: Path) -> str:
        found = rows(
            path, "SELECT tags['storage_version'] FROM duckdb_databases() WHERE NOT internal"
        )
        return str(found[0][0])

    made = tmp_path / "made.duckdb"
    DuckDBWarehouse(made).close()
    assert storage(made) == "v1.5.0+"
    old = tmp_path / "old.duckdb"
    duckdb.connect(str(old)).close()
    warehouse = DuckDBWarehouse(old)
    try:
        write(warehouse, ORDERS)
    finally:
        warehouse.close()
    assert storage(old) == "v1.0.0+"
    assert rows(old, "SELECT count(*) FROM dim_order") == [(len(ORDERS),)]


def test_reconnect_gives_a_working_connection_to_the_same_data(tmp_path: Path) -> None:
    """After reconnect() the warehouse reads what it wrote before and writes on."""
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        write(warehouse, ORDERS[:1], batch_id=1)
        warehouse.reconnect()
        write(warehouse, ORDERS[1:], batch_id=2, first=1)
        assert warehouse.next_batch_id() == 3
        assert {p: r.next_offset for p, r in warehouse.ledger(TOPIC).items()} == {0: len(ORDERS)}
        with warehouse.cursor() as cursor:
            assert cursor.execute("SELECT count(*) FROM dim_order").fetchall() == [(3,)]
    finally:
        warehouse.close()


def test_reference_data_completes_placeholders_and_adds_new_rows(tmp_path: Path) -> None:
    """Users and products first seen in orders are inferred until the CSV data arrives; then
    they are complete and no longer inferred, and unseen ones are added."""
    path = tmp_path / "w.duckdb"
    warehouse = DuckDBWarehouse(path)
    write(warehouse, ORDERS)
    users = pl.DataFrame(
        {
            "user_id": ["u-1", "u-9"],
            "name": ["Ada", "Nine"],
            "email": ["ada@example.com", None],
            "country": ["FR", None],
            "signup_date": pl.Series([None, None], dtype=pl.Date),
            "updated_at": pl.Series([None, None], dtype=pl.Datetime("us")),
        }
    )
    products = pl.DataFrame(
        {"sku": ["p-2"], "name": ["Pen"], "category": ["office"], "list_price": ["3.2500"],
         "updated_at": [None]},
    ).with_columns(pl.col("list_price").cast(pl.Decimal(18, 4)),
                   pl.col("updated_at").cast(pl.Datetime("us")))  # fmt: skip
    write_files(
        warehouse, [("users", "users.csv", users), ("products", "products.csv", products)], 2
    )
    warehouse.close()
    assert rows(path, "SELECT user_id, name, country, is_inferred FROM dim_user ORDER BY 1") == [
        ("u-1", "Ada", "FR", False),
        ("u-2", None, None, True),
        ("u-9", "Nine", None, False),
    ]
    assert rows(path, "SELECT sku, name, is_inferred FROM dim_product ORDER BY 1") == [
        ("p-1", None, True),
        ("p-2", "Pen", False),
    ]


def test_upserting_only_one_dimension_leaves_the_other_alone(tmp_path: Path) -> None:
    """A products file alone does not touch dim_user."""
    path = tmp_path / "w.duckdb"
    warehouse = DuckDBWarehouse(path)
    write(warehouse, ORDERS)
    products = pl.DataFrame(
        {"sku": ["p-1"], "name": ["Cup"], "category": [None], "list_price": [None],
         "updated_at": [None]},
        schema={"sku": pl.String, "name": pl.String, "category": pl.String,
                "list_price": pl.Decimal(18, 4), "updated_at": pl.Datetime("us")},
    )  # fmt: skip
    write_files(warehouse, [("products", "products.csv", products)], 2)
    warehouse.close()
    assert rows(path, "SELECT count(*) FROM dim_user WHERE is_inferred") == [(2,)]
    assert rows(path, "SELECT name FROM dim_product WHERE sku = 'p-1'") == [("Cup",)]


def test_committed_result_reads_back_what_a_batch_wrote(tmp_path: Path) -> None:
    """After a batch commits, committed_result gives its counts and rejects; before, None."""
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    try:
        assert warehouse.committed_result(1) is None
        # o-1 again identical (a duplicate), and a record that is not JSON (a reject).
        values = [*ORDERS, ORDERS[0], b"{not json"]
        written = write(warehouse, values, batch_id=1)
        found = warehouse.committed_result(1)
        assert found is not None
        assert (found.loaded, found.duplicates, found.fact_rows) == (3, 1, 4)
        assert (written.loaded, written.duplicates, written.fact_rows) == (3, 1, 4)
        assert found.rejects.rows() == [(0, 4, INVALID_JSON)]
        assert warehouse.committed_result(2) is None
    finally:
        warehouse.close()


def test_a_file_with_content_hashes_of_the_older_form_is_refused(tmp_path: Path) -> None:
    """A file loaded before numbers were hashed by exact value would call identical re-sends
    conflicts: it is refused with one line, and a new file is accepted."""
    old = tmp_path / "old.duckdb"
    with duckdb.connect(str(old)) as con:
        con.execute((sql_dir() / "001_star_schema.sql").read_text())
        con.execute("INSERT INTO schema_version VALUES (1, now())")
        con.execute("INSERT INTO processed_orders VALUES ('o-1', 1, 1, 1)")
    with pytest.raises(DatabaseError, match="older version") as caught:
        DuckDBWarehouse(old)
    assert "\n" not in str(caught.value)
    DuckDBWarehouse(tmp_path / "new.duckdb").close()
