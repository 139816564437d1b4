"""Identical re-sends under a wrong key or no key land on other partitions: each order is still
loaded once (interface §1, §4), whichever copy the consumer's batch order meets first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from confluent_kafka import Producer

from producer_sim.config import MessRates
from producer_sim.config import Settings as SimSettings
from producer_sim.events import generate_records
from tests.harness import assert_warehouse_matches, publish, run_consumer
from tests.oracle import Record, compute_expected, read_topic

PARTITIONS = 3


def _reformatted(value: bytes) -> bytes:
    """The same content written differently: sorted keys, indentation, escaped unicode."""
    return json.dumps(json.loads(value), sort_keys=True, indent=2, ensure_ascii=True).encode()


def _resend_elsewhere(bootstrap: str, topic: str, placed: list[Record]) -> int:
    """Re-send every third order, identical or re-formatted, with no key or another order's
    key, to a partition other than its original's; return how many copies were sent."""
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    sent = 0
    for n, record in enumerate(placed[::3]):
        assert record.value is not None
        value = _reformatted(record.value) if n % 3 == 0 else record.value
        key = None if n % 2 else placed[(n * 3 + 1) % len(placed)].key
        for step in (1, 2) if n % 5 == 0 else (1,):  # some orders in all three partitions
            partition = (record.partition + step) % PARTITIONS
            producer.produce(topic, value=value, key=key, partition=partition)
            sent += 1
    assert producer.flush(60) == 0
    return sent


@pytest.mark.integration
def test_identical_resends_on_other_partitions_are_loaded_once(
    kafka_bootstrap: str, topic: str, group_id: str, db_path: Path
) -> None:
    """Copies of orders re-sent to other partitions (no key, or another order's key; some
    re-formatted) are dropped as identical duplicates: each order is loaded from one copy."""
    originals = [
        (r.key, r.value)
        for r in generate_records(SimSettings(seed=21, orders=900, rates=MessRates.none()))
    ]
    publish(kafka_bootstrap, topic, originals)
    sent = _resend_elsewhere(kafka_bootstrap, topic, read_topic(kafka_bootstrap, topic))
    done = run_consumer(
        kafka_bootstrap, topic, group_id, db_path, "--batch-max-records", "100", "--no-dlq"
    )
    assert done.returncode == 0, done.stderr
    expected = compute_expected(read_topic(kafka_bootstrap, topic))
    assert len(expected.spread_copies) == len(originals[::3]) and not expected.ambiguous_order_ids
    assert sum(len(c) - 1 for c in expected.spread_copies.values()) == sent
    assert_warehouse_matches(db_path, expected, topic)


def test_the_helper_still_refuses_differing_versions_across_partitions(tmp_path: Path) -> None:
    """A re-send with other content on another partition has no certain "first" version: the
    warehouse comparison refuses such a stream instead of guessing."""
    first = b'{"order_id": "o-1", "amount": 1.5}'
    other = b'{"order_id": "o-1", "amount": 2.5}'
    expected = compute_expected([Record("t", 0, 0, None, first), Record("t", 1, 0, None, other)])
    assert expected.ambiguous_order_ids == {"o-1"} and not expected.spread_copies
    with pytest.raises(AssertionError, match="differing versions"):
        assert_warehouse_matches(tmp_path / "unused.duckdb", expected, "t")
