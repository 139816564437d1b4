"""The scale-out warehouse: DuckLake, its catalog in PostgreSQL and its data as Parquet files
in a directory or on S3, written by any number of consumers of one group at once.

Each batch is one DuckLake transaction, like a file's. What a file gets from being owned by one
process, the lake gets from its ledgers (``ledgers``): an epoch per partition fences zombies,
and a batch with an order from a foreign partition serialises with every other batch.
Concurrent batches that touch the same small table conflict at COMMIT and are redone on a
fresh snapshot (``CommitConflictError`` is transient).
"""

from __future__ import annotations

import hashlib
import os
import random
import secrets
import socket
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TypeVar

import duckdb
import polars as pl

from consumer.core.plan import Batch, BatchResult, plan_batch
from consumer.core.positions import LedgerRow
from consumer.errors import PipelineError
from consumer.faults import NO_FAULTS, Faults
from consumer.warehouse import ledgers, statements
from consumer.warehouse.extensions import CatalogUnavailableError, CommitConflictError, lake_error
from consumer.warehouse.lakeconn import ALIAS, StaleTransactionError, connect, transaction
from consumer.warehouse.protocol import BeforeCommit
from consumer.warehouse.sqlfiles import sql_dir
from consumer.warehouse.statements import utc_now as _now
from consumer.warehouse.versions import write_reference
from orders_common.logs import get_logger

log = get_logger("consumer")
T = TypeVar("T")
Connection = duckdb.DuckDBPyConnection
SCHEMA_ATTEMPTS = 10


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
        self._con: Connection | None = connect(catalog, data_path, read_only=False)
        self._suspect = False  # the last failure may have left the connection unusable
        self._create_schema()

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

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own on the lake. Its ``USE`` already asks the catalog (for the
        latest snapshot): with the catalog down it raises CatalogUnavailableError, not
        DuckDB's IOException (which killed members during a PostgreSQL restart)."""
        cursor = self._connection().cursor()
        try:
            cursor.execute(f"USE {ALIAS}")
        except duckdb.Error as exc:
            cursor.close()
            raise lake_error(exc, "cannot open a cursor on the lake") from exc
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
            return statements.committed_result(cursor, batch_id)
        except duckdb.Error as exc:
            raise lake_error(exc, "read a batch's outcome") from exc
        finally:
            cursor.close()

    def write_batch(self, batch: Batch, before_commit: BeforeCommit, number: int) -> BatchResult:
        faults = self._faults
        step = faults.step(number)

        def write(con: Connection) -> BatchResult:
            orders = batch.parsed.orders
            known = statements.loaded_before(
                con, orders.select("order_id", "key_hash"), by_rowid=False
            )
            plan = plan_batch(batch, known)
            if ledgers.misrouted(batch):
                ledgers.serialise_with_all(
                    con, batch.topic, self._topic_partitions, set(batch.next_offsets)
                )
            statements.insert_loaded(con, plan, step)
            written = write_reference(con, batch.reference, batch.batch_id, _now(), step)
            rejects = plan.rejects
            if batch.reference is not None:
                rejects = pl.concat([plan.rejects, batch.reference.rejects])
                # Reference data is written by the owner of partition 0 alone: its epoch fences
                # the reference ledgers as it fences that partition's.
                ledgers.fence(con, batch.topic, 0, self._epochs)
                ledgers.advance_reference(con, batch.reference.stands, batch.batch_id)
            statements.insert_accounting(con, plan, rejects, step)
            ledgers.advance(con, plan, self._epochs)
            before_commit(rejects)
            return plan.result(rejects, written.versions, written.redeliveries)

        result = self._run_in_transaction(write, f"write batch {batch.batch_id}")
        faults.hit("fail_db_commit", number)
        return result

    def reconnect(self) -> None:
        """Called before each retry. After a commit conflict the connection is sound: keep it
        (a new attach cost seconds per conflict on this loaded machine). Otherwise start
        afresh; a catalog still down leaves no connection, and the next attempt makes one
        (a failure here, in the retrier's callback, would end the retries at once)."""
        if not self._suspect:
            return
        with suppress(duckdb.Error):
            if self._con is not None:
                self._con.close()
        self._con = None
        try:
            self._connection()
        except PipelineError as exc:
            log.warning("lake_reconnect_failed", error=str(exc), next="the next attempt")

    def _connection(self) -> Connection:
        if self._con is None:
            self._con = connect(self._catalog, self._data_path, read_only=False)
            self._suspect = False
        return self._con

    def close(self) -> None:
        with suppress(duckdb.Error):
            if self._con is not None:
                self._con.close()

    def _create_schema(self) -> None:
        """The tables, idempotently, then the later scripts once each, then the views when
        they changed. Members starting together on an empty lake race to create them: all but
        one get a commit conflict ("this table has been created by another transaction
        already", measured with 3 members) and try again, and then find the work done."""
        for attempt in range(1, SCHEMA_ATTEMPTS + 1):
            try:
                self._run_in_transaction(migrate, "create the lake's tables")
                return
            except CommitConflictError:
                if attempt == SCHEMA_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0.1, 0.3) * attempt)

    # -- transactions ------------------------------------------------------------------------

    def _run_in_transaction(
        self, action: Callable[[Connection], T], context: str, *, cursor: bool = False
    ) -> T:
        """``action`` in one transaction, on the writer's connection or a cursor of its own
        (claims run on the polling thread while a batch may be in flight)."""
        con = self.cursor() if cursor else self._connection()
        try:
            with transaction(con):
                return action(con)
        except StaleTransactionError as exc:
            raise CommitConflictError(f"cannot {context}: {exc}") from exc
        except duckdb.ConnectionException as exc:
            # A cursor dies with the connection it came from, which the writer thread may
            # just have replaced (reconnect): try again on the new one.
            raise CatalogUnavailableError(f"cannot {context}: {exc}") from exc
        except duckdb.Error as exc:
            error = lake_error(exc, f"cannot {context}")
            self._suspect |= not cursor and not isinstance(error, CommitConflictError)
            raise error from exc
        except BaseException:
            self._suspect |= not cursor
            raise
        finally:
            if cursor:
                con.close()


def migrate(con: Connection) -> None:
    """The lake's scripts (sql/lake/) that have not run yet, in order, and the views (replaced
    only when their text changed: a DDL commit conflicts with the other members')."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, "
        "applied_at TIMESTAMP NOT NULL)"
    )
    applied = {row[0] for row in con.execute("SELECT version FROM schema_version").fetchall()}
    for script in sorted((sql_dir() / "lake").glob("[0-9][0-9][0-9]_*.sql")):
        version = int(script.name[:3])
        if version not in applied:
            con.execute(script.read_text())
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, _now()])
    views = (sql_dir() / "views" / "history.sql").read_text()
    stamp = hashlib.sha256(views.encode()).hexdigest()[:16]
    con.execute("CREATE TABLE IF NOT EXISTS lake_meta (key VARCHAR NOT NULL, value VARCHAR)")
    if con.execute("SELECT value FROM lake_meta WHERE key = 'views'").fetchall() != [(stamp,)]:
        con.execute(views)
        con.execute("DELETE FROM lake_meta WHERE key = 'views'")
        con.execute("INSERT INTO lake_meta VALUES ('views', ?)", [stamp])


__all__ = ["LakeWarehouse", "PipelineError", "connect"]
