"""DeadLetters over fake confluent Producer and AdminClient: the records and headers it
produces, the producer settings, and every way a delivery or topic creation can fail."""

from __future__ import annotations

from typing import Any

import polars as pl
import pytest
from confluent_kafka import KafkaError, KafkaException

from consumer.core.reasons import EMPTY_PAYLOAD, INVALID_JSON, MISSING_ORDER_ID
from consumer.errors import TerminalError, TransientError
from consumer.kafka import deadletter
from consumer.kafka.deadletter import DeadLetters
from consumer.settings import KafkaSettings
from tests.fakes.confluent import FakeAdmin, FakeProducer, topic_metadata

DLQ = "orders.dlq"


class Clients:
    producer: FakeProducer
    admin: FakeAdmin


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Clients:
    made = Clients()

    def producer(config: dict[str, Any]) -> FakeProducer:
        made.producer = FakeProducer(config)
        return made.producer

    def admin(config: dict[str, Any]) -> FakeAdmin:
        made.admin = FakeAdmin(config)
        return made.admin

    monkeypatch.setattr(deadletter, "Producer", producer)
    monkeypatch.setattr(deadletter, "AdminClient", admin)
    return made


def dead_letters(**options: str) -> DeadLetters:
    settings = KafkaSettings("127.0.0.1:9", "the-group", topic="orders", options=options)
    return DeadLetters(settings, DLQ, flush_timeout=0.01)


def rejects(*rows: tuple[bytes | None, bytes | None, int, int, str, str]) -> pl.DataFrame:
    return pl.DataFrame(
        list(rows),
        schema={"key": pl.Binary, "value": pl.Binary, "partition": pl.Int32,
                "offset": pl.Int64, "reason": pl.String, "detail": pl.String},
        orient="row",
    )  # fmt: skip


THREE = rejects(
    (b"k1", b"{oops", 0, 7, INVALID_JSON, "expected value at line 1"),
    (None, None, 2, 11, EMPTY_PAYLOAD, "tombstone"),
    (b"k3", b'{"x": 1}', 1, 0, MISSING_ORDER_ID, "order_id is missing"),
)


def test_the_producer_is_idempotent_and_waits_for_all_replicas(clients: Clients) -> None:
    """Dead letters must not be lost or doubled by producer retries: idempotence, acks=all;
    the user's security options reach both clients."""
    dead_letters(**{"security.protocol": "SSL"})
    assert clients.producer.config["enable.idempotence"] is True
    assert clients.producer.config["acks"] == "all"
    assert clients.producer.config["security.protocol"] == "SSL"
    assert clients.admin.config["security.protocol"] == "SSL"


def test_each_reject_is_produced_with_its_key_value_and_origin(clients: Clients) -> None:
    """Every reject goes to the dead-letter topic byte for byte, with Kafka Connect's error
    headers naming its source topic, partition, offset, group and reason."""
    dead_letters().publish(THREE, 1)
    produced = clients.producer.produced
    assert [(p["topic"], p["key"], p["value"]) for p in produced] == [
        (DLQ, b"k1", b"{oops"),
        (DLQ, None, None),
        (DLQ, b"k3", b'{"x": 1}'),
    ]
    first = dict(produced[0]["headers"])
    assert first["__connect.errors.topic"] == b"orders"
    assert first["__connect.errors.partition"] == b"0"
    assert first["__connect.errors.offset"] == b"7"
    assert first["__connect.errors.connector.name"] == b"the-group"
    assert first["__connect.errors.exception.class.name"] == INVALID_JSON.encode()
    assert first["__connect.errors.exception.message"] == b"expected value at line 1"
    assert first["reason"] == INVALID_JSON.encode()
    assert dict(produced[1]["headers"])["__connect.errors.offset"] == b"11"


def test_a_reference_reject_names_its_own_topic(clients: Clients) -> None:
    """An invalid_reference record of a change topic is a dead letter of that topic: the
    headers name it, not the orders topic, in the same batch as an order's reject."""
    mixed = THREE.head(1).with_columns(pl.lit("orders").alias("topic")).vstack(
        rejects((b"u-1", b"{", 1, 4, "invalid_reference", "not JSON")).with_columns(
            pl.lit("users-cdc").alias("topic")
        )
    )
    dead_letters().publish(mixed, 1)
    topics = [dict(p["headers"])["__connect.errors.topic"] for p in clients.producer.produced]
    assert topics == [b"orders", b"users-cdc"]


def test_the_stage_header_tells_unreadable_payloads_from_invalid_orders(clients: Clients) -> None:
    """Undecodable records (empty, not JSON) are VALUE_CONVERTER failures; orders that parse
    but break a rule are TRANSFORMATION failures."""
    dead_letters().publish(THREE, 1)
    stages = [dict(p["headers"])["__connect.errors.stage"] for p in clients.producer.produced]
    assert stages == [b"VALUE_CONVERTER", b"VALUE_CONVERTER", b"TRANSFORMATION"]


