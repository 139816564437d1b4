"""End-to-end latency at a steady rate: from a record's produce timestamp to the moment its
batch's Kafka offsets were committed (the consumer's ``batch_committed`` log line)."""

from __future__ import annotations

import json
import signal
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from bench.measure import reader, start_pipeline
from producer_sim.config import Settings as SimSettings
from producer_sim.events import generate_records

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Latency:
    batch_max_seconds: float | None
    rate: float
    records: int
    p50_ms: float
    p99_ms: float
    max_ms: float


def _percentile(sorted_values: list[float], share: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(share * len(sorted_values)))]


def measure(bootstrap: str, rate: float = 2000.0, seconds: float = 20.0, *extra: str) -> Latency:
    """Produce ``rate`` records/s for ``seconds`` into a fresh topic while a fresh consumer (with
    the default batch limits, unless ``extra`` flags say otherwise) keeps up."""
    topic = f"bench-latency-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)])[topic].result(
        timeout=30
    )
    with tempfile.TemporaryDirectory() as tmp:
        db, log = Path(tmp) / "latency.duckdb", Path(tmp) / "consumer.log"
        consumer = start_pipeline(bootstrap, topic, db, log, *extra)
        _wait_for(log, "partitions_assigned")
        sent = _produce_steadily(bootstrap, topic, rate, seconds)
        _wait_until_consumed(log, sent)
        consumer.send_signal(signal.SIGTERM)
        consumer.wait(timeout=60)
        committed_at = {
            event["batch_id"]: _epoch(event["timestamp"])
            for event in map(json.loads, log.read_text().splitlines())
            if event.get("event") == "batch_committed"
        }
        batch_of = _batch_of_each_record(db)
    produced = _produce_times(bootstrap, topic)
    latencies = sorted(
        (committed_at[batch_of[position]] - when) * 1000
        for position, when in produced.items()
        if position in batch_of
    )
    knob = float(extra[extra.index("--batch-max-seconds") + 1]) if extra else None
    return Latency(
        knob,
        rate,
        len(latencies),
        _percentile(latencies, 0.5),
        _percentile(latencies, 0.99),
        latencies[-1],
    )


def _produce_steadily(bootstrap: str, topic: str, rate: float, seconds: float) -> int:
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True}
    )
    records = generate_records(SimSettings(seed=11, orders=0))
    total = int(rate * seconds)
    started = time.perf_counter()
    for n in range(total):
        delay = started + n / rate - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        record = next(records)
        producer.produce(topic, value=record.value, key=record.key)
        producer.poll(0)
    producer.flush(60)
    return total


def _wait_for(log: Path, event: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while f'"{event}"' not in log.read_text():
        if time.monotonic() > deadline:
            raise RuntimeError(f"consumer never logged {event}:\n{log.read_text()[-2000:]}")
        time.sleep(0.1)


def _wait_until_consumed(log: Path, sent: int, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done = sum(
            event["records"]
            for event in map(json.loads, log.read_text().splitlines())
            if event.get("event") == "batch_committed"
        )
        if done >= sent:
            return
        time.sleep(0.2)
    raise RuntimeError("the consumer did not catch up")


def _batch_of_each_record(db: Path) -> dict[tuple[int, int], int]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "SELECT kafka_partition, kafka_offset, batch_id FROM dim_order UNION ALL "
            'SELECT "partition", "offset", batch_id FROM dropped_duplicates UNION ALL '
            'SELECT "partition", "offset", batch_id FROM rejected_events'
        ).fetchall()
    return {(int(p), int(o)): int(b) for p, o, b in rows}


def _produce_times(bootstrap: str, topic: str) -> dict[tuple[int, int], float]:
    consumer = reader(bootstrap, "timestamps")
    partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)[1]
        for p in partitions
    }
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    times: dict[tuple[int, int], float] = {}
    while len(times) < sum(ends.values()):
        for message in consumer.consume(10_000, 1.0):
            if message.error() is None:
                _, stamp = message.timestamp()
                position = (int(message.partition() or 0), int(message.offset() or 0))
                times[position] = stamp / 1000
    consumer.close()
    return times


def _epoch(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()
