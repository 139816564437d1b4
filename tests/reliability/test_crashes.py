"""No loss and no duplication, whatever happens: SIGKILLs at random and at the dangerous
instants, SIGTERM, a broker crash, failing writes and commits, and a second process.

Every scenario ends by comparing the warehouse with the oracle's independent computation over
what the topic really holds, reading the dead-letter topic back, and running ``consumer
audit``. ``make soak`` runs the same scenarios at a larger scale.
"""

from __future__ import annotations

import random
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient

from tests.harness import assert_audit_complete, create_topic, publish, run_consumer
from tests.oracle import read_topic
from tests.reliability.harness import (
    SESSION_TIMEOUT_S,
    Figures,
    Scale,
    committed_records,
    epoch,
    events,
    lives_for,
    settle,
    small_batches,
    wait_for_event,
)
from tests.reliability.streams import Trickle, hostile_stream, padded
from tools.localkafka import LocalKafka, MissingToolError, check_java

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

SCALE = Scale.from_env()
# librdkafka may queue this much ahead of the application (queued.max.messages.kbytes, 32 MB)
# plus one fetch (fetch.max.bytes, 16 MB): consumer/kafka/source.py.
READ_AHEAD_BYTES = 48 * 1024 * 1024
# 2,000 hostile orders padded to about 40 KB each: about 90 MB, past the read-ahead plus the
# two batches (of BROKER_BATCH records) the consumer holds itself, with room for the batches
# it commits before the kill lands.
BROKER_PAD = 40_000
BROKER_BATCH = 50
Report = Callable[[Figures], None]


def test_random_sigkills_while_records_arrive_lose_and_duplicate_nothing(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path, report: Report
) -> None:
    """At least 20 SIGKILLs at random moments, each followed by a restart, with identical and
    conflicting re-sends in the stream: the warehouse still equals the oracle exactly, and a
    restart never waits out the group session timeout."""
    topic = topic_factory(3)
    records = hostile_stream(SCALE.orders, seed=101)
    figures = Figures("random SIGKILL x restart")
    trickle = Trickle(kafka_bootstrap, topic, records, seconds=SCALE.kills * 1.2)
    trickle.start()
    lives = lives_for(kafka_bootstrap, topic, tmp_path, SCALE.batch_records)
    lives.kill_randomly(SCALE.kills, random.Random(101), figures)
    trickle.join_checked()
    assert lives.finish().returncode == 0
    settle(figures, lives.db, kafka_bootstrap, topic, reports=True)
    report(figures)
    assert sum(figures.kills.values()) >= SCALE.kills
    # Not a speed target: static membership hands the partitions straight back, whereas a
    # dynamic member would wait for the dead one to time out (SESSION_TIMEOUT_S).
    assert max(figures.recovery_seconds) < SESSION_TIMEOUT_S / 2
    assert_audit_complete(kafka_bootstrap, topic, lives.db)


@pytest.mark.parametrize("point", ["kill_mid_write", "kill_during_dlq", "kill_after_db_commit"])
def test_kills_at_the_dangerous_instants_are_repaired_on_restart(
    kafka_bootstrap: str, topic: str, tmp_path: Path, point: str, report: Report
) -> None:
    """The process dies inside the DuckDB write, during the dead-letter produce, and between
    the DuckDB and Kafka commits, twice each; restarts end exactly at the oracle's answer."""
    publish(kafka_bootstrap, topic, hostile_stream(3_000, seed=7))
    lives = lives_for(kafka_bootstrap, topic, tmp_path)
    figures = Figures(f"fault hook: {point}")
    for at_batch in (2, 1):
        crashed = lives.finish(faults=f"{point}@{at_batch}")
        assert crashed.returncode == -signal.SIGKILL, crashed.stdout[-2000:]
        figures.kills[point] += 1
    assert lives.finish().returncode == 0
    settle(figures, lives.db, kafka_bootstrap, topic)
    report(figures)
    assert_audit_complete(kafka_bootstrap, topic, lives.db)


