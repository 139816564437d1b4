"""The statements of one batch's transaction in a DuckDB database (the caller opens and
commits it). ``step`` is called after each statement with its name (fault hooks)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import duckdb
import polars as pl

from consumer.core.plan import BatchPlan

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


def insert_loaded(con: duckdb.DuckDBPyConnection, plan: BatchPlan, step: Step) -> int:
    """Insert the loaded orders, their lines and placeholders; the number of placeholder
    dimension rows made."""
    batch = plan.batch
    now = _now()
    con.register("b_loaded", plan.loaded)
    con.register("b_lines", plan.lines)
    # Anti-joins rather than ON CONFLICT: a scan of a small dimension is cheaper than a
    # primary-key probe per row, and only the new placeholders touch the index.
    users = con.execute(
        "INSERT INTO dim_user (user_id, is_inferred, updated_at) "
        "SELECT DISTINCT b.user_id, true, $now FROM b_loaded AS b "
        "ANTI JOIN dim_user AS u ON u.user_id = b.user_id WHERE b.user_id IS NOT NULL",
        {"now": now},
    )
    made = _count(users)
    step("dim_user")
    products = con.execute(
        "INSERT INTO dim_product (sku, is_inferred, updated_at) "
        "SELECT DISTINCT b.sku, true, $now FROM b_lines AS b "
        "ANTI JOIN dim_product AS p ON p.sku = b.sku",
        {"now": now},
    )
    made += _count(products)
    step("dim_product")
    con.execute(
        "INSERT INTO dim_order (order_id, user_id, amount, currency, source, promo, created_at, "
        "line_count, kafka_topic, kafka_partition, kafka_offset, batch_id, kafka_topic_id) "
        "SELECT order_id, user_id, amount, currency, source, promo, created_at, line_count, "
        '$topic, "partition", "offset", $batch, $topic_id FROM b_loaded',
        {"topic": batch.topic, "batch": batch.batch_id, "topic_id": batch.topic_id},
    )
    step("dim_order")
    con.execute(
        "INSERT INTO fact_sales SELECT order_id, line_number, sku, user_id, quantity, "
        "unit_price, created_at FROM b_lines"
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
    return made


def _count(result: duckdb.DuckDBPyConnection) -> int:
    row = result.fetchone()
    return int(row[0]) if row else 0


def insert_accounting(con: duckdb.DuckDBPyConnection, plan: BatchPlan, step: Step) -> None:
    """Re-sends, rejects, retention gaps and the batch's row (every kind of warehouse)."""
    batch = plan.batch
    result = plan.result()
    skipped = pl.DataFrame(
        {
            "partition": list(batch.skipped),
            "from_offset": [low for low, _ in batch.skipped.values()],
            "to_offset": [high for _, high in batch.skipped.values()],
        },
        schema={"partition": pl.Int32, "from_offset": pl.Int64, "to_offset": pl.Int64},
    )
    con.register("b_duplicates", plan.duplicates)
    con.register("b_rejects", plan.rejects)
    con.register("b_skipped", skipped)
    ids = {"topic": batch.topic, "batch": batch.batch_id, "topic_id": batch.topic_id}
    con.execute(
        'INSERT INTO dropped_duplicates SELECT $topic, "partition", "offset", order_id, $batch, '
        "$topic_id FROM b_duplicates",
        ids,
    )
    step("dropped_duplicates")
    con.execute(
        'INSERT INTO rejected_events SELECT $topic, "partition", "offset", reason, detail, '
        "order_id, key, value, value_text, $batch, $topic_id FROM b_rejects",
        ids,
    )
    step("rejected_events")
    con.execute(
        'INSERT INTO skipped_offsets SELECT $topic, $topic_id, "partition", from_offset, '
        "to_offset, 'retention', $batch FROM b_skipped",
        ids,
    )
    con.execute(
        "INSERT INTO load_batches VALUES ($batch, $now, $records, $loaded, $dups, $rejected, "
        "$facts)",
        {
            "batch": batch.batch_id,
            "now": _now(),
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
    """The file's offsets ledger: one row per (topic, partition), in ``kafka_offsets``."""
    batch = plan.batch
    ids = {"topic": batch.topic, "batch": batch.batch_id, "topic_id": batch.topic_id}
    partitions = list(batch.next_offsets)
    ledger = pl.DataFrame(
        {
            "partition": partitions,
            "next_offset": [batch.next_offsets[p] for p in partitions],
            "first_offset": [batch.first_offsets.get(p) for p in partitions],
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
        ids,
    )
    step("kafka_offsets")
    con.unregister("b_ledger")


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
