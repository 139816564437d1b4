"""No loss and no duplication, whatever happens: SIGKILLs at random and at the dangerous
instants, SIGTERM, a broker crash, failing writes, a second process, and poison records.

Every scenario ends by comparing the warehouse with the oracle's independent computation over
what the topic really holds. ``make soak`` runs the same scenarios at a larger scale.
"""

from __future__ import annotations

import json
import random
import signal
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from confluent_kafka import Consumer, TopicPartition
from confluent_kafka.admin import AdminClient
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from producer_sim.config import MessRates
from producer_sim.config import Settings as SimSettings
from producer_sim.events import generate_records
from tests.corpus import Record, malformed
from tests.harness import create_topic, publish, run_consumer
from tests.reliability.harness import (
    ConsumerLives,
    Figures,
    Scale,
    Trickle,
    committed_records,
    events,
    hostile_stream,
    settle,
    wait_for_event,
)
from tools.localkafka import LocalKafka, MissingToolError, check_java

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

SCALE = Scale.from_env()
SESSION_TIMEOUT_S = 60
# The targeted scenarios count batches (fault at batch 2, ...): their streams are sized for
# this batch size, whatever the scale of the random-kill scenario.
SMALL_BATCH = 300
Report = Callable[[Figures], None]


def small_batches(records: int = SMALL_BATCH) -> tuple[str, ...]:
    return (
        "--batch-max-records",
        str(records),
        "--batch-max-seconds",
        "0.2",
        "--kafka-option",
        f"session.timeout.ms={SESSION_TIMEOUT_S * 1000}",
    )


def lives_for(
    bootstrap: str, topic: str, tmp_path: Path, batch_records: int = SMALL_BATCH
) -> ConsumerLives:
    return ConsumerLives(
        bootstrap,
        topic,
        f"g-{uuid.uuid4().hex[:10]}",
        tmp_path / "warehouse.duckdb",
        tmp_path,
        small_batches(batch_records),
    )


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
    settle(figures, lives.db, kafka_bootstrap, topic)
    report(figures)
    assert sum(figures.kills.values()) >= SCALE.kills
    # Not a speed target: static membership hands the partitions straight back, whereas a
    # dynamic member would wait for the dead one to time out (SESSION_TIMEOUT_S).
    assert max(figures.recovery_seconds) < SESSION_TIMEOUT_S / 2


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


def test_a_broker_crash_and_restart_mid_run_is_ridden_out(
    tmp_path: Path, topic_factory: Callable[..., str], report: Report
) -> None:
    """The broker is SIGKILLed mid-run and restarted on the same data directory; the consumer
    backs off, resumes, and finishes with exactly the expected warehouse."""
    try:
        check_java()
    except MissingToolError as exc:
        pytest.skip(f"needs the native broker: {exc}")
    broker = LocalKafka.ephemeral(tmp_path / "broker")
    broker.start()
    try:
        topic = create_topic(AdminClient({"bootstrap.servers": broker.bootstrap}), 3)
        records = hostile_stream(8_000, seed=9)
        publish(broker.bootstrap, topic, records)
        lives = lives_for(broker.bootstrap, topic, tmp_path)
        proc = lives.start()
        wait_for_event(lives.lives[-1], "batch_committed")
        broker.kill()
        time.sleep(3)
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
        retried = [
            e for e in events(lives.lives[-1]) if e.get("event") in ("retrying", "kafka_error")
        ]
        assert retried, "the consumer never noticed the broker was gone"
    finally:
        broker.stop()


def test_failing_database_writes_roll_back_and_are_retried(
    kafka_bootstrap: str, topic: str, tmp_path: Path, report: Report
) -> None:
    """Injected DuckDB write failures roll the batch back; it is retried and committed once."""
    publish(kafka_bootstrap, topic, hostile_stream(4_000, seed=10))
    lives = lives_for(kafka_bootstrap, topic, tmp_path)
    done = lives.finish(faults="fail_db_write@2+3+5")
    assert done.returncode == 0
    log = events(lives.lives[-1])
    retries = [e for e in log if e.get("event") == "retrying"]
    assert [e["operation"] for e in retries] == ["warehouse_write"] * 3
    batch_ids = [e["batch_id"] for e in log if e.get("event") == "batch_committed"]
    assert batch_ids == list(range(1, len(batch_ids) + 1))
    figures = Figures("failing DuckDB writes")
    figures.kills["injected write failure"] += 3
    settle(figures, lives.db, kafka_bootstrap, topic)
    report(figures)


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
        "--retry-seconds",
        "0",
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


payloads = st.one_of(
    st.binary(max_size=64),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda children: (
            st.lists(children, max_size=4)
            | st.dictionaries(st.text(max_size=8), children, max_size=4)
        ),
        max_leaves=12,
    ).map(lambda value: json.dumps(value).encode()),
    st.fixed_dictionaries(
        {"order_id": st.text(min_size=1, max_size=6)},
        optional={
            "items": st.lists(
                st.dictionaries(
                    st.sampled_from(["sku", "quantity", "price"]),
                    st.one_of(st.integers(-3, 3), st.floats(-5, 5), st.text(max_size=3), st.none()),
                ),
                max_size=3,
            ),
            "created_at": st.text(max_size=25),
            "amount": st.floats(-1e12, 1e12),
        },
    ).map(lambda value: json.dumps(value).encode()),
)


@settings(
    max_examples=2,
    deadline=None,
    phases=[Phase.generate],
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.data_too_large,
        HealthCheck.too_slow,
    ],
)
@given(fuzz=st.lists(payloads, min_size=150, max_size=150))
def test_poison_records_never_crash_the_consumer(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    tmp_path_factory: pytest.TempPathFactory,
    report: Report,
    fuzz: list[bytes],
) -> None:
    """Over a thousand malformed records of every reject class plus Hypothesis payloads: the
    consumer exits cleanly and each record is loaded or rejected with a reason, never both."""
    topic = topic_factory(3)
    rates = MessRates.none()
    poison: list[Record] = [
        (r.key, r.value)
        for r in generate_records(
            SimSettings(
                seed=12, orders=1_100, rates=MessRates(**{**rates.__dict__, "malformed": 1.0})
            )
        )
    ]
    publish(kafka_bootstrap, topic, poison + malformed() + [(None, value) for value in fuzz])
    lives = lives_for(kafka_bootstrap, topic, tmp_path_factory.mktemp("poison"))
    assert lives.finish().returncode == 0
    figures = Figures("poison corpus + Hypothesis")
    expected = settle(figures, lives.db, kafka_bootstrap, topic)
    assert len(expected.rejected) >= 1_000
    assert not set(expected.loaded) & set(expected.rejected)
    report(figures)