def test_sigterm_drains_exits_0_and_nothing_is_redelivered(
    kafka_bootstrap: str, topic: str, tmp_path: Path, report: Report
) -> None:
    """SIGTERM mid-run commits what was read and exits 0; the restart reads each record once."""
    publish(kafka_bootstrap, topic, hostile_stream(6_000, seed=8))
    lives = lives_for(kafka_bootstrap, topic, tmp_path)
    proc = lives.start()
    deadline = time.monotonic() + 60
    while committed_records(lives.lives[-1]) == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert events(lives.lives[-1])[-1]["event"] == "consumer_stopped"
    assert lives.finish().returncode == 0
    figures = Figures("SIGTERM x restart")
    figures.kills["SIGTERM"] += 1
    expected = settle(figures, lives.db, kafka_bootstrap, topic)
    consumed = sum(committed_records(log) for log in lives.lives)
    assert consumed == len(expected.loaded) + len(expected.duplicates) + len(expected.rejected)
    report(figures)
    assert_audit_complete(kafka_bootstrap, topic, lives.db)


def test_a_broker_crash_and_restart_mid_run_is_ridden_out(
    tmp_path: Path, topic_factory: Callable[..., str], report: Report
) -> None:
    """The broker is SIGKILLed mid-run, with more of the topic left than the consumer can have
    read ahead, and restarted on the same data directory; the consumer backs off, commits
    batches once the broker is back, and finishes with exactly the expected warehouse."""
    try:
        check_java()
    except MissingToolError as exc:
        pytest.skip(f"needs the native broker: {exc}")
    broker = LocalKafka.ephemeral(tmp_path / "broker")
    broker.start()
    try:
        topic = create_topic(AdminClient({"bootstrap.servers": broker.bootstrap}), 3)
        records = padded(hostile_stream(2_000, seed=9), BROKER_PAD)
        publish(broker.bootstrap, topic, records)
        lives = lives_for(broker.bootstrap, topic, tmp_path, BROKER_BATCH)
        proc = lives.start()
        wait_for_event(lives.lives[-1], "batch_committed")
        broker.kill()
        time.sleep(3)
        restarting = time.time()  # a commit can only succeed once the broker is back up
        broker.start()
        deadline = time.monotonic() + 240
        while committed_records(lives.lives[-1]) < len(records) and time.monotonic() < deadline:
            assert proc.poll() is None, lives.lives[-1].read_text()[-3000:]
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
        figures = Figures("broker SIGKILL x restart")
        figures.kills["broker SIGKILL"] += 1
        settle(figures, lives.db, broker.bootstrap, topic)
        report(figures)
        log = events(lives.lives[-1])
        retried = [e for e in log if e.get("event") in ("retrying", "kafka_error")]
        assert retried, "the consumer never noticed the broker was gone"
        sizes = {
            (r.partition, r.offset): len(r.value or b"")
            for r in read_topic(broker.bootstrap, topic)
        }
        # Batches committed after the broker came back hold more than the consumer can have
        # read ahead and buffered before the kill: records fetched from the restarted broker.
        after = bytes_committed_after(log, restarting, sizes)
        assert after > READ_AHEAD_BYTES + 2 * BROKER_BATCH * (BROKER_PAD + 2_000), after
        assert_audit_complete(broker.bootstrap, topic, lives.db)
    finally:
        broker.stop()


def bytes_committed_after(
    log: list[dict[str, Any]], moment: float, sizes: dict[tuple[int, int], int]
) -> int:
    """Bytes of the records in the batches committed after ``moment`` (epoch seconds), each
    batch covering, per partition, the offsets from the previous batch's end to its own."""
    stands: dict[int, int] = {}
    total = 0
    for event in log:
        if event.get("event") != "batch_committed":
            continue
        for key, end in event["next_offsets"].items():
            partition = int(key)
            start = stands.get(partition, 0)
            stands[partition] = end
            if epoch(event) > moment:
                total += sum(sizes.get((partition, o), 0) for o in range(start, end))
    return total


