"""The DuckDB warehouse: connection, schema, ledger, reference upserts, and one transaction per
micro-batch (its statements are in ``load``)."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl

from consumer import load
from consumer.batch import Batch, BatchResult, rejects_of
from consumer.errors import (
    DatabaseError,
    DatabaseLockedError,
    PipelineError,
    TerminalError,
    TransientError,
)
from consumer.faults import FaultPlan
from consumer.schema import DUPLICATE, LOADED
from consumer.transform import classify


def sql_dir() -> Path:
    """The DDL and report queries: installed as ``consumer/sql``, or ``sql/`` of a checkout."""
    installed = Path(str(resources.files("consumer") / "sql"))
    return installed if installed.is_dir() else Path(__file__).resolve().parent.parent / "sql"


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


class Warehouse:
    """Owns the single read-write DuckDB connection of this process."""

    def __init__(
        self, path: Path, faults: FaultPlan | None = None, memory_limit: str = "256MB"
    ) -> None:
        self.path = path
        self._faults = faults or FaultPlan()
        # A checkpoint rewrites the data written since the last one; at the default 16 MB of
        # WAL that happens every few batches (measured: 20% of write time at 1M orders).
        # 64 MB keeps crash recovery (WAL replay) short. The memory limit keeps RSS flat as
        # the database grows: DuckDB otherwise caches up to 80% of RAM.
        self._config: dict[str, str | bool | int | float | list[str]] = {
            "checkpoint_threshold": "64MB",
            "memory_limit": memory_limit,
        }
        self._con = self._connect()

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
            self._migrate(con)
        except duckdb.Error as exc:
            con.close()
            raise DatabaseError(f"cannot apply the schema to {self.path}: {exc}") from exc
        return con

    @staticmethod
    def _migrate(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("BEGIN TRANSACTION")
        con.execute((sql_dir() / "001_star_schema.sql").read_text())
        applied = {row[0] for row in con.execute("SELECT version FROM schema_version").fetchall()}
        for script in sorted(sql_dir().glob("[0-9][0-9][0-9]_*.sql")):
            version = int(script.name[:3])
            if version not in applied:
                if version != 1:
                    con.execute(script.read_text())
                con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, _now()])
        con.execute(
            "INSERT INTO pipeline_meta VALUES ('instance_id', ?) ON CONFLICT DO NOTHING",
            [uuid.uuid4().hex[:12]],
        )
        con.execute("COMMIT")

    def reconnect(self) -> None:
        """Start over with a fresh connection, after a failed transaction."""
        with suppress(duckdb.Error):
            self._con.close()
        self._con = self._connect()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """Another connection to this database, for tools in the same process (benchmarks)."""
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

    def ledger(self, topic: str) -> dict[int, int]:
        """The next offset to read per partition, as committed with the data.

        Read through a connection of its own: it is asked from the Kafka callbacks, while the
        writer thread may be inside a batch transaction on the main connection.
        """
        with self._con.cursor() as cursor:
            rows = cursor.execute(
                'SELECT "partition", next_offset FROM kafka_offsets WHERE topic = ?', [topic]
            ).fetchall()
        return {int(partition): int(offset) for partition, offset in rows}

    def last_batch_id(self) -> int:
        rows = self._con.execute("SELECT coalesce(max(batch_id), 0) FROM load_batches").fetchall()
        return int(rows[0][0])

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
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

    def upsert_reference(self, users: pl.DataFrame | None, products: pl.DataFrame | None) -> None:
        """Insert or complete dimension rows; placeholders become real (is_inferred = false)."""
        now = _now()
        with self._transaction() as con:
            if users is not None:
                con.register("ref_users", users)
                con.execute(
                    """
                    INSERT INTO dim_user
                    SELECT user_id, name, email, country, signup_date, false, $now FROM ref_users
                    ON CONFLICT (user_id) DO UPDATE SET
                        name = excluded.name, email = excluded.email, country = excluded.country,
                        signup_date = excluded.signup_date, is_inferred = false,
                        updated_at = excluded.updated_at
                    """,
                    {"now": now},
                )
                con.unregister("ref_users")
            if products is not None:
                con.register("ref_products", products)
                con.execute(
                    """
                    INSERT INTO dim_product
                    SELECT sku, name, category, list_price, false, $now FROM ref_products
                    ON CONFLICT (sku) DO UPDATE SET
                        name = excluded.name, category = excluded.category,
                        list_price = excluded.list_price, is_inferred = false,
                        updated_at = excluded.updated_at
                    """,
                    {"now": now},
                )
                con.unregister("ref_products")

    def write_batch(
        self,
        batch: Batch,
        before_commit: Callable[[pl.DataFrame], None],
        batch_number: int = 0,
    ) -> BatchResult:
        """Write one batch in ONE transaction; ``before_commit`` sees the final rejects.

        Anything raised rolls the whole batch back, so no offset is recorded without its data.
        ``batch_number`` counts batches in this process, for the test-only fault plan.
        """
        number = batch_number
        with self._transaction() as con:
            orders = batch.parsed.orders.join(batch.positions, on="idx")
            outcome = classify(orders, load.loaded_before(con, orders.select("order_id")))
            loaded = outcome.filter(pl.col("outcome") == LOADED)
            lines = batch.parsed.lines.join(
                loaded.select("idx", "order_id", "user_id", "created_at"), on="idx"
            )
            rejects = rejects_of(batch, outcome)
            self._faults.hit("fail_db_write", number)
            load.insert_loaded(con, batch, loaded, lines)
            self._faults.hit("kill_mid_write", number)
            result = BatchResult(
                loaded=loaded.height,
                duplicates=int((outcome["outcome"] == DUPLICATE).sum()),
                fact_rows=lines.height,
                rejects=rejects,
            )
            load.insert_accounting(con, batch, outcome, result)
            before_commit(rejects)
        return result


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
