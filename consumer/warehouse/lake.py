"""The scale-out warehouse: DuckLake, its catalog in PostgreSQL and its data as Parquet files
in a directory or on S3, written by any number of consumers of one group at once.

Each batch is one DuckLake transaction, like a file's. What a file gets from being owned by one
process, the lake gets from its ledgers (``ledgers``): an epoch per partition fences zombies,
and a batch with an order from a foreign partition serialises with every other batch.
Concurrent batches that touch the same small table conflict at COMMIT and are redone on a
fresh snapshot (``CommitConflictError`` is transient).
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import TypeVar

import duckdb
import polars as pl

from consumer.core.plan import Batch, BatchResult, plan_batch
from consumer.core.positions import LedgerRow
from consumer.errors import PipelineError
from consumer.faults import NO_FAULTS, Faults
from consumer.warehouse import ledgers, statements
from consumer.warehouse.extensions import attach_lake, lake_error, set_commit_retries
from consumer.warehouse.protocol import BeforeCommit
from consumer.warehouse.sqlfiles import sql_dir

ALIAS = "lake"
T = TypeVar("T")
Connection = duckdb.DuckDBPyConnection
# Snapshot-id races of 3 writers: 2 of 450 commits exhausted DuckLake's default 10 retries,
# none at 100 (docs/ducklake.md).
COMMIT_RETRIES = 100


def s3_secret(con: duckdb.DuckDBPyConnection) -> None:
    """S3 credentials and endpoint from the environment (never from flags), for s3:// data."""
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not (key and secret):
        return
    endpoint = os.environ.get("ORDERS_S3_ENDPOINT")
    parts = [
        "TYPE s3",
        f"KEY_ID '{key}'",
        f"SECRET '{secret}'",
        f"REGION '{os.environ.get('AWS_REGION', 'us-east-1')}'",
        f"URL_STYLE '{os.environ.get('ORDERS_S3_URL_STYLE', 'vhost' if not endpoint else 'path')}'",
        f"USE_SSL {os.environ.get('ORDERS_S3_USE_SSL', 'true').lower() in ('1', 'true', 'yes')}",
    ]
    if endpoint:
        parts.append(f"ENDPOINT '{endpoint}'")
    con.execute(f"CREATE OR REPLACE SECRET lake_s3 ({', '.join(parts)})")


