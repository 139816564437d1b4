"""Reading the dead-letter topic back: every ``rejected_events`` row must have its dead letter,
carrying the original key and value, and no record the warehouse did not reject may have one.

Dead letters are at-least-once (a crash between their flush and the warehouse commit repeats
them), so a position may have several; each must agree with the row.
"""

from __future__ import annotations

import time
import uuid
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import duckdb
from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

from tests.oracle import Position, Record


@dataclass(frozen=True)
class DeadLetter:
    source: Position
    reason: str | None
    key: bytes | None
    value: bytes | None


def _header(headers: list[tuple[str, str | bytes | None]], name: str) -> str | None:
    for key, value in headers:
        if key == name and value is not None:
            return value.decode() if isinstance(value, bytes) else value
    return None


def read_dead_letters(bootstrap: str, dlq_topic: str, timeout: float = 60) -> list[DeadLetter]:
    """Every record of ``dlq_topic`` up to the high watermarks taken at the start."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"dlq-reader-{uuid.uuid4().hex}",  # required; never committed to
            "enable.auto.commit": False,
            "auto.offset.reset": "earliest",
        }
    )
    letters: list[DeadLetter] = []
    deadline = time.monotonic() + timeout
    try:
        topic = consumer.list_topics(dlq_topic, timeout=timeout).topics.get(dlq_topic)
        if topic is None or topic.error is not None:
            raise KafkaException(f"dead-letter topic {dlq_topic!r} not found")
        ends: dict[int, int] = {}
        start = []
        for partition in topic.partitions:
            low, high = consumer.get_watermark_offsets(
                TopicPartition(dlq_topic, partition), timeout=timeout, cached=False
            )
            if high > low:
                ends[partition] = high
                start.append(TopicPartition(dlq_topic, partition, low))
        if start:
            consumer.assign(start)
        pending = set(ends)
        while pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"reading {dlq_topic!r}: partitions {sorted(pending)} unread")
            for message in consumer.consume(1000, timeout=1.0):
                error = message.error()
                if error is not None:
                    if error.fatal() or error.code() != KafkaError._PARTITION_EOF:
                        raise KafkaException(error)
                    continue
                partition, offset = message.partition(), message.offset()
                assert partition is not None and offset is not None
                if offset >= ends[partition]:
                    continue
                headers = message.headers() or []
                assert isinstance(headers, list), "confluent-kafka returns headers as a list"
                origin = (
                    _header(headers, "__connect.errors.topic") or "",
                    int(_header(headers, "__connect.errors.partition") or -1),
                    int(_header(headers, "__connect.errors.offset") or -1),
                )
                letters.append(
                    DeadLetter(origin, _header(headers, "reason"), message.key(), message.value())
                )
                if offset >= ends[partition] - 1:
                    pending.discard(partition)
    finally:
        consumer.close()
    return letters


def assert_dead_letters_complete(
    bootstrap: str, topic: str, db: Path, records: list[Record], dlq_topic: str | None = None
) -> int:
    """Each ``rejected_events`` row has at least one dead letter with its position, reason,
    original key and value; every dead letter points at a rejected record. Returns how many
    dead letters there are beyond one per row (repeats after a crash)."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            'SELECT topic, "partition", "offset", reason FROM rejected_events'
        ).fetchall()
    rejected = {(t, int(p), int(o)): reason for t, p, o, reason in rows}
    by_position = {record.position: record for record in records}
    letters: defaultdict[Position, list[DeadLetter]] = defaultdict(list)
    for letter in read_dead_letters(bootstrap, dlq_topic or f"{topic}.dlq"):
        letters[letter.source].append(letter)
    missing = sorted(set(rejected) - set(letters))
    assert not missing, f"{len(missing)} rejected records have no dead letter, e.g. {missing[:5]}"
    stray = sorted(set(letters) - set(rejected))
    assert not stray, f"{len(stray)} dead letters for records not rejected, e.g. {stray[:5]}"
    for position, copies in letters.items():
        original = by_position[position]
        for letter in copies:
            assert letter.reason == rejected[position], (position, letter.reason)
            assert (letter.key, letter.value) == (original.key, original.value), position
    return sum(len(copies) - 1 for copies in letters.values())
