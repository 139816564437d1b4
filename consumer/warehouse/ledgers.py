"""The lake's offsets ledgers: one table per (topic, partition), one row each, which is also
the fence against a zombie member.

DuckLake has no keys, and UPDATEs of two different rows of one table conflict at COMMIT (the
check is table-wide; measured on 1.5.5). One table per partition turns that into the fence:
- a new owner bumps the partition's epoch in a transaction of its own (``claim``);
- every batch updates the ledger of each of its partitions ``WHERE epoch = <its epoch>`` and
  requires one row: a member whose epoch was bumped matches nothing (its snapshot is newer) or
  conflicts at COMMIT (older), and so writes nothing late;
- a batch holding an order that arrived on another partition than its key's also updates
  every other ledger of the topic, which serialises it with every batch that could load the
  same order.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

from consumer.core.plan import Batch, BatchPlan
from consumer.core.positions import LedgerRow
from consumer.core.refbatch import TopicStand
from consumer.errors import FencedError

PREFIX = "ledger_"


def table(topic: str, partition: int) -> str:
    """A table name per (topic, partition); topic names may hold '.' and '-'."""
    slug = re.sub(r"[^a-z0-9]", "_", topic.lower())[:40]
    digest = hashlib.sha1(topic.encode()).hexdigest()[:8]
    return f"{PREFIX}{slug}_{digest}_p{partition}"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def ensure(con: Any, topic: str, partition: int) -> None:
    """Create the partition's ledger with its one row, in one statement (a concurrent create
    conflicts at COMMIT instead of leaving two rows)."""
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {_ident(table(topic, partition))} AS SELECT "
        'CAST($topic AS VARCHAR) AS topic, CAST($p AS INTEGER) AS "partition", '
        "CAST(NULL AS VARCHAR) AS topic_id, CAST(NULL AS BIGINT) AS next_offset, "
        "CAST(NULL AS BIGINT) AS first_offset, CAST(0 AS BIGINT) AS epoch, "
        "CAST(NULL AS VARCHAR) AS owner, CAST(NULL AS BIGINT) AS batch_id, "
        "CAST(0 AS BIGINT) AS touches",
        {"topic": topic, "p": partition},
    )


def claim(con: Any, topic: str, partition: int, owner: str) -> tuple[int, LedgerRow | None]:
    """Bump the epoch (the caller commits); this member's epoch and the ledger row."""
    name = _ident(table(topic, partition))
    con.execute(f"UPDATE {name} SET epoch = epoch + 1, owner = $owner", {"owner": owner})
    # (DuckLake has no UPDATE ... RETURNING; the transaction reads its own write.)
    row = con.execute(f"SELECT epoch, next_offset, topic_id, first_offset FROM {name}").fetchall()
    if not row:
        raise FencedError(f"the ledger of partition {partition} has no row")
    epoch, next_offset, topic_id, first = max(row, key=lambda r: int(r[0]))
    if next_offset is None:
        return int(epoch), None
    return int(epoch), LedgerRow(int(next_offset), topic_id, None if first is None else int(first))


def read(con: Any, topic: str) -> dict[int, LedgerRow]:
    """Every ledger row of the topic (partitions never written have none)."""
    names = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND starts_with(table_name, $prefix)",
            {"prefix": table(topic, 0)[: -len("p0")]},
        ).fetchall()
    ]
    out: dict[int, LedgerRow] = {}
    for name in names:
        for p, n, t, f in con.execute(
            f'SELECT "partition", next_offset, topic_id, first_offset FROM {_ident(name)} '
            "WHERE next_offset IS NOT NULL ORDER BY epoch DESC LIMIT 1"
        ).fetchall():
            out[int(p)] = LedgerRow(int(n), t, None if f is None else int(f))
    return out


def advance(con: Any, plan: BatchPlan, epochs: dict[int, int]) -> None:
    """Move each partition's ledger to where the batch leaves it, fenced by the epoch."""
    batch = plan.batch
    for partition, next_offset in sorted(batch.next_offsets.items()):
        epoch = epochs.get(partition)
        updated = (
            None
            if epoch is None
            else con.execute(
                f"UPDATE {_ident(table(batch.topic, partition))} SET next_offset = $next, "
                "first_offset = CASE WHEN topic_id IS DISTINCT FROM $topic_id THEN $first "
                "ELSE coalesce(first_offset, $first) END, "
                "topic_id = coalesce($topic_id, topic_id), batch_id = $batch "
                "WHERE epoch = $epoch",
                {
                    "next": next_offset,
                    "topic_id": batch.topic_id,
                    "first": batch.first_offsets.get(partition),
                    "batch": batch.batch_id,
                    "epoch": epoch,
                },
            ).fetchone()
        )
        if updated is None or int(updated[0]) != 1:
            raise FencedError(
                f"partition {partition} belongs to another member now (epoch {epoch} is "
                "stale); this member writes nothing more and stops"
            )


def fence(con: Any, topic: str, partition: int, epochs: dict[int, int]) -> None:
    """Require that this member still owns ``partition`` (its epoch is current), without
    moving its ledger: a batch that writes on the partition's behalf (reference data, written
    by the owner of partition 0) then commits only while it does."""
    epoch = epochs.get(partition)
    touched = (
        None
        if epoch is None
        else con.execute(
            f"UPDATE {_ident(table(topic, partition))} SET touches = touches + 1 "
            "WHERE epoch = $epoch",
            {"epoch": epoch},
        ).fetchone()
    )
    if touched is None or int(touched[0]) != 1:
        raise FencedError(
            f"partition {partition} belongs to another member now (epoch {epoch} is stale); "
            "this member writes no reference data and stops"
        )


def advance_reference(con: Any, stands: Mapping[str, TopicStand], batch_id: int) -> None:
    """Move the ledgers of the reference topics a batch read (one table per partition, like
    the orders topic's; only the owner of partition 0 writes them, behind its fence)."""
    for topic, stand in stands.items():
        for partition, next_offset in sorted(stand.next_offsets.items()):
            ensure(con, topic, partition)
            con.execute(
                f"UPDATE {_ident(table(topic, partition))} SET next_offset = $next, "
                "first_offset = CASE WHEN topic_id IS DISTINCT FROM $topic_id THEN $first "
                "ELSE coalesce(first_offset, $first) END, "
                "topic_id = coalesce($topic_id, topic_id), batch_id = $batch",
                {
                    "next": next_offset,
                    "topic_id": stand.topic_id,
                    "first": stand.first_offsets.get(partition),
                    "batch": batch_id,
                },
            )


def serialise_with_all(con: Any, topic: str, partitions: int, mine: set[int]) -> None:
    """Touch every other ledger of the topic: this batch then conflicts with any concurrent
    batch, so an order that arrived on a foreign partition is loaded once."""
    for partition in range(partitions):
        if partition not in mine:
            ensure(con, topic, partition)
            con.execute(f"UPDATE {_ident(table(topic, partition))} SET touches = touches + 1")


def misrouted(batch: Batch) -> bool:
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
