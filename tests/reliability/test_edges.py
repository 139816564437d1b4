"""The guarantee at its edges, with a real broker: a partition taken away mid-stream and given
back, a member frozen past its session timeout and then resumed, and dead letters the broker
refuses. Each scenario ends like the others: the warehouse equals the oracle, every rejected
record has its dead letter, and ``consumer audit`` exits 0."""

from __future__ import annotations

import hashlib
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewTopic,
    ResourceType,
)

from producer_sim.config import MessRates
from producer_sim.config import Settings as SimSettings
from producer_sim.events import generate_records
from tests.corpus import Record, malformed
from tests.harness import assert_audit_complete, publish
from tests.oracle import read_topic
from tests.reliability.harness import (
    Figures,
    epoch,
    events,
    lives_for,
    settle,
    wait_for_event,
)
from tests.reliability.streams import Trickle, hostile_stream

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

Report = Callable[[Figures], None]
# librdkafka's floor for session.timeout.ms is 1 s and the broker's default
# group.min.session.timeout.ms is 6 s: the shortest session a member can have.
SHORT_SESSION_MS = 6_000
# The dead-letter topic's record-batch limit, and a poison record four times larger (random
# bytes: not UTF-8, and incompressible, so lz4 cannot bring it under the limit).
DLQ_LIMIT = 64 * 1024
POISON_BYTES = 4 * DLQ_LIMIT


def _event_list(log: Path, name: str) -> list[dict[str, Any]]:
    return [e for e in events(log) if e.get("event") == name]


def _written_partitions(log: Path) -> set[str]:
    return {p for e in _event_list(log, "batch_committed") for p in e["next_offsets"]}


def test_a_partition_taken_away_mid_stream_is_handed_over_at_its_ledger_and_taken_back(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path, report: Report
) -> None:
    """Another member joins the group while batches are being written and takes a partition
    (a real cooperative rebalance, not a restart): the consumer first commits what it wrote,
    the newcomer sees exactly the ledger's offset, and when it leaves the consumer resumes
    there; nothing is lost or written twice."""
    topic = topic_factory(3)
    records = hostile_stream(8_000, seed=14)
    publish(kafka_bootstrap, topic, records[:2_000])
    trickle = Trickle(kafka_bootstrap, topic, records[2_000:], seconds=10)
    trickle.start()
    lives = lives_for(kafka_bootstrap, topic, tmp_path)
    lives.extra = (*lives.extra, "--until-idle", "3")
    proc = lives.start()
    log = lives.lives[-1]
    deadline = time.monotonic() + 60
    while len(_written_partitions(log)) < 3 and time.monotonic() < deadline:
        time.sleep(0.1)  # so that whichever partition is taken has a ledger offset
    taken: list[int] = []
    guest = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": lives.group,
            "partition.assignment.strategy": "cooperative-sticky",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
        }
    )
    try:
        guest.subscribe([topic], on_assign=lambda _c, tps: taken.extend(tp.partition for tp in tps))
        deadline = time.monotonic() + 60
        while not taken and time.monotonic() < deadline:
            guest.poll(0.2)  # what it fetches is never committed
        assert taken, "the second member never got a partition"
        handed = {
            tp.partition: tp.offset
            for tp in guest.committed([TopicPartition(topic, p) for p in taken], timeout=30)
        }
    finally:
        guest.close()
    trickle.join_checked()
    assert proc.wait(timeout=180) == 0, log.read_text()[-3000:]

    # Revocations before the consumer's own exit (which gives everything back on close).
    finished_at = epoch(wait_for_event(log, "idle_exit"))
    revoked = [e for e in _event_list(log, "partitions_revoked") if epoch(e) < finished_at]
    assert [sorted(e["partitions"]) for e in revoked] == [sorted(taken)]
    revoked_at = epoch(revoked[0])
    ledger: dict[int, int] = {}
    for event in _event_list(log, "batch_committed"):
        if epoch(event) <= revoked_at:
            ledger.update({int(p): o for p, o in event["next_offsets"].items()})
    # The consumer committed its ledger before giving the partition away...
    assert handed == {p: ledger[p] for p in taken}
    # ...was still short of the partition's end at that moment...
    ends = {p: 0 for p in taken}
    for record in read_topic(kafka_bootstrap, topic):
        if record.partition in ends:
            ends[record.partition] = record.offset + 1
    assert all(ledger[p] < ends[p] for p in taken)
    # ...and took it back from exactly there once the other member left.
    back = [
        e
        for e in _event_list(log, "partitions_assigned")
        if epoch(e) >= revoked_at and set(taken) <= set(e["partitions"])
    ]
    assert back, "the partitions never came back"
    assert {p: back[0]["start_offsets"][str(p)] for p in taken} == handed
    figures = Figures("partition revoked mid-stream")
    figures.kills["rebalance away and back"] += 1
    settle(figures, lives.db, kafka_bootstrap, topic)
    report(figures)
    assert_audit_complete(kafka_bootstrap, topic, lives.db)


