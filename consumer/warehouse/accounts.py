"""What a warehouse says it holds of a topic, for ``audit``: the ledger, and where each
offset went (a ``dim_order`` row, a ``dropped_duplicates`` row or a ``rejected_events`` row).

Both kinds keep the same accounting tables; only their ledgers differ (a file's
``kafka_offsets``, a lake's table per partition), so each kind provides its ledger reader."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

from consumer.core.positions import LedgerRow
from consumer.warehouse import duckdb_file, ledgers
from consumer.warehouse.protocol import Accounts

PLACES = {
    "loaded": ("dim_order", "kafka_topic", "kafka_topic_id", "kafka_partition", "kafka_offset"),
    "duplicate": ("dropped_duplicates", "topic", "topic_id", '"partition"', '"offset"'),
    "rejected": ("rejected_events", "topic", "topic_id", '"partition"', '"offset"'),
}
LedgerReader = Callable[[Any, str], dict[int, LedgerRow]]


class TableAccounts:
    """The accounts read with SQL on ``con``, the ledger with ``read_ledger``."""

    def __init__(self, con: Any, read_ledger: LedgerReader) -> None:
        self._con = con
        self._read_ledger = read_ledger

    def ledger(self, topic: str) -> dict[int, LedgerRow]:
        return self._read_ledger(self._con, topic)

    def places(self, topic: str, topic_id: str | None) -> dict[int, dict[str, dict[int, int]]]:
        """partition -> outcome -> offset -> rows, for the topic with this id (rows written
        before ids were kept have none, and count as this topic's)."""
        found: dict[int, dict[str, dict[int, int]]] = defaultdict(lambda: defaultdict(dict))
        for outcome, (table, name, id_column, partition, offset) in PLACES.items():
            rows = self._con.execute(
                f"SELECT {partition}, {offset}, count(*) FROM {table} "
                f"WHERE {name} = $topic AND ({id_column} IS NULL OR {id_column} = $id "
                "OR $id IS NULL) GROUP BY ALL",
                {"topic": topic, "id": topic_id},
            ).fetchall()
            for p, o, n in rows:
                found[int(p)][outcome][int(o)] = int(n)
        return found

    def skipped(self, topic: str, topic_id: str | None) -> dict[int, int]:
        rows = self._con.execute(
            'SELECT "partition", sum(to_offset - from_offset) FROM skipped_offsets '
            "WHERE topic = $topic AND (topic_id IS NULL OR topic_id = $id OR $id IS NULL) "
            "GROUP BY ALL",
            {"topic": topic, "id": topic_id},
        ).fetchall()
        return {int(p): int(n) for p, n in rows}


def of_file(con: Any) -> Accounts:
    """The accounts of a DuckDB file open on ``con``."""
    return TableAccounts(con, duckdb_file.read_ledger)


def of_lake(con: Any) -> Accounts:
    """The accounts of a lake attached on ``con``."""
    return TableAccounts(con, ledgers.read)
