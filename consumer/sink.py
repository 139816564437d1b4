"""The DuckDB warehouse: schema, reference upserts, and one transaction per micro-batch."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import duckdb
import polars as pl

from consumer.errors import (
    DatabaseError,
    DatabaseLockedError,
    PipelineError,
    TerminalError,
    TransientError,
)
from consumer.faults import FaultPlan
from consumer.schema import CONFLICTING_DUPLICATE, DUPLICATE, LOADED, Records
from consumer.transform import Parsed, classify, parse_values

REJECT_FRAME_SCHEMA = pl.Schema(
    {
        "idx": pl.UInt32(),
        "reason": pl.String(),
        "detail": pl.String(),
        "order_id": pl.String(),
    }
)


def sql_dir() -> Path:
    """The DDL and report queries: installed as ``consumer/sql``, or ``sql/`` of a checkout."""
    installed = Path(str(resources.files("consumer") / "sql"))
    return installed if installed.is_dir() else Path(__file__).resolve().parent.parent / "sql"


@dataclass(frozen=True)
class Batch:
    """One micro-batch as the sink needs it: parsed frames plus each record's position."""

    batch_id: int
    topic: str
    parsed: Parsed
    positions: pl.DataFrame  # idx, partition, offset
    keys: list[bytes | None]
    values: list[bytes | None]
    next_offsets: dict[int, int]

    @classmethod
    def from_records(cls, batch_id: int, topic: str, records: Records) -> Batch:
        """Transform consumed records and note where each came from."""
        positions = pl.DataFrame(
            {
                "idx": range(len(records)),
                "partition": records.partitions,
                "offset": records.offsets,
            },
            schema={"idx": pl.UInt32, "partition": pl.Int32, "offset": pl.Int64},
        )
        ends = positions.group_by("partition").agg(pl.col("offset").max() + 1)
        next_offsets = dict(zip(ends["partition"].to_list(), ends["offset"].to_list(), strict=True))
        return cls(
            batch_id,
            topic,
            parse_values(records.values),
            positions,
            records.keys,
            records.values,
            next_offsets,
        )