def test_a_member_frozen_past_its_session_timeout_writes_nothing_twice_when_resumed(
    kafka_bootstrap: str,
    kafka_admin: AdminClient,
    topic: str,
    tmp_path: Path,
    report: Report,
) -> None:
    """SIGSTOPped until the group has dropped it (its session expired), then SIGCONTed while
    records keep arriving: the consumer finishes what it held, rejoins, resumes from its
    ledger, and the warehouse holds every record once."""
    records = hostile_stream(4_000, seed=15)
    trickle = Trickle(kafka_bootstrap, topic, records, seconds=10)
    trickle.start()
    lives = lives_for(kafka_bootstrap, topic, tmp_path)
    lives.extra = (
        "--batch-max-records",
        "300",
        "--batch-max-seconds",
        "0.2",
        "--kafka-option",
        f"session.timeout.ms={SHORT_SESSION_MS}",
        "--until-idle",
        "3",
    )
    proc = lives.start()
    log = lives.lives[-1]
    wait_for_event(log, "batch_committed")
    proc.send_signal(signal.SIGSTOP)
    frozen_at = time.time()
    try:
        deadline = time.monotonic() + 4 * SHORT_SESSION_MS / 1000
        members: list[Any] = ["not asked yet"]
        while members and time.monotonic() < deadline:
            time.sleep(0.5)
            group = kafka_admin.describe_consumer_groups([lives.group])[lives.group]
            members = group.result(timeout=30).members
        assert not members, "the group never dropped the frozen member"
    finally:
        proc.send_signal(signal.SIGCONT)
    trickle.join_checked()
    assert proc.wait(timeout=180) == 0, log.read_text()[-3000:]
    after = [
        e
        for e in events(log)
        if epoch(e) > frozen_at and e.get("event") in ("partitions_lost", "partitions_assigned")
    ]
    assert [e["event"] for e in after][:2] == ["partitions_lost", "partitions_assigned"]
    figures = Figures("SIGSTOP past session x SIGCONT")
    figures.kills["SIGSTOP/SIGCONT"] += 1
    settle(figures, lives.db, kafka_bootstrap, topic)
    report(figures)
    assert_audit_complete(kafka_bootstrap, topic, lives.db)


def _incompressible(size: int) -> bytes:
    """Deterministic bytes that no compression shrinks, starting with one that is never UTF-8."""
    blocks = [hashlib.sha256(str(n).encode()).digest() for n in range(size // 32 + 1)]
    return (b"\xff" + b"".join(blocks))[:size]


def _set_topic_limit(admin: AdminClient, topic: str, limit: int) -> None:
    entry = ConfigEntry(
        "max.message.bytes", str(limit), incremental_operation=AlterConfigOpType.SET
    )
    resource = ConfigResource(ResourceType.TOPIC, topic, incremental_configs=[entry])
    for future in admin.incremental_alter_configs([resource]).values():
        future.result(timeout=30)


def test_a_dead_letter_the_broker_refuses_holds_its_batch_back_until_it_is_delivered(
    kafka_bootstrap: str,
    kafka_admin: AdminClient,
    topic: str,
    tmp_path: Path,
    report: Report,
) -> None:
    """The dead-letter topic refuses a record larger than it allows: the batch holding it is
    retried, and with little retry time the consumer exits non-zero with nothing of that
    batch written or committed (fail closed); run again, it keeps retrying until the topic
    accepts the record, then finishes at the oracle's answer."""
    dlq = f"{topic}.dlq"
    new = NewTopic(dlq, num_partitions=3, replication_factor=1)
    new.config = {"max.message.bytes": str(DLQ_LIMIT)}
    kafka_admin.create_topics([new])[dlq].result(timeout=30)
    clean: list[Record] = [
        (r.key, r.value)
        for r in generate_records(SimSettings(seed=16, orders=1_500, rates=MessRates.none()))
    ]
    poison = _incompressible(POISON_BYTES)
    publish(kafka_bootstrap, topic, clean[:700] + malformed() + [(b"poison", poison)] + clean[700:])
    where = next(r for r in read_topic(kafka_bootstrap, topic) if r.value == poison)
    lives = lives_for(kafka_bootstrap, topic, tmp_path)
    lives.extra = (*lives.extra, "--retry-seconds", "3")

    failed = lives.finish()
    assert failed.returncode == 1, failed.stdout[-3000:]
    retries = _event_list(lives.lives[-1], "retrying")
    assert retries and all("dead-letter" in e["error"] for e in retries)
    with duckdb.connect(str(lives.db), read_only=True) as con:
        ledger = dict(con.execute('SELECT "partition", next_offset FROM kafka_offsets').fetchall())
        held = con.execute(
            'SELECT count(*) FROM rejected_events WHERE "partition" = ? AND "offset" = ?',
            [where.partition, where.offset],
        ).fetchall()[0][0]
    assert held == 0 and ledger.get(where.partition, 0) <= where.offset
    probe = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": lives.group})
    committed = probe.committed([TopicPartition(topic, p) for p in range(3)], timeout=30)
    probe.close()
    assert {tp.partition: tp.offset for tp in committed if tp.offset >= 0} == ledger

    # The default retry time (minutes) this time, until idle.
    lives.extra = (*lives.extra[:-2], "--until-idle", "3")
    proc = lives.start()
    try:
        wait_for_event(lives.lives[-1], "retrying", timeout=60)
        _set_topic_limit(kafka_admin, dlq, 4 * POISON_BYTES)
        assert proc.wait(timeout=120) == 0, lives.lives[-1].read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
    figures = Figures("dead letter refused x retried")
    figures.kills["dead-letter delivery failure"] += 1
    settle(figures, lives.db, kafka_bootstrap, topic)
    report(figures)
    assert_audit_complete(kafka_bootstrap, topic, lives.db)
