"""Kafka side of the simulator: the topic, an idempotent producer, and its delivery errors."""

from __future__ import annotations

import contextlib
import time
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer, TopicCollection
from confluent_kafka.admin import AdminClient
from confluent_kafka.cimpl import NewTopic  # confluent_kafka.admin does not re-export it

from orders_common import kafka
from orders_common.logs import get_logger
from producer_sim.config import STREAM_OF_KIND, Settings
from producer_sim.records import SimRecord

POLL_EVERY = 1_000  # records between two polls that serve delivery reports and client logs


class BrokerUnavailableError(Exception):
    """The broker did not answer, or refused to create the topic; the message says which."""


def client_config(settings: Settings, client: str) -> dict[str, Any]:
    return kafka.client_config(
        settings.bootstrap_servers, f"orders-sim-{client}", service="producer_sim"
    )


def topic_key(settings: Settings) -> str:
    """The topic's Kafka id, or ``noid`` from a broker that does not tell it."""
    admin = AdminClient(client_config(settings, "admin"))
    future = admin.describe_topics(TopicCollection([settings.topic]))[settings.topic]
    try:
        return str(future.result(timeout=settings.connect_timeout).topic_id)
    except Exception as error:  # an old broker, or no DescribeTopicPartitions
        get_logger("producer_sim.publisher").warning("topic_id_unknown", error=str(error))
        return "noid"


def ensure_topic(settings: Settings, name: str | None = None) -> int:
    """Create topic ``name`` (default: the orders topic) with ``--partitions`` partitions if it
    is missing; return its partition count. Change topics are created the same way: a shop may
    make them compacted, nothing here needs it.

    Raises BrokerUnavailableError if the broker gives no metadata within the connect timeout.
    """
    log = get_logger("producer_sim.publisher")
    name = name or settings.topic
    admin = AdminClient(client_config(settings, "admin"))
    timeout = settings.connect_timeout
    try:
        metadata = admin.list_topics(timeout=timeout)
    except KafkaException as error:
        raise BrokerUnavailableError(
            f"cannot reach Kafka at {settings.bootstrap_servers} within {timeout:g}s "
            f"({kafka.error_text(error)})"
        ) from error
    existing = metadata.topics.get(name)
    if existing is not None and existing.error is None:
        log.info("topic_exists", topic=name, partitions=len(existing.partitions))
        return len(existing.partitions)
    new = NewTopic(name, num_partitions=settings.partitions, replication_factor=1)
    future = admin.create_topics([new], operation_timeout=timeout)[name]
    try:
        future.result(timeout=timeout)
    except KafkaException as error:
        if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
            raise BrokerUnavailableError(
                f"cannot create topic {name!r} on {settings.bootstrap_servers} "
                f"({kafka.error_text(error)})"
            ) from error
    except Exception as error:  # the future's own timeout
        raise BrokerUnavailableError(
            f"Kafka at {settings.bootstrap_servers} did not create topic {name!r} "
            f"within {timeout:g}s ({error})"
        ) from error
    partitions = _wait_for_partitions(admin, settings, name)
    log.info("topic_created", topic=name, partitions=partitions)
    return partitions


def _wait_for_partitions(admin: AdminClient, settings: Settings, name: str) -> int:
    """The partition count of a topic just created (metadata can lag behind the creation)."""
    deadline = time.monotonic() + settings.connect_timeout
    while True:
        with contextlib.suppress(KafkaException):
            topic = admin.list_topics(name, timeout=5).topics.get(name)
            if topic is not None and topic.error is None and topic.partitions:
                return len(topic.partitions)
        if time.monotonic() > deadline:
            raise BrokerUnavailableError(
                f"topic {name!r} on {settings.bootstrap_servers} has no partitions "
                f"{settings.connect_timeout:g}s after its creation"
            )
        time.sleep(0.1)


