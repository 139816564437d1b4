"""``audit`` end to end without a broker: a real DuckDB file, the topic's offsets from a
stand-in reader, and the topic re-read by ``TopicReader`` over a stand-in client."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from confluent_kafka import KafkaError

from consumer.commands import audit
from consumer.kafka.offsets import TopicReader
from consumer.settings import KafkaSettings
from consumer.warehouse import accounts
from consumer.warehouse.duckdb_file import DuckDBWarehouse
from tests.fakes.confluent import FakeConsumer, message, topic_metadata
from tests.unit.warehouse.batchkit import ORDERS, TOPIC, warehouse_with_orders

SETTINGS = KafkaSettings("127.0.0.1:9", "audit", topic=TOPIC)


class Reader:
    """The topic as a list of offsets that hold records, one partition."""

    def __init__(self, settings: KafkaSettings) -> None:
        self.end = len(ORDERS) + 2  # two offsets that hold no record: markers

    def watermarks(self, timeout: float) -> dict[int, tuple[int, int]]:
        return {0: (0, self.end)}

    def offsets(self, partition: int, low: int, high: int, isolation: str) -> set[int]:
        return set(range(low, min(high, len(ORDERS))))


@pytest.fixture
def audited(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(audit, "TopicReader", Reader)
    monkeypatch.setattr(audit, "AdminClient", lambda config: None)
    monkeypatch.setattr(audit.cluster, "topic_id", lambda admin, topic: None)


@pytest.mark.usefixtures("audited")
def test_a_complete_file_passes_and_a_deleted_order_is_named(tmp_path: Path) -> None:
    """Every offset in one place: complete. One dim_order row deleted by hand: missing."""
    db = warehouse_with_orders(tmp_path / "w.duckdb")
    with duckdb.connect(str(db), read_only=True) as con:
        (result,) = audit.audit(accounts.of_file(con), SETTINGS)
    assert result.complete and result.ledger == len(ORDERS) and result.lag == 2
    rows = audit.rows([result])
    assert rows[0]["status"] == "complete" and rows[0]["loaded"] == result.counts["loaded"]
    with duckdb.connect(str(db)) as con:
        gone = con.execute(
            "DELETE FROM dim_order WHERE kafka_offset = (SELECT min(kafka_offset) FROM dim_order) "
            "RETURNING kafka_offset"
        ).fetchall()[0][0]
    with duckdb.connect(str(db), read_only=True) as con:
        (broken,) = audit.audit(accounts.of_file(con), SETTINGS)
    assert broken.missing == [gone]
    assert '"missing"' in audit.to_json([broken])


@pytest.mark.usefixtures("audited")
def test_a_partition_the_file_never_read_is_reported_unread(tmp_path: Path) -> None:
    """No ledger row: the partition is listed as unread, with its records as lag."""
    db = tmp_path / "empty.duckdb"
    DuckDBWarehouse(db).close()
    with duckdb.connect(str(db), read_only=True) as con:
        (result,) = audit.audit(accounts.of_file(con), SETTINGS)
    assert audit.rows([result])[0]["status"] == "unread"


class ReadingClient(FakeConsumer):
    """A consumer assigned by the reader itself (no group), over one partition's records."""

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.messages.extend(
            [
                [message(0, 3), message(0, 5, error=KafkaError(KafkaError._MSG_TIMED_OUT))],
                [message(0, 6), message(0, 9)],
            ]
        )
        self.topics = {TOPIC: topic_metadata(1)}
        self.watermarks = {0: (0, 10)}

    def assign(self, partitions: Any) -> None:  # type: ignore[override]
        self.events.append("assign")


def test_the_reader_stops_at_the_end_of_the_range_and_skips_errors() -> None:
    """Offsets of records in [low, high): errors are skipped, end of partition stops it."""
    made: list[ReadingClient] = []

    def client(config: dict[str, Any]) -> ReadingClient:
        made.append(ReadingClient(config))
        return made[-1]

    reader = TopicReader(SETTINGS, client=client)
    assert reader.offsets(0, 3, 8, "read_committed") == {3, 6}
    assert made[-1].config["isolation.level"] == "read_committed"
    assert reader.watermarks(5) == {0: (0, 10)}
    assert reader.offsets(0, 4, 4, "read_uncommitted") == set()