def connect(catalog: str, data_path: str | None, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake attached as the default database."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    try:
        con.execute("SET enable_progress_bar = false")
        s3_secret(con)
        attach_lake(con, catalog, data_path, alias=ALIAS, read_only=read_only)
        con.execute(f"USE {ALIAS}")
        set_commit_retries(con, COMMIT_RETRIES, wait_ms=50)
    except BaseException:
        con.close()
        raise
    return con


class LakeWarehouse:
    def __init__(
        self,
        catalog: str,
        data_path: str | None,
        *,
        faults: Faults = NO_FAULTS,
        member: str | None = None,
    ) -> None:
        self._catalog, self._data_path = catalog, data_path
        self._faults = faults
        self.member = member or f"{socket.gethostname()}-{os.getpid()}"
        self._epochs: dict[int, int] = {}
        self._topic_partitions = 0
        self._con = connect(catalog, data_path, read_only=False)
        self._run_in_transaction(
            lambda con: con.execute((sql_dir() / "lake" / "001_lake_schema.sql").read_text()),
            "create the lake's tables",
        )
        self._run_in_transaction(
            lambda con: con.execute(
                "INSERT INTO dim_guard SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM dim_guard)"
            ),
            "create the dimension guard",
        )

    # -- the Warehouse protocol --------------------------------------------------------------

    @property
    def description(self) -> str:
        return f"ducklake {self._data_path or '(data path from the catalog)'}"

    @property
    def single_writer(self) -> bool:
        return False

    def instance_id(self) -> str:
        return self.member

    def next_batch_id(self) -> int:
        """Batch ids unique across members without coordination (63 random bits)."""
        return secrets.randbits(62) + 1

    def last_batch_id(self) -> int:
        return self.next_batch_id()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cursor = self._con.cursor()
        cursor.execute(f"USE {ALIAS}")
        return cursor

    def claim(
        self, topic: str, partitions: list[int], partition_count: int
    ) -> dict[int, LedgerRow]:
        """Become the owner of these partitions: bump their epochs, return their ledger rows."""
        self._topic_partitions = max(self._topic_partitions, partition_count)
        rows: dict[int, LedgerRow] = {}
        for partition in partitions:

            def bump(
                con: duckdb.DuckDBPyConnection, p: int = partition
            ) -> tuple[int, LedgerRow | None]:
                ledgers.ensure(con, topic, p)
                return ledgers.claim(con, topic, p, self.member)

            epoch, row = self._run_in_transaction(bump, f"claim partition {partition}", cursor=True)
            self._epochs[partition] = epoch
            if row is not None:
                rows[partition] = row
        return rows

    def release(self, partitions: list[int]) -> None:
        for p in partitions:
            self._epochs.pop(p, None)

    def ledger(self, topic: str) -> dict[int, LedgerRow]:
        cursor = self.cursor()
        try:
            return ledgers.read(cursor, topic)
        except duckdb.Error as exc:
            raise lake_error(exc, "read the ledgers") from exc
        finally:
            cursor.close()

    def committed_result(self, batch_id: int) -> BatchResult | None:
        cursor = self.cursor()
        try:
            found = cursor.execute(
                "SELECT loaded, duplicates, fact_rows FROM load_batches WHERE batch_id = ?",
                [batch_id],
            ).fetchall()
            if not found:
                return None
            rejects = cursor.sql(
                'SELECT "partition", "offset", reason FROM rejected_events WHERE batch_id = $id',
                params={"id": batch_id},
            ).pl()
        except duckdb.Error as exc:
            raise lake_error(exc, "read a batch's outcome") from exc
        finally:
            cursor.close()
        loaded, duplicates, facts = found[0]
        return BatchResult(loaded=loaded, duplicates=duplicates, fact_rows=facts, rejects=rejects)

    def upsert_reference(self, users: pl.DataFrame | None, products: pl.DataFrame | None) -> None:
        now = _now()

        def upsert(con: Connection) -> None:
            for frame, name, key, columns in (
                (users, "dim_user", "user_id", "user_id, name, email, country, signup_date"),
                (products, "dim_product", "sku", "sku, name, category, list_price"),
            ):
                if frame is None:
                    continue
                con.register("ref", frame)
                con.execute(f"DELETE FROM {name} WHERE {key} IN (SELECT {key} FROM ref)")
                con.execute(
                    f"INSERT INTO {name} SELECT {columns}, false, $now FROM ref", {"now": now}
                )
                con.unregister("ref")
            con.execute("UPDATE dim_guard SET n = n + 1")

        self._run_in_transaction(upsert, "upsert the reference data")

    def write_batch(self, batch: Batch, before_commit: BeforeCommit, number: int) -> BatchResult:
        faults = self._faults

        def step(name: str) -> None:
            faults.hit(f"statement:{name}", number)
            if name == "dim_order":
                faults.hit("kill_mid_write", number)
                faults.hit("fail_db_write", number)

        def write(con: Connection) -> BatchResult:
            orders = batch.parsed.orders
            known = statements.loaded_before(con, orders.select("order_id"), by_rowid=False)
            plan = plan_batch(batch, known)
            if _misrouted(batch):
                ledgers.serialise_with_all(
                    con, batch.topic, self._topic_partitions, set(batch.next_offsets)
                )
            if statements.insert_loaded(con, plan, step):
                con.execute("UPDATE dim_guard SET n = n + 1")
            statements.insert_accounting(con, plan, step)
            ledgers.advance(con, plan, self._epochs)
            before_commit(plan.rejects)
            return plan.result()

        result = self._run_in_transaction(write, f"write batch {batch.batch_id}")
        faults.hit("fail_db_commit", number)
        return result

    def reconnect(self) -> None:
        with suppress(duckdb.Error):
            self._con.close()
        self._con = connect(self._catalog, self._data_path, read_only=False)

    def close(self) -> None:
        with suppress(duckdb.Error):
            self._con.close()

    # -- transactions ------------------------------------------------------------------------

    def _run_in_transaction(
        self, action: Callable[[Connection], T], context: str, *, cursor: bool = False
    ) -> T:
        """``action`` in one transaction, on the writer's connection or a cursor of its own
        (claims run on the polling thread while a batch may be in flight)."""
        con = self.cursor() if cursor else self._con
        try:
            with _transaction(con):
                return action(con)
        except duckdb.Error as exc:
            raise lake_error(exc, f"cannot {context}") from exc
        finally:
            if cursor:
                con.close()


@contextmanager
def _transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise


def _misrouted(batch: Batch) -> bool:
    """Whether a valid order arrived under another key than its order_id (or none): another
    partition may then hold it too."""
    orders = batch.parsed.orders
    if orders.is_empty():
        return False
    keys = [batch.keys[i] for i in orders["idx"].to_list()]
    return any(
        key is None or key != order.encode()
        for key, order in zip(keys, orders["order_id"].to_list(), strict=True)
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


__all__ = ["LakeWarehouse", "PipelineError", "connect"]