def producer_config(
    settings: Settings, on_delivery: Any, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    config = client_config(settings, "producer")
    config.update(
        {
            "acks": "all",
            "enable.idempotence": True,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "partitioner": "murmur2_random",  # where Java clients put the same keys
            "queue.buffering.max.messages": 1_000_000,
            "queue.buffering.max.kbytes": 1_048_576,
            "message.timeout.ms": int(settings.delivery_timeout * 1000),
            # Reports only for failures: a Python callback per record would halve throughput.
            "delivery.report.only.error": True,
            "on_delivery": on_delivery,
            **(extra or {}),
        }
    )
    return config


class KafkaSink:
    """An idempotent, batching producer that counts (and logs) every failed delivery.

    Records of the change topics (``config.REFERENCE_KINDS``) go to their topics, through
    ``_reference_producer``: the same producer here, a plain one beside a transactional one.
    """

    def __init__(self, settings: Settings, extra: dict[str, Any] | None = None) -> None:
        """Make sure the topics exist (raises BrokerUnavailableError), then open the producer."""
        self._log = get_logger("producer_sim.publisher")
        self.partitions = ensure_topic(settings)
        self._reference_topics: dict[str, str] = {}
        for stream in settings.reference_streams:
            name = settings.topic_of(stream)
            assert name is not None
            ensure_topic(settings, name)
            self._reference_topics[stream] = name
        self.topic_key = topic_key(settings) if settings.state_dir is not None else "none"
        self._topic = settings.topic
        self._flush_timeout = settings.delivery_timeout + 10
        self._producer = Producer(producer_config(settings, self._on_delivery, extra))
        self._reference_producer = self._producer
        self.sent = 0
        self._unkeyed = 0
        self.failed = 0
        self.first_error: str | None = None

    def _on_delivery(self, error: KafkaError | None, message: Any) -> None:
        if error is None:
            return
        self.failed += 1
        if self.first_error is None:
            self.first_error = error.str()
        if self.failed <= 10 or self.failed % 10_000 == 0:
            key = message.key()
            self._log.error(
                "delivery_failed",
                topic=message.topic(),
                key=key.decode(errors="replace") if key is not None else None,
                error=error.str(),
                failed_so_far=self.failed,
            )

    def send(self, record: SimRecord) -> None:
        stream = STREAM_OF_KIND.get(record.kind)
        if stream is not None:
            self._send_reference(stream, record)
            return
        # Keyless records take turns over the partitions instead of a random one, so the same
        # seed fills two topics identically, partition by partition.
        partition = self._unkeyed % self.partitions if record.key is None else -1
        while True:
            try:
                self._producer.produce(self._topic, record.value, record.key, partition)
                break
            except BufferError:
                self._producer.poll(0.05)  # the local queue is full: let it drain
        if record.key is None:
            self._unkeyed += 1
        self.sent += 1
        if self.sent % POLL_EVERY == 0:
            self._producer.poll(0)

    def _send_reference(self, stream: str, record: SimRecord) -> None:
        producer = self._reference_producer
        while True:
            try:
                producer.produce(self._reference_topics[stream], record.value, record.key)
                break
            except BufferError:
                producer.poll(0.05)
        self.sent += 1
        if self.sent % POLL_EVERY == 0:
            producer.poll(0)

    def _producers(self) -> list[Producer]:
        if self._reference_producer is self._producer:
            return [self._producer]
        return [self._producer, self._reference_producer]

    def poll(self) -> None:
        for producer in self._producers():
            producer.poll(0)

    def flush(self) -> None:
        """Wait until every record sent so far is acknowledged or has failed (a checkpoint)."""
        for producer in self._producers():
            producer.flush(self._flush_timeout)

    def close(self) -> int:
        """Wait for every record to be acknowledged or to fail; return the failure count."""
        left = sum(producer.flush(self._flush_timeout) for producer in self._producers())
        if left:
            self.failed += left
            self.first_error = self.first_error or f"{left} record(s) still unacknowledged"
            self._log.error("flush_incomplete", unacknowledged=left)
        return self.failed
