"""The embedded warehouse: one DuckDB file, owned by one consumer process."""

from __future__ import annotations

import re
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

import duckdb
import polars as pl

from consumer.core.plan import Batch, BatchResult, plan_batch
from consumer.core.positions import LedgerRow
from consumer.errors import (
    DatabaseError,
    DatabaseLockedError,
    PipelineError,
    TerminalError,
    TransientError,
)
from consumer.faults import NO_FAULTS, Faults
from consumer.settings import WarehouseSettings
from consumer.warehouse import redrive, statements
from consumer.warehouse.protocol import BeforeCommit
from consumer.warehouse.redrive import Key, Selection, Tally
from consumer.warehouse.sqlfiles import read_script, sql_dir
from consumer.warehouse.statements import utc_now as _now
from consumer.warehouse.versions import write_reference


def translate(exc: duckdb.Error, path: Path) -> PipelineError:
    """Map a DuckDB exception to the pipeline's hierarchy."""
    message = str(exc).splitlines()[0]
    if isinstance(exc, duckdb.IOException) and "lock" in message.lower():
        pid = re.search(r"PID (\d+)", message)
        holder = f" (PID {pid.group(1)})" if pid else ""
        return DatabaseLockedError(
            f"database {path} is in use by another process{holder}; "
            "one consumer process per database"
        )
    if isinstance(exc, duckdb.IOException | duckdb.TransactionException | duckdb.FatalException):
        return TransientError(f"DuckDB: {message}")
    return TerminalError(f"DuckDB: {message}")


# Files made by this version need DuckDB 1.5 or later to be read (the project pins 1.5.5).
STORAGE_VERSION = "v1.5.0"


