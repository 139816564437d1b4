"""`orders-sim publish --transactional` on a real broker: committed and aborted transactions."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path

import duckdb
import pytest
from confluent_kafka import Consumer, KafkaError, TopicPartition

from producer_sim.config import Settings
from producer_sim.events import generate_records
from tests.harness import assert_warehouse_matches, run_consumer
from tests.integration.simcli import publish_cli
from tests.oracle import compute_expected, read_topic

pytestmark = pytest.mark.integration

Pair = tuple[bytes | None, bytes | None]


def read_all(bootstrap: str, topic: str, isolation: str, timeout: float = 60) -> list[Pair]:
    """Every record a reader with ``isolation.level`` gets, to the end of each partition."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": isolation,
        }
    )
    partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    consumer.assign([TopicPartition(topic, p, 0) for p in partitions])
    pending, got = set(partitions), []
    deadline = time.monotonic() + timeout
    try:
        while pending:
            assert time.monotonic() < deadline, f"partitions {pending} not read to the end"
            for message in consumer.consume(500, timeout=0.5):
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    pending.discard(message.partition())
                    continue
                got.append((message.key(), message.value()))
    finally:
        consumer.close()
    return got


def test_read_committed_sees_exactly_the_committed_transactions(
    kafka_bootstrap: str, topic: str, group_id: str, db_path: Path, tmp_path: Path
) -> None:
    """Transactions of 40 records, 30% aborted: the log holds every record, a read_committed
    reader and the consumer see exactly the committed ones, which the summary counts; the
    aborted ones are whole transactions of the stream and none of their orders loads unless
    a committed re-send brings it, as the summary says."""
    summary = publish_cli(
        kafka_bootstrap, topic, tmp_path, "--seed", "4", "--orders", "1500",
        "--transactional", "--transaction-size", "40", "--abort-rate", "0.3",
        "--state-dir", str(tmp_path / "s"),
    )  # fmt: skip
    stream = [(r.key, r.value) for r in generate_records(Settings(seed=4, orders=1500))]
    committed = Counter(read_all(kafka_bootstrap, topic, "read_committed"))
    everything = Counter(read_all(kafka_bootstrap, topic, "read_uncommitted"))
    assert everything == Counter(stream)  # every record was written, once
    aborted = everything - committed
    assert not committed - everything
    assert summary["records"] == committed.total() and summary["aborted_records"] == aborted.total()
    assert summary["aborted_transactions"] > 0 and summary["transactions"] > 0

    # The aborted records are whole blocks of 40 consecutive records of the stream.
    left = Counter(aborted)
    blocks = 0
    for start in range(0, len(stream), 40):
        block = Counter(stream[start : start + 40])
        if not block - left:
            left -= block
            blocks += 1
    assert not left and blocks == summary["aborted_transactions"]

    proc = run_consumer(kafka_bootstrap, topic, group_id, db_path)
    assert proc.returncode == 0, proc.stderr
    expected = compute_expected(read_topic(kafka_bootstrap, topic))
    assert_warehouse_matches(db_path, expected, topic)
    with duckdb.connect(str(db_path), read_only=True) as con:
        loaded = {row[0] for row in con.execute("SELECT order_id FROM dim_order").fetchall()}
    aborted_keys = {key.decode() for key, _ in aborted if key is not None}
    committed_keys = {key.decode() for key, _ in committed if key is not None}
    assert aborted_keys - committed_keys and not (aborted_keys - committed_keys) & loaded
    # A committed re-send of an aborted order is the first version a reader sees: it loads.
    revived = summary["resends_of_aborted_by_kind"]
    assert len(loaded) == summary["orders"] + summary["resends_of_aborted"]
    conflicts = Counter(expected.rejected.values())["conflicting_duplicate"]
    meant = summary["by_kind"].get("resend_conflicting", 0)
    assert conflicts == meant - revived.get("resend_conflicting", 0)
    assert summary["new_orders"] == len(loaded)
