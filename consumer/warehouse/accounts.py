"""What a warehouse says it holds of a topic, for ``audit``: the ledger, and where each
offset went (a ``dim_order`` row, a ``dropped_duplicates`` row or a ``rejected_events`` row)."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from consumer.core.positions import LedgerRow
from consumer.warehouse import ledgers

PLACES = {
    "loaded": ("dim_order", "kafka_topic", "kafka_topic_id", "kafka_partition", "kafka_offset"),
    "duplicate": ("dropped_duplicates", "topic", "topic_id", '"partition"', '"offset"'),
    "rejected": ("rejected_events", "topic", "topic_id", '"partition"', '"offset"'),
}


def ledger_rows(con: Any, topic: str) -> dict[int, LedgerRow]:
    """The ledger of a file (``kafka_offsets``) or of a lake (one table per partition)."""
    tables = con.execute(
        "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
        "AND table_name = 'kafka_offsets'"
    ).fetchall()
    if not tables[0][0]:
        return ledgers.read(con, topic)
    rows = con.execute(
        'SELECT "partition", next_offset, topic_id, first_offset FROM kafka_offsets '
        "WHERE topic = ?",
        [topic],
    ).fetchall()
    return {int(p): LedgerRow(int(n), t, None if f is None else int(f)) for p, n, t, f in rows}


def places(con: Any, topic: str, topic_id: str | None) -> dict[int, dict[str, dict[int, int]]]:
    """partition -> outcome -> offset -> rows, for the topic with this id (rows written
    before ids were kept have none, and count as this topic's)."""
    found: dict[int, dict[str, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
    for outcome, (table, name, id_column, partition, offset) in PLACES.items():
        rows = con.execute(
            f"SELECT {partition}, {offset}, count(*) FROM {table} "
            f"WHERE {name} = $topic AND ({id_column} IS NULL OR {id_column} = $id "
            "OR $id IS NULL) GROUP BY ALL",
            {"topic": topic, "id": topic_id},
        ).fetchall()
        for p, o, n in rows:
            found[int(p)][outcome][int(o)] = int(n)
    return found


def skipped(con: Any, topic: str, topic_id: str | None) -> dict[int, int]:
    """partition -> offsets recorded as deleted by retention before they were read."""
    rows = con.execute(
        'SELECT "partition", sum(to_offset - from_offset) FROM skipped_offsets '
        "WHERE topic = $topic AND (topic_id IS NULL OR topic_id = $id OR $id IS NULL) "
        "GROUP BY ALL",
        {"topic": topic, "id": topic_id},
    ).fetchall()
    return {int(p): int(n) for p, n in rows}