@pytest.mark.parametrize("point", ["fail_db_write", "fail_db_commit"])
def test_failing_database_writes_and_commits_are_retried_once(
    kafka_bootstrap: str, topic: str, tmp_path: Path, point: str, report: Report
) -> None:
    """DuckDB fails after a batch's first inserts (rolled back, retried) or right after its
    COMMIT took effect (an ambiguous commit: found in the ledger, not written again); the run
    exits 0 and every batch is committed once."""
    publish(kafka_bootstrap, topic, hostile_stream(2_000, seed=10))
    lives = lives_for(kafka_bootstrap, topic, tmp_path)
    done = lives.finish(faults=f"{point}@2+3+5")
    assert done.returncode == 0, done.stdout[-3000:]
    log = events(lives.lives[-1])
    retries = [e for e in log if e.get("event") == "retrying"]
    assert [e["operation"] for e in retries] == ["warehouse_write"] * 3
    resolved = [e["batch_id"] for e in log if e.get("event") == "ambiguous_commit_resolved"]
    assert resolved == ([2, 3, 5] if point == "fail_db_commit" else [])
    batch_ids = [e["batch_id"] for e in log if e.get("event") == "batch_committed"]
    assert batch_ids == list(range(1, len(batch_ids) + 1))
    with duckdb.connect(str(lives.db), read_only=True) as con:
        stored = [row[0] for row in con.execute("SELECT batch_id FROM load_batches").fetchall()]
    assert sorted(stored) == batch_ids
    figures = Figures(f"failing DuckDB: {point}")
    figures.kills[f"injected {point}"] += 3
    settle(figures, lives.db, kafka_bootstrap, topic)
    report(figures)
    assert_audit_complete(kafka_bootstrap, topic, lives.db)


def test_a_batch_that_cannot_be_written_stops_the_consumer_before_any_later_batch(
    kafka_bootstrap: str, topic: str, tmp_path: Path, report: Report
) -> None:
    """When a write fails for good while the next batch is being read, nothing after it is
    written or committed (fail closed); a restart then completes the warehouse exactly."""
    trickle = Trickle(kafka_bootstrap, topic, hostile_stream(3_000, seed=13), seconds=8)
    trickle.start()
    lives = lives_for(kafka_bootstrap, topic, tmp_path)
    # Time-bound batches, so the failure surfaces while the next batch is still being read;
    # a dynamic member also revokes its partitions on close, where that batch could slip in.
    lives.extra = (
        "--batch-max-records",
        "100000",
        "--batch-max-seconds",
        "1.0",
        # No retry: the first attempt (inserts, then the injected failure) alone outlasts it.
        "--retry-seconds",
        "0.001",
        "--group-instance-id",
        "none",
    )
    failed = lives.finish(faults="fail_db_write@2")
    assert failed.returncode == 1
    with duckdb.connect(str(lives.db), read_only=True) as con:
        batches = con.execute("SELECT max(batch_id) FROM load_batches").fetchall()[0][0]
        ledger = dict(con.execute('SELECT "partition", next_offset FROM kafka_offsets').fetchall())
    assert batches == 1
    probe = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": lives.group})
    committed = probe.committed([TopicPartition(topic, p) for p in range(3)], timeout=30)
    probe.close()
    assert {tp.partition: tp.offset for tp in committed if tp.offset >= 0} == ledger
    trickle.join_checked()
    lives.extra = small_batches()
    assert lives.finish().returncode == 0
    figures = Figures("write failing for good")
    figures.kills["terminal write failure"] += 1
    settle(figures, lives.db, kafka_bootstrap, topic)
    report(figures)
    assert_audit_complete(kafka_bootstrap, topic, lives.db)


def test_a_second_process_on_the_same_database_commits_nothing(
    kafka_bootstrap: str, topic: str, tmp_path: Path
) -> None:
    """A second consumer of the same file is refused before it joins its group."""
    publish(kafka_bootstrap, topic, hostile_stream(1_000, seed=11))
    lives = lives_for(kafka_bootstrap, topic, tmp_path)
    first = lives.start()
    try:
        wait_for_event(lives.lives[-1], "partitions_assigned")
        other_group = f"g-{uuid.uuid4().hex[:10]}"
        second = run_consumer(kafka_bootstrap, topic, other_group, lives.db, timeout=60)
        assert second.returncode == 1
        assert "in use by another process" in second.stderr
        probe = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": other_group})
        committed = probe.committed([TopicPartition(topic, p) for p in range(3)], timeout=30)
        probe.close()
        assert all(tp.offset < 0 for tp in committed)
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
