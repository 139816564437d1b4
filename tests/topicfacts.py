"""What a topic, a group and a warehouse really hold, read without the consumer's code: offsets
per isolation level, end offsets, committed offsets, the ledger, dead letters, and ``audit``
run as a process. Shared by the interop and the transactional crash tests."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from confluent_kafka import Consumer, KafkaError, TopicPartition

from tests.harness import ROOT
from tools.localkafka import LocalKafka, classpath


def _reader(bootstrap: str, isolation: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"facts-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
            "isolation.level": isolation,
        }
    )


def partitions_of(bootstrap: str, topic: str) -> list[int]:
    consumer = _reader(bootstrap, "read_committed")
    try:
        return sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    finally:
        consumer.close()


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    """The high watermark of each partition (past any trailing transaction marker)."""
    consumer = _reader(bootstrap, "read_uncommitted")
    try:
        parts = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
        return {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in parts
        }
    finally:
        consumer.close()


def record_offsets(
    bootstrap: str, topic: str, isolation: str, timeout: float = 60
) -> dict[int, set[int]]:
    """The offsets of the records a reader with ``isolation.level`` gets, per partition."""
    ends = end_offsets(bootstrap, topic)
    consumer = _reader(bootstrap, isolation)
    found: dict[int, set[int]] = {p: set() for p in ends}
    pending = {p for p, end in ends.items() if end > 0}
    if pending:
        consumer.assign([TopicPartition(topic, p, 0) for p in sorted(pending)])
    deadline = time.monotonic() + timeout
    try:
        while pending:
            assert time.monotonic() < deadline, f"partitions {pending} not read to the end"
            for message in consumer.consume(1000, timeout=0.5):
                error = message.error()
                if error is not None:
                    assert error.code() == KafkaError._PARTITION_EOF, error
                    pending.discard(message.partition())
                    continue
                found[message.partition()].add(message.offset())
    finally:
        consumer.close()
    return found


@dataclass(frozen=True)
class NonData:
    """Per partition, offsets that hold no record for a read_committed reader."""

    markers: dict[int, int]
    aborted: dict[int, int]


def non_data(bootstrap: str, topic: str) -> NonData:
    """Markers: offsets below the end that no reader gets; aborted: what only a
    read_uncommitted reader gets."""
    ends = end_offsets(bootstrap, topic)
    committed = record_offsets(bootstrap, topic, "read_committed")
    everything = record_offsets(bootstrap, topic, "read_uncommitted")
    return NonData(
        markers={p: ends[p] - len(everything[p]) for p in ends},
        aborted={p: len(everything[p] - committed[p]) for p in ends},
    )


OFFSET_NONE = -1001  # what committed() answers for a partition the group never committed


def committed_offsets(bootstrap: str, topic: str, group: str) -> dict[int, int]:
    """The offsets ``group`` has committed, per partition (OFFSET_NONE when none)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        parts = [TopicPartition(topic, p) for p in partitions_of(bootstrap, topic)]
        return {tp.partition: tp.offset for tp in consumer.committed(parts, timeout=10)}
    finally:
        consumer.close()


def ledger(db: Path, topic: str) -> dict[int, int]:
    """The warehouse's next offset per partition (its ``kafka_offsets`` table)."""
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            'SELECT "partition", next_offset FROM kafka_offsets WHERE topic = ?', [topic]
        ).fetchall()
    return {int(p): int(n) for p, n in rows}


@dataclass(frozen=True)
class Audit:
    returncode: int
    rows: list[dict[str, Any]]
    stderr: str


def run_audit(bootstrap: str, topic: str, db: Path) -> Audit:
    """``orders-consumer audit --format json`` as a process."""
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "audit", "--bootstrap-servers", bootstrap,
         "--topic", topic, "--db", str(db), "--format", "json"],
        capture_output=True, text=True, timeout=180, cwd=ROOT, check=False,
    )  # fmt: skip
    rows: list[dict[str, Any]] = json.loads(done.stdout) if done.stdout.strip() else []
    return Audit(done.returncode, rows, done.stderr)