def test_a_batch_without_rejects_produces_nothing(clients: Clients) -> None:
    """No rejects: nothing produced, nothing flushed."""
    dead_letters().publish(THREE.clear(), 1)
    assert clients.producer.produced == []
    assert clients.producer.flushes == 0


def test_a_failed_delivery_fails_the_publish(clients: Clients) -> None:
    """A delivery report with an error makes publish raise TransientError naming it."""
    sink = dead_letters()
    clients.producer.fail_delivery = KafkaError(KafkaError.MSG_SIZE_TOO_LARGE, "too large")
    with pytest.raises(TransientError, match="too large"):
        sink.publish(THREE, 1)


def test_unacknowledged_dead_letters_fail_the_publish(clients: Clients) -> None:
    """Records still unacknowledged after the flush timeout make publish raise, with the count."""
    sink = dead_letters()
    clients.producer.leave_unacknowledged = 2
    with pytest.raises(TransientError, match="2 unacknowledged"):
        sink.publish(THREE, 1)


def test_a_failure_does_not_outlive_its_batch(clients: Clients) -> None:
    """After a failed publish, the retry that is acknowledged succeeds."""
    sink = dead_letters()
    clients.producer.fail_delivery = KafkaError(KafkaError._MSG_TIMED_OUT)
    with pytest.raises(TransientError):
        sink.publish(THREE, 1)
    clients.producer.fail_delivery = None
    sink.publish(THREE, 1)
    assert len(clients.producer.produced) == 6


def test_a_full_producer_queue_is_waited_out_not_dropped(clients: Clients) -> None:
    """BufferError from produce is waited out by polling; every reject is still produced."""
    sink = dead_letters()
    clients.producer.buffer_full = 3
    sink.publish(THREE, 1)
    assert len(clients.producer.produced) == 3
    assert clients.producer.polls == 3


def test_a_produce_that_raises_is_a_transient_error(clients: Clients) -> None:
    """A KafkaException from produce is TransientError (the batch is retried)."""
    sink = dead_letters()
    clients.producer.produce_error = KafkaException(KafkaError(KafkaError._UNKNOWN_TOPIC))
    with pytest.raises(TransientError, match="dead-letter produce failed"):
        sink.publish(THREE, 1)


def test_an_existing_topic_is_left_alone(clients: Clients) -> None:
    """ensure_topic creates nothing when the dead-letter topic exists (no create permission
    is needed for it)."""
    sink = dead_letters()
    clients.admin.topics[DLQ] = topic_metadata(3)
    sink.ensure_topic(3)
    assert clients.admin.created == []


def test_a_missing_topic_is_created_with_the_source_partition_count(clients: Clients) -> None:
    """A missing (or erroring) dead-letter topic is created with as many partitions as asked,
    and at least one."""
    sink = dead_letters()
    clients.admin.topics[DLQ] = topic_metadata(0, KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))
    sink.ensure_topic(6)
    sink.ensure_topic(0)
    assert [(t.topic, t.num_partitions) for t in clients.admin.created] == [(DLQ, 6), (DLQ, 1)]


def test_a_topic_created_meanwhile_is_fine(clients: Clients) -> None:
    """TOPIC_ALREADY_EXISTS from the create (another member won the race) is not an error."""
    sink = dead_letters()
    clients.admin.create_error = KafkaException(KafkaError(KafkaError.TOPIC_ALREADY_EXISTS))
    sink.ensure_topic(3)
    assert len(clients.admin.created) == 1


@pytest.mark.parametrize(
    "error",
    [
        KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "not authorized")),
        KafkaException(KafkaError(KafkaError.POLICY_VIOLATION, "policy")),
    ],
)
def test_a_topic_that_cannot_be_created_is_terminal(clients: Clients, error: Any) -> None:
    """Any other create failure is TerminalError naming the dead-letter topic."""
    sink = dead_letters()
    clients.admin.create_error = error
    with pytest.raises(TerminalError, match=f"cannot create dead-letter topic {DLQ}"):
        sink.ensure_topic(3)


def test_metadata_that_cannot_be_read_is_terminal(clients: Clients) -> None:
    """A failing metadata request while checking the topic is TerminalError, not a crash."""
    sink = dead_letters()
    clients.admin.metadata_error = KafkaException(KafkaError(KafkaError._TRANSPORT, "down"))
    with pytest.raises(TerminalError, match="down"):
        sink.ensure_topic(3)


def test_a_create_that_never_answers_times_out_as_terminal(clients: Clients) -> None:
    """A create request without an answer within the timeout is TerminalError naming it."""
    sink = dead_letters()
    clients.admin.hang = True
    with pytest.raises(TerminalError, match="timed out"):
        sink.ensure_topic(3, timeout=0.01)


def test_close_flushes_what_is_still_queued(clients: Clients) -> None:
    """close() flushes the producer, so queued dead letters are delivered before exit."""
    sink = dead_letters()
    clients.producer.leave_unacknowledged = 3
    with pytest.raises(TransientError):
        sink.publish(THREE, 1)
    clients.producer.leave_unacknowledged = 0
    sink.close()
    assert clients.producer.pending == []
