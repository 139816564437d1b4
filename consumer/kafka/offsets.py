"""Offsets of a partition: where its log starts and ends (``log_bounds``, for assignments),
and which offsets hold records, for ``audit``: a ``read_committed`` reader skips transaction
markers and aborted records; a ``read_uncommitted`` one shows the aborted ones too."""

from __future__ import annotations

import time
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from consumer.errors import BrokerUnavailableError
from consumer.settings import KafkaSettings
from orders_common import kafka

READ_BATCH = 10_000
# consume() waits its whole timeout unless READ_BATCH records come first, even past the end:
# at 1 s, auditing a small transactional topic was nearly all waiting (docs/performance.md).
POLL_SECONDS = 0.2
# A partition of a topic created a moment ago may have no leader yet: its watermarks are asked
# again (found by the metrics test, which creates the topic while the consumer waits for it).
NO_LEADER_YET = frozenset(
    {
        KafkaError.NOT_LEADER_FOR_PARTITION,
        KafkaError.LEADER_NOT_AVAILABLE,
        KafkaError.UNKNOWN_TOPIC_OR_PART,
        KafkaError._TIMED_OUT,
        KafkaError._TRANSPORT,
    }
)
LOG_BOUNDS_PATIENCE_SECONDS = 30.0


def log_bounds(consumer: Any, topic: str, partition: int) -> tuple[int, int]:
    """A partition's log start and end, from its leader; waits out a leader not elected yet,
    then gives up as a broker outage."""
    delay, deadline = 0.1, time.monotonic() + LOG_BOUNDS_PATIENCE_SECONDS
    while True:
        try:
            marks: tuple[int, int] = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10, cached=False
            )
            return marks
        except KafkaException as exc:
            error: KafkaError = exc.args[0]
            if error.code() not in NO_LEADER_YET or time.monotonic() + delay > deadline:
                raise BrokerUnavailableError(
                    f"cannot read where {topic} [{partition}] starts and ends: {error.str()}"
                ) from None
        time.sleep(delay)
        delay = min(delay * 2, 2.0)


class TopicReader:
    def __init__(self, settings: KafkaSettings, client: Any = Consumer) -> None:
        self.topic = settings.topic
        self._settings = settings
        self._client = client
        self._admin: Any = None

    def _consumer(self, isolation: str) -> Any:
        fixed = {
            "group.id": f"orders-audit-{time.time_ns()}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": isolation,
            "auto.offset.reset": "earliest",
        }
        return self._client(
            kafka.client_config(
                self._settings.bootstrap_servers,
                "orders-consumer-audit",
                service="consumer",
                fixed=fixed,
                options=self._settings.options,
            )
        )

    def watermarks(self, timeout: float) -> dict[int, tuple[int, int]]:
        """(log start, end) of every partition of the topic."""
        consumer = self._consumer("read_committed")
        try:
            metadata = consumer.list_topics(self.topic, timeout=timeout)
            topic = metadata.topics.get(self.topic)
            if topic is None or topic.error is not None:
                return {}
            return {
                p: consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=timeout)
                for p in sorted(topic.partitions)
            }
        except KafkaException as exc:
            raise BrokerUnavailableError(
                f"cannot reach Kafka within {timeout:.0f}s: {kafka.error_text(exc)}"
            ) from exc
        finally:
            consumer.close()

    def offsets(self, partition: int, low: int, high: int, isolation: str) -> set[int]:
        """Offsets in ``[low, high)`` that a reader with this isolation level gets."""
        found: set[int] = set()
        if high <= low:
            return found
        consumer = self._consumer(isolation)
        try:
            consumer.assign([TopicPartition(self.topic, partition, low)])
            idle_until = time.monotonic() + 30
            while time.monotonic() < idle_until:
                messages = consumer.consume(READ_BATCH, POLL_SECONDS)
                for message in messages:
                    error = message.error()
                    if error is not None:
                        if error.code() == KafkaError._PARTITION_EOF:
                            return found
                        continue
                    offset = message.offset()
                    if offset >= high:
                        return found
                    found.add(offset)
                if messages:
                    idle_until = time.monotonic() + 30
                position = consumer.position([TopicPartition(self.topic, partition)])[0].offset
                if position >= high:
                    return found
            raise BrokerUnavailableError(
                f"reading partition {partition} of {self.topic} stalled below offset {high}"
            )
        finally:
            consumer.close()
