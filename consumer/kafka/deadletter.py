"""Dead-letter topic: every rejected record, with its original key and value.

Headers follow Kafka Connect's ``__connect.errors.*`` convention. Dead letters are produced
and flushed inside the batch's DuckDB transaction, before its commit, so a crash can repeat a
dead letter (at-least-once) but never lose one; ``rejected_events`` is the exactly-once record.
"""

from __future__ import annotations

from typing import Any

import polars as pl
from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from consumer.core.reasons import EMPTY_PAYLOAD, INVALID_JSON
from consumer.errors import TerminalError, TransientError
from consumer.faults import NO_FAULTS, Faults
from consumer.settings import KafkaSettings
from orders_common import kafka

PARSE_STAGE_REASONS = frozenset({EMPTY_PAYLOAD, INVALID_JSON})


class DeadLetters:
    def __init__(
        self,
        settings: KafkaSettings,
        topic: str,
        *,
        faults: Faults = NO_FAULTS,
        flush_timeout: float = 30.0,
    ) -> None:
        self.topic = topic
        self._source_topic = settings.topic
        self._group_id = settings.group_id
        self._faults = faults
        self._flush_timeout = flush_timeout
        servers, options = settings.bootstrap_servers, settings.options
        self._admin = AdminClient(
            kafka.client_config(
                servers, "orders-consumer-admin", service="consumer", options=options
            )
        )
        fixed = {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            "compression.type": "lz4",
        }
        self._producer = Producer(
            kafka.client_config(
                servers, "orders-consumer-dlq", service="consumer", fixed=fixed, options=options
            )
        )
        self._failures: list[KafkaError] = []

    def ensure_topic(self, partitions: int, timeout: float = 30.0) -> None:
        """Create the dead-letter topic if it is missing (an existing one is left alone, so
        no create permission is needed for it)."""
        try:
            topics = self._admin.list_topics(self.topic, timeout=timeout).topics
            known = self.topic in topics and topics[self.topic].error is None
            if known:
                return
            future = self._admin.create_topics(
                [NewTopic(self.topic, num_partitions=max(partitions, 1), replication_factor=-1)]
            )[self.topic]
            future.result(timeout=timeout)
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                raise TerminalError(
                    f"cannot create dead-letter topic {self.topic}: {exc.args[0].str()}"
                ) from exc
        except TimeoutError as exc:
            raise TerminalError(
                f"creating dead-letter topic {self.topic} timed out after {timeout:.0f}s"
            ) from exc

    def publish(self, rejects: pl.DataFrame, batch_number: int) -> None:
        """Produce and flush one batch of rejects; raise unless every one was acknowledged."""
        if rejects.is_empty():
            return
        self._failures.clear()
        if "topic" not in rejects.columns:
            rejects = rejects.with_columns(pl.lit(self._source_topic).alias("topic"))
        rows = rejects.select("key", "value", "topic", "partition", "offset", "reason", "detail")
        for key, value, topic, partition, offset, reason, detail in rows.iter_rows():
            self._produce(key, value, self._headers(topic, partition, offset, reason, detail))
        self._faults.hit("kill_during_dlq", batch_number)
        pending = self._producer.flush(self._flush_timeout)
        if pending or self._failures:
            problem = self._failures[0].str() if self._failures else f"{pending} unacknowledged"
            raise TransientError(f"dead-letter delivery to {self.topic} failed: {problem}")

    def _produce(self, key: bytes | None, value: bytes | None, headers: list[Any]) -> None:
        while True:
            try:
                self._producer.produce(
                    self.topic, value=value, key=key, headers=headers, on_delivery=self._delivered
                )
                return
            except BufferError:
                self._producer.poll(0.1)
            except KafkaException as exc:
                raise TransientError(f"dead-letter produce failed: {exc.args[0].str()}") from exc

    def _headers(
        self, topic: str, partition: int, offset: int, reason: str, detail: str
    ) -> list[Any]:
        """Kafka Connect's error headers; the topic is the record's own (the orders topic, or
        a reference topic for ``invalid_reference``)."""
        stage = "VALUE_CONVERTER" if reason in PARSE_STAGE_REASONS else "TRANSFORMATION"
        return [
            ("__connect.errors.topic", topic.encode()),
            ("__connect.errors.partition", str(partition).encode()),
            ("__connect.errors.offset", str(offset).encode()),
            ("__connect.errors.connector.name", self._group_id.encode()),
            ("__connect.errors.stage", stage.encode()),
            ("__connect.errors.exception.class.name", reason.encode()),
            ("__connect.errors.exception.message", detail.encode()),
            ("reason", reason.encode()),
        ]

    def _delivered(self, error: KafkaError | None, _message: Message) -> None:
        if error is not None:
            self._failures.append(error)

    def close(self) -> None:
        self._producer.flush(self._flush_timeout)
