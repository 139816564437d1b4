"""Transactional input under SIGKILL (issue 15): the consumer is killed while a transaction is
open upstream, and again while transactions (some aborted) keep coming, then restarted.

Each scenario ends with the warehouse equal to the oracle over what a ``read_committed``
reader sees, a dead letter for every rejected record, ``audit`` complete with the true marker
and aborted counts, and the ledger and the group's offsets at the true end (lag 0).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from tests.harness import ROOT
from tests.integration.simcli import sim_env
from tests.javaproducer import JavaProducer, JavaUnavailableError, encode_line
from tests.reliability.harness import (
    ConsumerLives,
    Figures,
    Scale,
    settle,
    small_batches,
    wait_for_event,
)
from tests.reliability.streams import hostile_stream
from tests.reliability.test_crashes import Report
from tests.topicfacts import (
    assert_at_the_true_end,
    assert_audit_complete,
    assert_dead_letters_match,
    record_offsets,
)

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

SCALE = Scale.from_env()
TRANSACTION = 100  # records per upstream transaction
ABORT_EVERY = 4  # transactions 3, 7, 11, ... are aborted


def is_aborted(transaction: int) -> bool:
    """The Java producer's --abort-every schedule."""
    return transaction % ABORT_EVERY == ABORT_EVERY - 1


@pytest.fixture(scope="module")
def java(tmp_path_factory: pytest.TempPathFactory) -> JavaProducer:
    try:
        return JavaProducer.build(tmp_path_factory.mktemp("java-producer"))
    except JavaUnavailableError as exc:
        pytest.skip(str(exc))


def lives_for(bootstrap: str, topic: str, tmp_path: Path) -> ConsumerLives:
    group = f"g-{uuid.uuid4().hex[:10]}"
    return ConsumerLives(
        bootstrap, topic, group, tmp_path / "warehouse.duckdb", tmp_path, small_batches()
    )


def kill_while_running(lives: ConsumerLives, kills: int, rng: random.Random, f: Figures) -> None:
    """Start the consumer, let it commit at least one batch (or go idle past markers), then
    SIGKILL it at a random moment; ``kills`` times."""
    for _ in range(kills):
        proc = lives.start()
        wait_for_event(lives.lives[-1], "partitions_assigned")
        time.sleep(rng.uniform(0.5, 2.0))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        f.kills["SIGKILL, transaction open"] += 1


def finish_and_check(lives: ConsumerLives, figures: Figures, report: Report) -> None:
    """Run to the true end, then every acceptance check of issue 15."""
    done = lives.finish()
    assert done.returncode == 0, done.stdout[-3000:]
    expected = settle(figures, lives.db, lives.bootstrap, lives.topic)
    assert_dead_letters_match(lives.bootstrap, lives.topic, expected.rejected)
    rows = assert_audit_complete(lives.bootstrap, lives.topic, lives.db)
    assert sum(r["markers"] for r in rows) > 0 and sum(r["aborted"] for r in rows) > 0
    assert_at_the_true_end(lives.bootstrap, lives.topic, lives.group, lives.db)
    report(figures)


@pytest.mark.parametrize("open_one", ["committed", "aborted"])
def test_sigkill_while_a_java_transaction_is_open_upstream(
    java: JavaProducer, kafka_bootstrap: str, topic: str, tmp_path: Path, *, open_one: str,
    report: Report,
) -> None:  # fmt: skip
    """The Java producer stops half-way through a transaction (later committed, or aborted)
    with its records in the log; the consumer, held at the last stable offset, is killed
    three times; then the transaction ends, more come with kills between them, and the
    restarted consumer ends exactly at the oracle, DLQ, audit and lag 0."""
    records = hostile_stream(2_000, seed=1501)
    # Transaction 12 (records 1200..1299) commits, transaction 11 (1100..1199) aborts.
    pause_at = 1250 if open_one == "committed" else 1150
    assert is_aborted(pause_at // TRANSACTION) == (open_one == "aborted")
    paused, resume = tmp_path / "paused", tmp_path / "resume"
    producer = java.start(
        kafka_bootstrap, topic, "--compression", "lz4",
        "--transaction-size", str(TRANSACTION), "--abort-every", str(ABORT_EVERY),
        "--pause-at", str(pause_at), "--pause-file", str(paused), "--resume-file", str(resume),
    )  # fmt: skip
    outcome: list[tuple[str, str]] = []
    feeder = threading.Thread(
        target=lambda: outcome.append(
            producer.communicate("".join(encode_line(k, v) for k, v in records), timeout=600)
        ),
        daemon=True,
    )
    feeder.start()
    try:
        deadline = time.monotonic() + 120
        while not paused.exists():
            assert producer.poll() is None and time.monotonic() < deadline, "never paused"
            time.sleep(0.05)
        # The open transaction's records are in the log, invisible to read_committed, like
        # those of the transactions aborted before it.
        committed = record_offsets(kafka_bootstrap, topic, "read_committed")
        everything = record_offsets(kafka_bootstrap, topic, "read_uncommitted")
        hidden = sum(map(len, everything.values())) - sum(map(len, committed.values()))
        aborted_before = sum(1 for t in range(pause_at // TRANSACTION) if is_aborted(t))
        assert hidden == aborted_before * TRANSACTION + pause_at % TRANSACTION

        lives = lives_for(kafka_bootstrap, topic, tmp_path)
        figures = Figures(f"SIGKILL, Java transaction open ({open_one})")
        rng = random.Random(pause_at)
        kill_while_running(lives, 3, rng, figures)
        resume.touch()
        lives.kill_randomly(max(2, SCALE.kills // 10), rng, figures)
        feeder.join(timeout=600)
        assert producer.returncode == 0, outcome[0][1][-3000:] if outcome else "no outcome"
    finally:
        resume.touch()
        if producer.poll() is None:
            producer.kill()
        feeder.join(timeout=30)
    finish_and_check(lives, figures, report)


def test_random_sigkills_while_the_simulator_publishes_in_transactions(
    kafka_bootstrap: str, topic: str, tmp_path: Path, report: Report
) -> None:
    """`orders-sim publish --transactional --abort-rate 0.25 --rate 200`: the consumer is
    SIGKILLed at random moments while transactions are open and restarted; it ends exactly at
    the oracle, with every dead letter, a complete audit and lag 0."""
    sim = subprocess.Popen(
        [sys.executable, "-m", "producer_sim", "publish", "--bootstrap-servers", kafka_bootstrap,
         "--topic", topic, "--orders", "2000", "--seed", "1502", "--rate", "200",
         "--transactional", "--transaction-size", "60", "--abort-rate", "0.25",
         "--api-failure-rate", "0", "--log-format", "json", "--state-dir", str(tmp_path / "s")],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env=sim_env(tmp_path), cwd=ROOT,
    )  # fmt: skip
    try:
        lives = lives_for(kafka_bootstrap, topic, tmp_path)
        figures = Figures("SIGKILL x sim --transactional")
        lives.kill_randomly(max(4, SCALE.kills // 5), random.Random(1502), figures)
        _, err = sim.communicate(timeout=300)
        assert sim.returncode == 0, err[-3000:]
    finally:
        if sim.poll() is None:
            sim.kill()
            sim.communicate()
    finish_and_check(lives, figures, report)
