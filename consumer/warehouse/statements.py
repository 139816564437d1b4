"""The statements of one batch's transaction in a DuckDB database (the caller opens and
commits it). ``step`` is called after each statement with its name (fault hooks)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import duckdb
import polars as pl

from consumer.core.plan import BatchPlan, BatchResult
from consumer.core.refbatch import TopicStand

Step = Callable[[str], None]


def loaded_before(
    con: duckdb.DuckDBPyConnection, keys: pl.DataFrame, *, by_rowid: bool = True
) -> pl.DataFrame:
    """order_id and content_hash of those keys (order_id, key_hash) already in
    processed_orders.

    The join is on a 64-bit hash of the key: DuckDB pushes a Bloom filter of the batch's
    hashes into the scan of that one narrow column, which keeps the cost per batch nearly
    independent of how many orders are loaded, whatever the shape of the ids. Hash matches
    are then confirmed on the order_id itself.
    """
    con.register("b_keys", keys)
    # Two steps in one query: find the matching rows by key_hash alone, then read their
    # order_id and content_hash. Selecting those columns in the join itself would make the
    # scan decompress them for every row of the table.
    # (A lake's Parquet files have no rowid to come back to: there, one semi-join.)
    candidates = con.sql(
        "SELECT order_id, content_hash FROM processed_orders WHERE rowid IN ("
        "SELECT p.rowid FROM processed_orders AS p SEMI JOIN b_keys AS b "
        "ON p.key_hash = b.key_hash)"
        if by_rowid
        else "SELECT p.order_id, p.content_hash FROM processed_orders AS p SEMI JOIN b_keys AS b "
        "ON p.key_hash = b.key_hash"
    ).pl()
    con.unregister("b_keys")
    found: pl.DataFrame = candidates.join(keys, on="order_id", how="semi")
    return found


def insert_loaded(con: duckdb.DuckDBPyConnection, plan: BatchPlan, step: Step) -> None:
    """Insert the loaded orders, their lines (each with its order's currency) and their keys.
    Users and skus without a version need no placeholder row: the dim_user and dim_product
    views infer them from the orders (sql/views/history.sql)."""
    batch = plan.batch
    con.register("b_loaded", plan.loaded)
    con.register("b_lines", plan.lines)
    con.execute(
        "INSERT INTO dim_order (order_id, user_id, amount, currency, source, promo, created_at, "
        "line_count, kafka_topic, kafka_partition, kafka_offset, batch_id, kafka_topic_id) "
        "SELECT order_id, user_id, amount, currency, source, promo, created_at, line_count, "
        '$topic, "partition", "offset", $batch, $topic_id FROM b_loaded',
        {"topic": batch.topic, "batch": batch.batch_id, "topic_id": batch.topic_id},
    )
    step("dim_order")
    con.execute(
        "INSERT INTO fact_sales (order_id, line_number, sku, user_id, quantity, unit_price, "
        "created_at, currency) SELECT order_id, line_number, sku, user_id, quantity, "
        "unit_price, created_at, currency FROM b_lines"
    )
    step("fact_sales")
    con.execute(
        "INSERT INTO processed_orders SELECT order_id, key_hash, content_hash, $batch "
        "FROM b_loaded",
        {"batch": batch.batch_id},
    )
    step("processed_orders")
    con.unregister("b_loaded")
    con.unregister("b_lines")


def insert_accounting(
    con: duckdb.DuckDBPyConnection, plan: BatchPlan, rejects: pl.DataFrame, step: Step
) -> None:
    """Re-sends, ``rejects`` (the batch's, of every topic it read), retention gaps and the
    batch's row (every kind of warehouse)."""
    batch = plan.batch
    result = plan.result(rejects)
    gaps = [(batch.topic, batch.topic_id, p, gap) for p, gap in batch.skipped.items()]
    for topic, stand in (batch.reference.stands if batch.reference else {}).items():
        gaps += [(topic, stand.topic_id, p, gap) for p, gap in stand.skipped.items()]
    skipped = pl.DataFrame(
        {
            "topic": [topic for topic, _, _, _ in gaps],
            "topic_id": [topic_id for _, topic_id, _, _ in gaps],
            "partition": [p for _, _, p, _ in gaps],
            "from_offset": [low for _, _, _, (low, _) in gaps],
            "to_offset": [high for _, _, _, (_, high) in gaps],
        },
        schema={"topic": pl.String, "topic_id": pl.String, "partition": pl.Int32,
                "from_offset": pl.Int64, "to_offset": pl.Int64},
    )  # fmt: skip
    con.register("b_duplicates", plan.duplicates)
    con.register("b_rejects", rejects)
    con.register("b_skipped", skipped)
    ids = {"topic": batch.topic, "batch": batch.batch_id, "topic_id": batch.topic_id}
    con.execute(
        'INSERT INTO dropped_duplicates SELECT $topic, "partition", "offset", order_id, $batch, '
        "$topic_id FROM b_duplicates",
        ids,
    )
    step("dropped_duplicates")
    con.execute(
        'INSERT INTO rejected_events SELECT topic, "partition", "offset", reason, detail, '
        "order_id, key, value, value_text, $batch, topic_id FROM b_rejects",
        {"batch": batch.batch_id},
    )
    step("rejected_events")
    con.execute(
        'INSERT INTO skipped_offsets SELECT topic, topic_id, "partition", from_offset, '
        "to_offset, 'retention', $batch FROM b_skipped",
        {"batch": batch.batch_id},
    )
    con.execute(
        "INSERT INTO load_batches VALUES ($batch, $now, $records, $loaded, $dups, $rejected, "
        "$facts)",
        {
            "batch": batch.batch_id,
            "now": utc_now(),
            "records": batch.size,
            "loaded": result.loaded,
            "dups": result.duplicates,
            "rejected": result.rejected,
            "facts": result.fact_rows,
        },
    )
    step("load_batches")
    for name in ("b_duplicates", "b_rejects", "b_skipped"):
        con.unregister(name)


def upsert_ledger(con: duckdb.DuckDBPyConnection, plan: BatchPlan, step: Step) -> None:
    """The file's offsets ledger: one row per (topic, partition), in ``kafka_offsets``, for the
    orders topic and for every reference topic the batch read."""
    batch = plan.batch
    stands = {batch.topic: TopicStand(batch.topic_id, batch.next_offsets, batch.first_offsets)}
    stands |= batch.reference.stands if batch.reference else {}
    for topic, stand in stands.items():
        upsert_ledger_rows(
            con,
            topic,
            topic_id=stand.topic_id,
            batch_id=batch.batch_id,
            next_offsets=stand.next_offsets,
            first_offsets=stand.first_offsets,
        )
    step("kafka_offsets")


def upsert_ledger_rows(
    con: duckdb.DuckDBPyConnection,
    topic: str,
    *,
    topic_id: str | None,
    batch_id: int,
    next_offsets: dict[int, int],
    first_offsets: dict[int, int],
) -> None:
    partitions = list(next_offsets)
    ledger = pl.DataFrame(
        {
            "partition": partitions,
            "next_offset": [next_offsets[p] for p in partitions],
            "first_offset": [first_offsets.get(p) for p in partitions],
        },
        schema={"partition": pl.Int32, "next_offset": pl.Int64, "first_offset": pl.Int64},
    )
    con.register("b_ledger", ledger)
    # One row per partition; a re-created topic (another id) starts the row afresh.
    con.execute(
        'INSERT INTO kafka_offsets (topic, "partition", next_offset, batch_id, topic_id, '
        'first_offset) SELECT $topic, "partition", next_offset, $batch, $topic_id, first_offset '
        'FROM b_ledger ON CONFLICT (topic, "partition") DO UPDATE SET '
        "next_offset = excluded.next_offset, batch_id = excluded.batch_id, "
        "first_offset = CASE WHEN kafka_offsets.topic_id IS DISTINCT FROM excluded.topic_id "
        "THEN excluded.first_offset "
        "ELSE coalesce(kafka_offsets.first_offset, excluded.first_offset) END, "
        "topic_id = coalesce(excluded.topic_id, kafka_offsets.topic_id)",
        {"topic": topic, "batch": batch_id, "topic_id": topic_id},
    )
    con.unregister("b_ledger")


def committed_result(con: duckdb.DuckDBPyConnection, batch_id: int) -> BatchResult | None:
    """What batch ``batch_id`` wrote, read back (None: its transaction never committed)."""
    found = con.execute(
        "SELECT loaded, duplicates, fact_rows FROM load_batches WHERE batch_id = ?", [batch_id]
    ).fetchall()
    if not found:
        return None
    rejects = con.sql(
        'SELECT "partition", "offset", reason FROM rejected_events WHERE batch_id = $id',
        params={"id": batch_id},
    ).pl()
    loaded, duplicates, fact_rows = found[0]
    return BatchResult(loaded=loaded, duplicates=duplicates, fact_rows=fact_rows, rejects=rejects)


def utc_now() -> datetime:
    """The time rows are stamped with: UTC, as a naive TIMESTAMP."""
    return datetime.now(UTC).replace(tzinfo=None)
