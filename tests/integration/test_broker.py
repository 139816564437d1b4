"""The test broker is a real Kafka: keyed records round-trip through a consumer group."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable

import pytest
from confluent_kafka import Consumer, Producer

pytestmark = pytest.mark.integration


def test_keyed_records_round_trip_with_per_key_order(
    kafka_bootstrap: str, topic_factory: Callable[..., str], group_id: str
) -> None:
    """Keyed records spread over 4 partitions come back complete, unaltered and in key order."""
    topic = topic_factory(4)
    keys = [f"order-{k:03d}" for k in range(40)]
    sent = [(key, f"{key}#{seq}") for seq in range(25) for key in keys]
    producer = Producer({"bootstrap.servers": kafka_bootstrap, "enable.idempotence": True})
    for key, value in sent:
        producer.produce(topic, value=value.encode(), key=key.encode())
    assert producer.flush(30) == 0

    consumer = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": group_id,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([topic])
    received: dict[str, list[str]] = defaultdict(list)
    partitions_by_key: dict[str, set[int]] = defaultdict(set)
    polls_left = 300
    while sum(map(len, received.values())) < len(sent) and polls_left:
        polls_left -= 1
        for msg in consumer.consume(500, timeout=0.5):
            assert msg.error() is None, msg.error()
            key = msg.key().decode()
            received[key].append(msg.value().decode())
            partitions_by_key[key].add(msg.partition())
    consumer.close()

    assert {k: v for k, v in received.items()} == {
        key: [f"{key}#{seq}" for seq in range(25)] for key in keys
    }
    assert all(len(parts) == 1 for parts in partitions_by_key.values())
    assert len(set().union(*partitions_by_key.values())) > 1