class DuckDBWarehouse:
    """Owns the single read-write DuckDB connection of this process."""

    def __init__(
        self,
        path: Path,
        *,
        faults: Faults = NO_FAULTS,
        memory_limit: str = WarehouseSettings.memory_limit,
    ):
        self.path = path
        self._faults = faults
        # A checkpoint rewrites the data written since the last one; at the default 16 MB of
        # WAL that happens every few batches, a large share of the write time. 64 MB still
        # keeps crash recovery (WAL replay) short. The memory limit keeps RSS flat as the
        # database grows: DuckDB otherwise caches up to 80% of RAM (the default is in
        # settings.py; a smaller one saved little memory and cost throughput). One thread: a
        # batch's statements are small, and a second DuckDB worker competes with the polling
        # thread for the two cores.
        #
        # A new file is written in DuckDB 1.5's storage format rather than the default of
        # 0.10.2 (a file keeps the format it was made with): its string compression
        # (dictionary and FSST in one pass) analyses each column once where the old analysed
        # it for each method.
        #
        # Each choice was measured: docs/performance.md, "Why the code is set as it is".
        self._config: dict[str, str | bool | int | float | list[str]] = {
            "storage_compatibility_version": STORAGE_VERSION,
            "checkpoint_threshold": "64MB",
            "memory_limit": memory_limit,
            "threads": 1,
        }
        self._con = self._connect()
        self._last_batch_id: int | None = None
        self._ids = threading.Lock()

    @property
    def description(self) -> str:
        return str(self.path)

    @property
    def single_writer(self) -> bool:
        """A file must hold the whole topic: its consumer shares its group with nobody."""
        return True

    def _connect(self) -> duckdb.DuckDBPyConnection:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            con = duckdb.connect(str(self.path), config=self._config)
        except duckdb.Error as exc:
            error = translate(exc, self.path)
            raise (
                error
                if isinstance(error, DatabaseLockedError)
                else DatabaseError(f"cannot open database {self.path}: {str(exc).splitlines()[0]}")
            ) from exc
        except OSError as exc:
            raise DatabaseError(f"cannot create {self.path.parent}: {exc.strerror}") from exc
        try:
            migrate(con)
            hashes = con.execute(
                "SELECT value FROM pipeline_meta WHERE key = 'content_hash'"
            ).fetchall()
        except duckdb.Error as exc:
            con.close()
            raise DatabaseError(f"cannot apply the schema to {self.path}: {exc}") from exc
        if hashes != [("v2",)]:
            con.close()
            raise DatabaseError(
                f"{self.path} was written by an older version whose re-send detection hashed "
                "money as binary floats; load the topic into a new file (its ledger starts "
                "at the log start)"
            )
        # The consumer needs no file but its own: with external access off (for good: it
        # cannot be turned back on), a read sent through the local channel cannot write one.
        con.execute("SET enable_external_access = false")
        return con

    def reconnect(self) -> None:
        with suppress(duckdb.Error):
            self._con.close()
        self._con = self._connect()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """Another connection to this database, for readers in the same process."""
        return self._con.cursor()

    def close(self) -> None:
        try:
            self._con.close()
        except duckdb.Error as exc:
            raise translate(exc, self.path) from exc

    def instance_id(self) -> str:
        rows = self._con.execute(
            "SELECT value FROM pipeline_meta WHERE key = 'instance_id'"
        ).fetchall()
        return str(rows[0][0])

    def ledger(self, topic: str) -> dict[int, LedgerRow]:
        # Through a cursor of its own: asked from the Kafka callbacks, while the writer thread
        # may be inside a batch transaction on the main connection.
        with self._con.cursor() as cursor:
            return read_ledger(cursor, topic)

    def claim(
        self, topic: str, partitions: list[int], partition_count: int
    ) -> dict[int, LedgerRow]:
        """One process owns the file: there is no one to fence; the rows as they are."""
        rows = self.ledger(topic)
        return {p: rows[p] for p in partitions if p in rows}

    def release(self, partitions: list[int]) -> None:
        pass

    def next_batch_id(self) -> int:
        # (asked by the writer and, for a redrive sent through the local channel, another thread)
        with self._ids:
            if self._last_batch_id is None:
                with self._con.cursor() as cursor:
                    rows = cursor.execute("SELECT coalesce(max(batch_id), 0) FROM load_batches")
                    self._last_batch_id = int(rows.fetchall()[0][0])
            self._last_batch_id += 1
            return self._last_batch_id

    def redrive_chunk(
        self, selection: Selection, after: Key | None, limit: int, *, dry_run: bool, number: int = 0
    ) -> Tally:
        """Read the next ``limit`` rejects again, in one transaction on a connection of its own
        (the writer's may be inside a batch). It rewrites the topic's ledger rows unchanged:
        a batch writing them at the same time conflicts with it, and one of the two is redone
        (the same order_id must not be loaded by both)."""
        cursor = self._con.cursor()
        try:
            cursor.execute("BEGIN TRANSACTION")
            rows = redrive.one_topic_id(redrive.candidates(cursor, selection, after, limit))
            if not dry_run and not rows.is_empty():
                cursor.execute(
                    "UPDATE kafka_offsets SET batch_id = batch_id WHERE topic = ?",
                    [selection.topic],
                )
            tally = redrive.redrive_rows(
                cursor, rows, selection.topic, self.next_batch_id(), _now(), dry_run=dry_run,
                step=self._faults.step(number),
            )  # fmt: skip
            cursor.execute("ROLLBACK" if dry_run else "COMMIT")
            return tally
        except duckdb.Error as exc:
            with suppress(duckdb.Error):
                cursor.execute("ROLLBACK")
            raise translate(exc, self.path) from exc
        finally:
            cursor.close()

    def committed_result(self, batch_id: int) -> BatchResult | None:
        with self._con.cursor() as cursor:
            return statements.committed_result(cursor, batch_id)

    @contextmanager
    def _transaction(self, number: int = 0) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._con
        try:
            con.execute("BEGIN TRANSACTION")
            yield con
            con.execute("COMMIT")
        except BaseException as exc:
            with suppress(duckdb.Error):
                con.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error):
                raise translate(exc, self.path) from exc
            raise
        self._faults.hit("fail_db_commit", number)

    def write_batch(self, batch: Batch, before_commit: BeforeCommit, number: int) -> BatchResult:
        """Write one batch in ONE transaction; ``number`` counts batches in this process (for
        the fault hooks)."""
        step = self._faults.step(number)
        with self._transaction(number) as con:
            known = statements.loaded_before(
                con, batch.parsed.orders.select("order_id", "key_hash")
            )
            plan = plan_batch(batch, known)
            statements.insert_loaded(con, plan, step)
            written = write_reference(con, batch.reference, batch.batch_id, _now(), step)
            rejects = plan.rejects
            if batch.reference is not None:
                rejects = pl.concat([plan.rejects, batch.reference.rejects])
            statements.insert_accounting(con, plan, rejects, step)
            statements.upsert_ledger(con, plan, step)
            before_commit(rejects)
        return plan.result(rejects, written.versions, written.redeliveries)


def read_ledger(con: duckdb.DuckDBPyConnection, topic: str) -> dict[int, LedgerRow]:
    """A file's ledger of the topic (``kafka_offsets``), one row per partition read."""
    rows = con.execute(
        'SELECT "partition", next_offset, topic_id, first_offset FROM kafka_offsets '
        "WHERE topic = ?",
        [topic],
    ).fetchall()
    return {int(p): LedgerRow(int(n), t, None if f is None else int(f)) for p, n, t, f in rows}


def migrate(con: duckdb.DuckDBPyConnection) -> None:
    """Apply the schema and any later scripts, idempotently, in one transaction."""
    con.execute("BEGIN TRANSACTION")
    # Each script runs once (a later one may replace a table of an earlier one by a view).
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version "
        "(version INTEGER PRIMARY KEY, applied_at TIMESTAMP NOT NULL)"
    )
    applied = {row[0] for row in con.execute("SELECT version FROM schema_version").fetchall()}
    for script in sorted(sql_dir().glob("[0-9][0-9][0-9]_*.sql")):
        version = int(script.name[:3])
        if version not in applied:
            con.execute(read_script(script))
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, _now()])
    con.execute((sql_dir() / "views" / "history.sql").read_text())
    con.execute(
        "INSERT INTO pipeline_meta VALUES ('instance_id', ?) ON CONFLICT DO NOTHING",
        [uuid.uuid4().hex[:12]],
    )
    con.execute("COMMIT")
