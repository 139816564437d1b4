"""Building a real pipeline over the in-memory Kafka fake and a real DuckDB file, and checking
the file against the oracle (computed from the contract, not from the code)."""

from __future__ import annotations

import dataclasses
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from consumer import wiring
from consumer.faults import NO_FAULTS, Faults
from consumer.runtime.loop import Pipeline
from consumer.runtime.parsing import Parser
from consumer.serving.metrics import Metrics
from consumer.settings import BatchSettings, KafkaSettings, Settings, WarehouseSettings
from consumer.warehouse.duckdb_file import DuckDBWarehouse
from producer_sim.config import Settings as SimSettings
from producer_sim.events import generate_records
from tests import corpus
from tests.fakes.kafka import MARKER, FakeDeadLetters, FakeSource, FakeTopic
from tests.oracle import Expected, Record, compute_expected


def stream(orders: int = 300, seed: int = 5) -> list[tuple[bytes | None, bytes | None]]:
    """A messy simulated stream (every reject class, re-sends) plus the hand-written corpus."""
    sim = [(r.key, r.value) for r in generate_records(SimSettings(seed=seed, orders=orders))]
    return sim + corpus.edge_records()


def fill(topic: FakeTopic, records: Iterable[tuple[bytes | None, bytes | None]]) -> None:
    """Keyed records go to the partition of their key's hash; key-less ones to partition 0."""
    for key, value in records:
        partition = 0 if key is None else zlib.crc32(key) % topic.partitions
        topic.produce(value, key, partition)


def ends(topic: FakeTopic) -> dict[int, int]:
    """Each partition's end offset."""
    return {p: topic.end(p) for p in range(topic.partitions)}


def expected_of(topic: FakeTopic) -> Expected:
    """The oracle's expectation for the whole topic, read partition by partition."""
    records = [
        Record(topic.name, p, o, entry[0], entry[1])
        for p in range(topic.partitions)
        for o, entry in enumerate(topic.log[p])
        if o >= topic.log_start[p] and entry is not MARKER
    ]
    return compute_expected(records)


@dataclass
class Rig:
    pipeline: Pipeline
    source: FakeSource
    warehouse: DuckDBWarehouse
    dead_letters: FakeDeadLetters
    metrics: Metrics
    path: Path

    def metrics_lag(self) -> dict[str, float]:
        """pipeline_consumer_lag by partition, as exported."""
        return {
            sample.labels["partition"]: sample.value
            for family in self.metrics.lag.collect()
            for sample in family.samples
        }


def rig(
    tmp_path: Path,
    topic: FakeTopic,
    *,
    faults: Faults = NO_FAULTS,
    max_records: int = 97,
    until_idle: float | None = 0.05,
    retry_seconds: float = 5.0,
    source: FakeSource | None = None,
    db: str = "w.duckdb",
    grace: float = 60.0,
    parser: Parser | None = None,
) -> Rig:
    path = tmp_path / db
    settings = Settings(
        kafka=KafkaSettings("127.0.0.1:9", "g", topic=topic.name),
        warehouse=WarehouseSettings(path),
        batch=BatchSettings(
            max_records=max_records,
            max_seconds=0.01,
            until_idle=until_idle,
            retry_seconds=retry_seconds,
        ),
    )
    warehouse = DuckDBWarehouse(path, faults=faults)
    source = source or FakeSource(topic)
    dead_letters = FakeDeadLetters()
    metrics = Metrics()
    settings = dataclasses.replace(
        settings,
        kafka=dataclasses.replace(
            settings.kafka, options={"session.timeout.ms": str(int((grace - 10) * 1000))}
        ),
    )
    pipeline = wiring.assemble(
        settings,
        source=source,
        warehouse=warehouse,
        dead_letters=dead_letters,
        metrics=metrics,
        faults=faults,
        parser=parser,
    )
    return Rig(pipeline, source, warehouse, dead_letters, metrics, path)


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql).fetchall()


def assert_exactly_once(path: Path, expected: Expected, topic: str) -> None:
    """Every record of the topic is in exactly one place, as the oracle says."""
    loaded = rows(
        path, "SELECT kafka_topic, kafka_partition, kafka_offset, order_id FROM dim_order"
    )
    assert len(loaded) == len({r[3] for r in loaded}), "an order was loaded twice"
    assert {(t, p, o): oid for t, p, o, oid in loaded} == expected.loaded
    rejected = rows(path, 'SELECT topic, "partition", "offset", reason FROM rejected_events')
    assert len(rejected) == len(expected.rejected)
    assert {(t, p, o): r for t, p, o, r in rejected} == expected.rejected
    duplicates = rows(path, 'SELECT topic, "partition", "offset" FROM dropped_duplicates')
    assert sorted(duplicates) == sorted(expected.duplicates)
    lines = rows(path, "SELECT order_id, line_number FROM fact_sales")
    assert sorted(lines) == sorted(expected.lines)  # type: ignore[type-var]
    processed = rows(path, "SELECT order_id FROM processed_orders")
    assert sorted(str(r[0]) for r in processed) == sorted(expected.orders)


def ledger(path: Path, topic: str) -> dict[int, int]:
    """The next offset per partition, read from the file's ledger."""
    found = rows(
        path, f"SELECT \"partition\", next_offset FROM kafka_offsets WHERE topic = '{topic}'"
    )
    return {int(p): int(o) for p, o in found}  # type: ignore[call-overload]
