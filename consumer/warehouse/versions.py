"""The reference rows of a batch, written in the batch's transaction (CONTRACT §2): versions of
users and products and exchange rates are appended as they arrive, never updated, so that a
DuckLake warehouse gets only INSERTs; identical re-deliveries from a topic are counted in
``dropped_duplicates`` (under the natural key) so that ``audit`` accounts for every offset of a
reference topic too. What to store is decided by ``consumer.core.refbatch.plan_versions``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import duckdb
import polars as pl

from consumer.core.refbatch import CONTENT, IDENTITY, TABLES, ReferenceBatch, plan_versions
from consumer.core.refdata import RATES

Step = Callable[[str], None]
HISTORY = {"user_versions": "dim_user_history", "product_versions": "dim_product_history"}


@dataclass(frozen=True)
class Written:
    versions: int  # versions and rates stored
    redeliveries: int  # identical re-deliveries from topics, dropped and counted


NOTHING = Written(0, 0)


def write_reference(
    con: duckdb.DuckDBPyConnection,
    reference: ReferenceBatch | None,
    batch_id: int,
    now: datetime,
    step: Step,
) -> Written:
    """Store a batch's reference rows (if any); what was stored and what was a re-delivery."""
    if reference is None:
        return NOTHING
    versions = redeliveries = 0
    for kind, rows in reference.rows.items():
        if rows.is_empty():
            continue
        key, instant = IDENTITY[kind]
        content = ", ".join(f'"{c}"' for c in CONTENT[kind])
        table = TABLES[kind]
        con.register("b_ref", rows)
        # What the warehouse holds of the batch's keys: the latest delivery of each (key,
        # instant), and each key's current version (for CSV rows without updated_at).
        latest = con.sql(
            f'SELECT t."{key}", t."{instant}", {content} FROM {table} AS t '
            f'SEMI JOIN b_ref AS b ON t."{key}" = b."{key}" AND t."{instant}" = b."{instant}" '
            f'QUALIFY row_number() OVER (PARTITION BY t."{key}", t."{instant}" '
            "ORDER BY loaded_at DESC, arrival DESC) = 1"
        ).pl()
        current = (
            con.sql(
                f'SELECT h."{key}", {content} FROM {HISTORY[table]} AS h '
                f'SEMI JOIN b_ref AS b ON h."{key}" = b."{key}" AND b."{instant}" IS NULL '
                "WHERE h.is_current"
            ).pl()
            if kind != RATES
            else pl.DataFrame()
        )
        con.unregister("b_ref")
        plan = plan_versions(kind, rows, latest, current, now)
        columns = ", ".join(f'"{c}"' for c in plan.stored.columns)
        con.register("b_store", plan.stored)
        con.execute(
            f"INSERT INTO {table} ({columns}, loaded_at, batch_id) "
            f"SELECT {columns}, $now, $batch FROM b_store",
            {"now": now, "batch": batch_id},
        )
        con.unregister("b_store")
        con.register("b_again", plan.duplicates)
        con.execute(
            'INSERT INTO dropped_duplicates (topic, "partition", "offset", order_id, batch_id, '
            'topic_id) SELECT topic, "partition", "offset", key, $batch, topic_id FROM b_again',
            {"batch": batch_id},
        )
        con.unregister("b_again")
        step(table)
        versions += plan.stored.height
        redeliveries += plan.duplicates.height
    return Written(versions, redeliveries)
