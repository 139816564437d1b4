"""The consumer's librdkafka settings: what the delivery guarantee needs, and bounded
read-ahead."""

from __future__ import annotations

from typing import Any

from consumer.settings import KafkaSettings
from orders_common import kafka


def consumer_config(settings: KafkaSettings, instance_id: str | None) -> dict[str, Any]:
    fixed: dict[str, Any] = {
        "group.id": settings.group_id,
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "partition.assignment.strategy": "cooperative-sticky",
        "enable.partition.eof": False,
        # Committed records only (interface §5): librdkafka's default, stated so that no
        # default of another version can load an aborted transaction's records.
        "isolation.level": "read_committed",
        # Enough read-ahead to keep a batch ready, bounded so memory stays flat (the defaults
        # let librdkafka buffer about 100k records per partition). 16 MB a partition is about
        # three 20,000-record batches of 3 partitions ahead; more cost memory for no
        # measurable rate (docs/performance.md).
        "fetch.max.bytes": 16 * 1024 * 1024,
        "max.partition.fetch.bytes": 4 * 1024 * 1024,
        "queued.max.messages.kbytes": 16 * 1024,
        "fetch.wait.max.ms": 100,
        "reconnect.backoff.max.ms": 2000,
    }
    if instance_id:
        fixed["group.instance.id"] = instance_id
    return kafka.client_config(
        settings.bootstrap_servers,
        "orders-consumer",
        service="consumer",
        fixed=fixed,
        options=settings.options,
    )
