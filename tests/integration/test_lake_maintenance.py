"""Lake maintenance on a real PostgreSQL catalog and real Parquet files."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import duckdb
import pytest

from consumer.runtime.maintainer import Maintainer
from consumer.warehouse import lake, ledgers
from consumer.warehouse.maintenance import (
    MaintainSettings,
    file_counts,
    maintain,
    owns_partition_zero,
)

pytestmark = pytest.mark.integration
BATCHES = 12
ROWS = 50  # above DuckLake's default inlining limit of 10: every batch writes a Parquet file
NOW = MaintainSettings(older_than=timedelta(0), min_age=timedelta(0))


@pytest.fixture
def writer(lake_catalog: str, tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    con = lake.connect(f"postgres:{lake_catalog}", str(tmp_path / "lake"), read_only=False)
    yield con
    con.close()


def micro_batches(con: duckdb.DuckDBPyConnection, table: str) -> None:
    con.execute(f"CREATE TABLE {table} (k BIGINT, v VARCHAR)")
    for n in range(BATCHES):
        con.execute("BEGIN")
        con.execute(
            f"INSERT INTO {table} SELECT range + $base, 'v' || range FROM range({ROWS})",
            {"base": n * ROWS},
        )
        con.execute("COMMIT")


def parquet_files(root: Path, table: str) -> list[Path]:
    return sorted((root / "main" / table).glob("*.parquet"))


def test_maintenance_merges_micro_batches_into_one_file_and_keeps_every_row(
    writer: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """Twelve one-batch files become one, on disk too, and the rows are all still there."""
    micro_batches(writer, "fact_sales")
    before = writer.execute("SELECT count(*), sum(k), count(DISTINCT v) FROM fact_sales").fetchall()
    assert file_counts(writer)["fact_sales"] == BATCHES
    assert len(parquet_files(tmp_path / "lake", "fact_sales")) == BATCHES

    report = maintain(writer, NOW)

    assert file_counts(writer)["fact_sales"] == 1
    assert len(parquet_files(tmp_path / "lake", "fact_sales")) == 1
    assert report.files_before["fact_sales"] == BATCHES and report.files_after["fact_sales"] == 1
    after = writer.execute("SELECT count(*), sum(k), count(DISTINCT v) FROM fact_sales").fetchall()
    assert after == before == [(BATCHES * ROWS, sum(range(BATCHES * ROWS)), ROWS)]


def test_maintenance_leaves_the_ledgers_and_the_guard_alone(
    writer: duckdb.DuckDBPyConnection,
) -> None:
    """Tables every batch updates are not merged (a merge would conflict with each batch)."""
    ledger = ledgers.table("orders", 0)
    micro_batches(writer, f'"{ledger}"')
    micro_batches(writer, "dim_guard")
    maintain(writer, NOW)
    counts = file_counts(writer)
    assert counts[ledger] == BATCHES and counts["dim_guard"] == BATCHES


def test_orphaned_files_are_deleted_only_when_older_than_ten_minutes(
    writer: duckdb.DuckDBPyConnection, tmp_path: Path
) -> None:
    """A file no commit refers to goes once it is old; a fresh one may belong to a batch in
    flight and stays, even with --older-than 0."""
    micro_batches(writer, "fact_sales")
    folder = tmp_path / "lake" / "main" / "fact_sales"
    old, fresh = folder / "ducklake-orphan-old.parquet", folder / "ducklake-orphan-new.parquet"
    for path in (old, fresh):
        writer.execute(f"COPY (SELECT 1 AS k) TO '{path}' (FORMAT parquet)")
    hour_ago = time.time() - 3600
    os.utime(old, (hour_ago, hour_ago))

    report = maintain(writer, NOW)

    assert not old.exists() and fresh.exists()
    assert report.orphans_deleted == 1


def test_the_owner_of_partition_zero_is_the_elected_maintainer(
    writer: duckdb.DuckDBPyConnection,
) -> None:
    """Only the member named in partition 0's ledger is elected, and a lake whose partition 0
    was never claimed elects nobody."""
    assert not owns_partition_zero(writer, "orders", "member-a")
    for member in ("member-a", "member-b"):
        writer.execute("BEGIN")
        ledgers.ensure(writer, "orders", 0)
        ledgers.claim(writer, "orders", 0, member)
        writer.execute("COMMIT")
    assert owns_partition_zero(writer, "orders", "member-b")
    assert not owns_partition_zero(writer, "orders", "member-a")


def test_a_member_maintains_the_lake_only_while_it_owns_partition_zero(
    writer: duckdb.DuckDBPyConnection, lake_catalog: str, tmp_path: Path
) -> None:
    """`run --maintain-every`: the non-owner's pass does nothing, the owner's merges."""
    micro_batches(writer, "fact_sales")
    writer.execute("BEGIN")
    ledgers.ensure(writer, "orders", 0)
    ledgers.claim(writer, "orders", 0, "member-b")
    writer.execute("COMMIT")
    catalog, data = f"postgres:{lake_catalog}", str(tmp_path / "lake")
    for member, expected in (("member-a", BATCHES), ("member-b", 1)):
        maintainer = Maintainer(catalog, data, NOW, topic="orders", member=member)
        try:
            report = maintainer.once()
        finally:
            maintainer.stop()
        assert (report is None) == (member == "member-a")
        assert file_counts(writer)["fact_sales"] == expected


def test_a_transaction_open_across_a_pass_still_reads_the_files_a_merge_replaced(
    writer: duckdb.DuckDBPyConnection, lake_catalog: str, tmp_path: Path
) -> None:
    """A merge schedules the files it replaced for deletion at once: with the default minimum
    age they stay on disk for a transaction that began before it (a member's batch, a report),
    and go in a later pass."""
    micro_batches(writer, "fact_sales")
    reader = lake.connect(f"postgres:{lake_catalog}", None, read_only=True)
    try:
        reader.execute("BEGIN TRANSACTION")
        first = reader.execute("SELECT count(*) FROM fact_sales").fetchall()
        maintain(writer, MaintainSettings(older_than=timedelta(0)))  # the default minimum age
        assert file_counts(writer)["fact_sales"] == 1  # merged in the catalog
        again = reader.execute("SELECT count(*), sum(k) FROM fact_sales").fetchall()
        assert first == [(BATCHES * ROWS,)] and again == [
            (BATCHES * ROWS, sum(range(BATCHES * ROWS)))
        ]
        reader.execute("COMMIT")
    finally:
        reader.close()
    assert len(parquet_files(tmp_path / "lake", "fact_sales")) == BATCHES + 1  # not yet deleted
    maintain(writer, NOW)  # (a later pass, past the minimum age)
    assert len(parquet_files(tmp_path / "lake", "fact_sales")) == 1