@dataclass(frozen=True)
class BatchResult:
    loaded: int
    duplicates: int
    fact_rows: int
    rejects: pl.DataFrame  # idx, partition, offset, reason, detail, order_id, key, value

    @property
    def rejected(self) -> int:
        return self.rejects.height

    def rejected_by_reason(self) -> dict[str, int]:
        counts = self.rejects.group_by("reason").len()
        return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))


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
            outcome = classify(orders, self._loaded_before(con, orders.select("order_id")))
            loaded = outcome.filter(pl.col("outcome") == LOADED)
            lines = batch.parsed.lines.join(
                loaded.select("idx", "order_id", "user_id", "created_at"), on="idx"
            )
            rejects = self._rejects(batch, outcome)
            self._faults.hit("fail_db_write", number)
            self._insert_loaded(con, batch, loaded, lines)
            self._faults.hit("kill_mid_write", number)
            result = BatchResult(
                loaded=loaded.height,
                duplicates=int((outcome["outcome"] == DUPLICATE).sum()),
                fact_rows=lines.height,
                rejects=rejects,
            )
            self._insert_accounting(con, batch, outcome, result)
            before_commit(rejects)
        return result

    @staticmethod
    def _loaded_before(con: duckdb.DuckDBPyConnection, keys: pl.DataFrame) -> pl.DataFrame:
        """order_id and content_hash of those keys already in processed_orders.

        The join is on a 64-bit hash of the key: DuckDB pushes a Bloom filter of the batch's
        hashes into the scan of that one narrow column, which keeps the cost per batch nearly
        independent of how many orders are loaded, whatever the shape of the ids. Hash matches
        are then confirmed on the order_id itself.
        """
        con.register("b_keys", keys)
        # Two steps in one query: find the matching rows by key_hash alone, then read their
        # order_id and content_hash. Selecting those columns in the join itself would make the
        # scan decompress them for every row of the table.
        candidates = con.sql(
            "SELECT order_id, content_hash FROM processed_orders WHERE rowid IN ("
            "SELECT p.rowid FROM processed_orders AS p "
            "SEMI JOIN (SELECT md5_number_lower(order_id) AS key_hash FROM b_keys) AS b "
            "ON p.key_hash = b.key_hash)"
        ).pl()
        con.unregister("b_keys")
        found: pl.DataFrame = candidates.join(keys, on="order_id", how="semi")
        return found

    @staticmethod
    def _rejects(batch: Batch, outcome: pl.DataFrame) -> pl.DataFrame:
        conflicts = outcome.filter(pl.col("outcome") == CONFLICTING_DUPLICATE).select(
            "idx",
            pl.lit(CONFLICTING_DUPLICATE).alias("reason"),
            pl.format("content differs from the loaded version of order {}", "order_id").alias(
                "detail"
            ),
            "order_id",
        )
        parsed = batch.parsed.rejects.with_columns(pl.lit(None, pl.String).alias("order_id"))
        rejects = (
            pl.concat([parsed, conflicts.cast(REJECT_FRAME_SCHEMA)])
            .join(batch.positions, on="idx")
            .sort("idx")
        )
        positions = rejects["idx"].to_list()
        values = [batch.values[i] for i in positions]
        return rejects.with_columns(
            pl.Series("key", [batch.keys[i] for i in positions], pl.Binary),
            pl.Series("value", values, pl.Binary),
            pl.Series("value_text", [_text_or_none(v) for v in values], pl.String),
        )

    @staticmethod
    def _insert_loaded(
        con: duckdb.DuckDBPyConnection, batch: Batch, loaded: pl.DataFrame, lines: pl.DataFrame
    ) -> None:
        params = {"now": _now(), "batch": batch.batch_id, "topic": batch.topic}
        con.register("b_loaded", loaded)
        con.register("b_lines", lines)
        # Anti-joins rather than ON CONFLICT: a scan of a small dimension is cheaper than a
        # primary-key probe per row, and only the new placeholders touch the index.
        con.execute(
            "INSERT INTO dim_user (user_id, is_inferred, updated_at) "
            "SELECT DISTINCT b.user_id, true, $now FROM b_loaded AS b "
            "ANTI JOIN dim_user AS u ON u.user_id = b.user_id WHERE b.user_id IS NOT NULL",
            {"now": params["now"]},
        )
        con.execute(
            "INSERT INTO dim_product (sku, is_inferred, updated_at) "
            "SELECT DISTINCT b.sku, true, $now FROM b_lines AS b "
            "ANTI JOIN dim_product AS p ON p.sku = b.sku",
            {"now": params["now"]},
        )
        con.execute(
            "INSERT INTO dim_order SELECT order_id, user_id, amount, currency, source, promo, "
            'created_at, line_count, $topic, "partition", "offset", $batch FROM b_loaded',
            {"topic": batch.topic, "batch": batch.batch_id},
        )
        con.execute(
            "INSERT INTO fact_sales SELECT order_id, line_number, sku, user_id, quantity, "
            "unit_price, created_at FROM b_lines"
        )
        con.execute(
            "INSERT INTO processed_orders SELECT order_id, md5_number_lower(order_id), "
            "content_hash, $batch FROM b_loaded",
            {"batch": batch.batch_id},
        )
        con.unregister("b_loaded")
        con.unregister("b_lines")

    @staticmethod
    def _insert_accounting(
        con: duckdb.DuckDBPyConnection,
        batch: Batch,
        outcome: pl.DataFrame,
        result: BatchResult,
    ) -> None:
        duplicates = outcome.filter(pl.col("outcome") == DUPLICATE).select(
            "partition", "offset", "order_id"
        )
        ledger = pl.DataFrame(
            {
                "partition": list(batch.next_offsets),
                "next_offset": list(batch.next_offsets.values()),
            },
            schema={"partition": pl.Int32, "next_offset": pl.Int64},
        )
        con.register("b_duplicates", duplicates)
        con.register("b_rejects", result.rejects)
        con.register("b_ledger", ledger)
        topic, number = batch.topic, batch.batch_id
        con.execute(
            'INSERT INTO dropped_duplicates SELECT $topic, "partition", "offset", order_id, $batch '
            "FROM b_duplicates",
            {"topic": topic, "batch": number},
        )
        con.execute(
            'INSERT INTO rejected_events SELECT $topic, "partition", "offset", reason, detail, '
            "order_id, key, value, value_text, $batch FROM b_rejects",
            {"topic": topic, "batch": number},
        )
        con.execute(
            'INSERT INTO kafka_offsets SELECT $topic, "partition", next_offset, $batch '
            'FROM b_ledger ON CONFLICT (topic, "partition") DO UPDATE SET '
            "next_offset = excluded.next_offset, batch_id = excluded.batch_id",
            {"topic": topic, "batch": number},
        )
        con.execute(
            "INSERT INTO load_batches VALUES ($batch, $now, $records, $loaded, $dups, $rejected, "
            "$facts)",
            {
                "batch": number,
                "now": _now(),
                "records": len(batch.values),
                "loaded": result.loaded,
                "dups": result.duplicates,
                "rejected": result.rejected,
                "facts": result.fact_rows,
            },
        )
        for name in ("b_duplicates", "b_rejects", "b_ledger"):
            con.unregister(name)


def _text_or_none(value: bytes | None) -> str | None:
    try:
        return None if value is None else value.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