def dead_letters(bootstrap: str, topic: str) -> Counter[tuple[int, int, str]]:
    """Every dead letter of ``topic`` as (partition, offset, reason), with repeats counted."""
    dlq = f"{topic}.dlq"
    found: Counter[tuple[int, int, str]] = Counter()
    consumer = _reader(bootstrap, "read_committed")
    ends = end_offsets(bootstrap, dlq)
    pending = {p for p, end in ends.items() if end > 0}
    if pending:
        consumer.assign([TopicPartition(dlq, p, 0) for p in sorted(pending)])
    deadline = time.monotonic() + 60
    try:
        while pending:
            assert time.monotonic() < deadline, f"{dlq} partitions {pending} not read"
            for message in consumer.consume(1000, timeout=0.5):
                if message.error() is not None:
                    pending.discard(message.partition())
                    continue
                headers = {k: (v or b"").decode() for k, v in message.headers() or []}
                found[
                    (
                        int(headers["__connect.errors.partition"]),
                        int(headers["__connect.errors.offset"]),
                        headers["__connect.errors.exception.class.name"],
                    )
                ] += 1
    finally:
        consumer.close()
    return found


def batch_codecs(broker: LocalKafka, topics: list[str]) -> dict[str, Counter[str]]:
    """The compression codec of every data batch the broker stored for each topic, read from
    its log segments with Kafka's own DumpLogSegments tool (native broker only)."""
    files = {t: sorted((broker.data_dir / "kraft").glob(f"{t}-*/*.log")) for t in topics}
    assert all(files.values()), f"a topic without log segments under {broker.data_dir}"
    done = subprocess.run(
        ["java", "-cp", classpath(), "kafka.tools.DumpLogSegments", "--files",
         ",".join(str(f) for found in files.values() for f in found)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    codecs: dict[str, Counter[str]] = {t: Counter() for t in topics}
    topic = None
    for line in done.stdout.splitlines():
        if line.startswith("Dumping "):
            topic = Path(line.split()[1]).parent.name.rsplit("-", 1)[0]
        elif line.startswith("baseOffset:") and "isControl: false" in line and topic:
            codecs[topic][line.split("compresscodec: ")[1].split()[0].lower()] += 1
    return codecs


def assert_at_the_true_end(bootstrap: str, topic: str, group: str, db: Path) -> dict[int, int]:
    """The ledger and the group's committed offsets both equal each partition's end offset,
    which is past the last transaction marker: lag 0. A partition that never held anything
    (end 0; the sticky partitioner can leave one empty) has neither a ledger row nor a group
    offset, and nothing to lag behind."""
    ends = end_offsets(bootstrap, topic)
    written = {p: end for p, end in ends.items() if end > 0}
    assert ledger(db, topic) == written
    committed = committed_offsets(bootstrap, topic, group)
    assert {p: o for p, o in committed.items() if p in written} == written, (
        f"committed {committed}, ends {ends}"
    )
    assert all(o == OFFSET_NONE for p, o in committed.items() if p not in written), committed
    return ends


def assert_audit_complete(bootstrap: str, topic: str, db: Path) -> list[dict[str, Any]]:
    """``audit`` exits 0, every partition complete with lag 0, and its marker and aborted
    counts equal what read_committed and read_uncommitted readers tell apart."""
    audit = run_audit(bootstrap, topic, db)
    assert audit.returncode == 0, audit.stderr
    truth = non_data(bootstrap, topic)
    by_partition = {row["partition"]: row for row in audit.rows}
    assert {p: r["status"] for p, r in by_partition.items()} == dict.fromkeys(
        truth.markers, "complete"
    )
    assert {p: r["lag"] for p, r in by_partition.items()} == dict.fromkeys(truth.markers, 0)
    assert {p: r["markers"] for p, r in by_partition.items()} == truth.markers
    assert {p: r["aborted"] for p, r in by_partition.items()} == truth.aborted
    return audit.rows


def assert_dead_letters_match(bootstrap: str, topic: str, rejected: dict[Any, str]) -> None:
    """Every rejected record (the oracle's ``(topic, partition, offset) -> reason``) has a
    dead letter with its reason, and nothing else has one (a crash may repeat one)."""
    letters = dead_letters(bootstrap, topic)
    assert set(letters) == {(p, o, reason) for (_, p, o), reason in rejected.items()}
