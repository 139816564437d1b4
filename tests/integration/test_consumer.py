"""The consumer as a real process against a real broker, checked against the oracle."""

from __future__ import annotations

import csv
import signal
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest
from confluent_kafka import Consumer

from producer_sim.config import MessRates
from producer_sim.config import Settings as SimSettings
from producer_sim.events import generate_records
from producer_sim.reference import generate_reference, write_reference
from tests.corpus import edge_records
from tests.harness import (
    ROOT,
    assert_warehouse_matches,
    log_events,
    publish,
    run_consumer,
    start_consumer,
    table_counts,
)
from tests.oracle import compute_expected, read_topic
from tests.reliability.harness import committed_records, events
from tests.reliability.streams import hostile_stream

pytestmark = pytest.mark.integration

CONTRACT_REASONS = {
    "empty_payload",
    "invalid_json",
    "not_an_object",
    "missing_order_id",
    "invalid_created_at",
    "invalid_item",
    "invalid_amount",
    "conflicting_duplicate",
}
LOADED_TABLES = ("dim_order", "fact_sales", "processed_orders", "dim_user", "dim_product")


def csv_flags(users: Path, products: Path) -> tuple[str, ...]:
    return ("--users-csv", str(users), "--products-csv", str(products))


def write_corpus_reference(directory: Path) -> tuple[Path, Path]:
    """Reference data covering the corpus's regular user and sku, not its late-arriving ones."""
    users, products = directory / "users.csv", directory / "products.csv"
    with users.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["user_id", "name", "email", "country", "signup_date"])
        writer.writerow(["u-edge", "Zoë Łukasiewicz, Jr.", "zoe@example.org", "PL", "2024-02-29"])
        writer.writerow(["u-ré", 'René "Le Roi" Dupont', "rene@example.fr", "FR", "2023-01-15"])
    with products.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["sku", "name", "category", "list_price"])
        writer.writerow(["p-edge", "Café grinder", "kitchen", "10.50"])
        writer.writerow(["p-edge-1", "Teapot", "kitchen", "12"])
    return users, products


def test_every_contract_case_lands_exactly_as_the_oracle_expects(
    kafka_bootstrap: str, topic: str, group_id: str, db_path: Path, tmp_path: Path
) -> None:
    """Every tolerated and rejected case loads, drops or rejects exactly as computed apart."""
    publish(kafka_bootstrap, topic, edge_records())
    users, products = write_corpus_reference(tmp_path)
    proc = run_consumer(kafka_bootstrap, topic, group_id, db_path, *csv_flags(users, products))
    assert proc.returncode == 0, proc.stderr

    expected = compute_expected(read_topic(kafka_bootstrap, topic), users, products)
    assert set(expected.rejected.values()) >= CONTRACT_REASONS
    assert ("edge-3000-lines", 3000) in expected.lines
    assert_warehouse_matches(db_path, expected, topic)

    summaries = [e for e in log_events(proc.stdout) if e["event"] == "batch_committed"]
    assert sum(e["records"] for e in summaries) == len(read_topic(kafka_bootstrap, topic))
    assert sum(e["rejected"] for e in summaries) == len(expected.rejected)


def test_a_20k_order_stream_never_seen_lands_exactly_as_computed_apart(
    kafka_bootstrap: str, topic: str, group_id: str, db_path: Path, tmp_path: Path
) -> None:
    """About 20k simulated orders (re-sends, late users and skus, malformed records) plus the
    hand-written corpus (unicode, zones, a 3,000-line order...) give every table and all four
    reports exactly as the oracle computes them from the topic and the CSVs."""
    settings = SimSettings(seed=2024, orders=20_000)
    reference = generate_reference(settings.orders)
    users, products = write_reference(reference, tmp_path)
    records = [(r.key, r.value) for r in generate_records(settings, reference)]
    publish(kafka_bootstrap, topic, records + edge_records())
    proc = run_consumer(kafka_bootstrap, topic, group_id, db_path, *csv_flags(users, products))
    assert proc.returncode == 0, proc.stderr

    expected = compute_expected(read_topic(kafka_bootstrap, topic), users, products)
    assert len(expected.orders) >= 20_000
    assert any(u.is_inferred for u in expected.users.values())
    assert any(p.is_inferred for p in expected.products.values())
    assert set(expected.rejected.values()) >= CONTRACT_REASONS
    assert expected.duplicates
    assert_warehouse_matches(db_path, expected, topic)


def test_placeholders_are_completed_when_the_reference_data_arrives(
    kafka_bootstrap: str, topic: str, group_id: str, db_path: Path, tmp_path: Path
) -> None:
    """Orders for unknown users and skus load against placeholder rows, which become real
    dimension rows (is_inferred false) once the late CSV rows are upserted; no sale moves."""
    settings = SimSettings(seed=5, orders=2_000, rates=MessRates(late_user=0.05, late_sku=0.05))
    reference = generate_reference(settings.orders)
    users, products = write_reference(reference, tmp_path / "now")
    publish(
        kafka_bootstrap, topic, [(r.key, r.value) for r in generate_records(settings, reference)]
    )
    flags = csv_flags(users, products)
    assert run_consumer(kafka_bootstrap, topic, group_id, db_path, *flags).returncode == 0
    records = read_topic(kafka_bootstrap, topic)
    early = compute_expected(records, users, products)
    assert sum(u.is_inferred for u in early.users.values()) > 0
    assert_warehouse_matches(db_path, early, topic)

    late_users, late_products = write_reference(reference, tmp_path / "late", late=True)
    for current, late in ((users, late_users), (products, late_products)):
        rows = late.read_text(encoding="utf-8").splitlines(keepends=True)[1:]
        current.write_text(current.read_text(encoding="utf-8") + "".join(rows), encoding="utf-8")
    assert run_consumer(kafka_bootstrap, topic, group_id, db_path, *flags).returncode == 0
    completed = compute_expected(records, users, products)
    assert not any(u.is_inferred for u in completed.users.values())
    assert_warehouse_matches(db_path, completed, topic)


def test_a_running_consumer_picks_up_reference_data_that_changes(
    kafka_bootstrap: str, topic: str, group_id: str, db_path: Path, tmp_path: Path
) -> None:
    """While the consumer runs and loads, rows appended to the CSVs complete the placeholders."""
    settings = SimSettings(seed=6, orders=3_000, rates=MessRates(late_user=0.05, late_sku=0.05))
    reference = generate_reference(settings.orders)
    users, products = write_reference(reference, tmp_path / "now")
    records = [(r.key, r.value) for r in generate_records(settings, reference)]
    publish(kafka_bootstrap, topic, records[: len(records) // 2])
    log = tmp_path / "consumer.log"
    proc = start_consumer(
        kafka_bootstrap,
        topic,
        group_id,
        db_path,
        "--users-csv",
        str(users),
        "--products-csv",
        str(products),
        "--reference-poll-seconds",
        "0.5",
        "--batch-max-records",
        "500",
        log=log,
    )
    try:
        deadline = time.monotonic() + 60
        while "batch_committed" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.1)
        late_users, late_products = write_reference(reference, tmp_path / "late", late=True)
        for current, late in ((users, late_users), (products, late_products)):
            rows = late.read_text(encoding="utf-8").splitlines(keepends=True)[1:]
            current.write_text(
                current.read_text(encoding="utf-8") + "".join(rows), encoding="utf-8"
            )
        publish(kafka_bootstrap, topic, records[len(records) // 2 :])
        while time.monotonic() < deadline and (
            log.read_text().count("reference_loaded") < 2 or committed_records(log) < len(records)
        ):
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    completed = compute_expected(read_topic(kafka_bootstrap, topic), users, products)
    assert not any(u.is_inferred for u in completed.users.values())
    assert_warehouse_matches(db_path, completed, topic)


def test_dead_letters_keep_key_value_and_carry_the_reason_headers(
    kafka_bootstrap: str, topic: str, group_id: str, db_path: Path
) -> None:
    """Each rejected record reaches <topic>.dlq with its key, value and Connect-style headers."""
    publish(kafka_bootstrap, topic, edge_records())
    assert run_consumer(kafka_bootstrap, topic, group_id, db_path).returncode == 0
    records = read_topic(kafka_bootstrap, topic)
    expected = compute_expected(records)
    originals = {(r.partition, r.offset): r for r in records}

    reader = Consumer(
        {
            "bootstrap.servers": kafka_bootstrap,
            "group.id": group_id + "-dlq",
            "auto.offset.reset": "earliest",
        }
    )
    reader.subscribe([f"{topic}.dlq"])
    seen: dict[tuple[int, int], str] = {}
    deadline = time.monotonic() + 60
    while len(seen) < len(expected.rejected) and time.monotonic() < deadline:
        message = reader.poll(0.5)
        if message is None or message.error():
            continue
        headers = {k: v.decode() for k, v in message.headers() or []}
        assert headers["__connect.errors.topic"] == topic
        position = (
            int(headers["__connect.errors.partition"]),
            int(headers["__connect.errors.offset"]),
        )
        original = originals[position]
        assert (message.key(), message.value()) == (original.key, original.value)
        assert headers["__connect.errors.exception.message"]
        seen[position] = headers["__connect.errors.exception.class.name"]
    reader.close()
    assert seen == {(p, o): reason for (_, p, o), reason in expected.rejected.items()}


def test_feeding_the_same_records_twice_changes_nothing(
    kafka_bootstrap: str, topic: str, group_id: str, db_path: Path
) -> None:
    """A second copy of the whole stream adds no order and no line; reports stay the same."""
    publish(kafka_bootstrap, topic, edge_records())
    assert run_consumer(kafka_bootstrap, topic, group_id, db_path).returncode == 0
    before = table_counts(db_path, LOADED_TABLES)

    publish(kafka_bootstrap, topic, edge_records())
    assert run_consumer(kafka_bootstrap, topic, group_id, db_path).returncode == 0
    assert table_counts(db_path, LOADED_TABLES) == before
    assert_warehouse_matches(db_path, compute_expected(read_topic(kafka_bootstrap, topic)), topic)


def test_a_restart_resumes_where_the_database_left_off(
    kafka_bootstrap: str, topic_factory: Callable[..., str], group_id: str, db_path: Path
) -> None:
    """Stop after half the stream, publish the rest, restart: nothing lost, nothing twice."""
    topic = topic_factory(2)
    records = edge_records()
    publish(kafka_bootstrap, topic, records[: len(records) // 2])
    assert run_consumer(kafka_bootstrap, topic, group_id, db_path).returncode == 0
    publish(kafka_bootstrap, topic, records[len(records) // 2 :])
    second = run_consumer(kafka_bootstrap, topic, group_id, db_path)
    assert second.returncode == 0

    assert_warehouse_matches(db_path, compute_expected(read_topic(kafka_bootstrap, topic)), topic)
    assigned = [e for e in log_events(second.stdout) if e["event"] == "partitions_assigned"]
    assert assigned and all(int(o) > 0 for o in assigned[0]["start_offsets"].values())


def test_a_crash_between_the_database_and_kafka_commits_redelivers_nothing(
    kafka_bootstrap: str, topic: str, group_id: str, db_path: Path
) -> None:
    """Killed after the DuckDB commit but before the Kafka commit, the restart resumes from
    the ledger: no record is counted twice."""
    publish(kafka_bootstrap, topic, edge_records())
    crashed = run_consumer(
        kafka_bootstrap, topic, group_id, db_path, faults="kill_after_db_commit@1"
    )
    assert crashed.returncode == -signal.SIGKILL
    assert run_consumer(kafka_bootstrap, topic, group_id, db_path).returncode == 0
    assert_warehouse_matches(db_path, compute_expected(read_topic(kafka_bootstrap, topic)), topic)


def test_a_second_process_on_the_same_database_is_refused_and_sigterm_exits_0(
    kafka_bootstrap: str, topic: str, group_id: str, db_path: Path, tmp_path: Path
) -> None:
    """The second consumer fails fast before joining the group; the first drains on SIGTERM."""
    publish(kafka_bootstrap, topic, edge_records())
    log = tmp_path / "first.log"
    first = start_consumer(kafka_bootstrap, topic, group_id, db_path, log=log)
    try:
        deadline = time.monotonic() + 60
        while "batch_committed" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        second = run_consumer(kafka_bootstrap, topic, group_id + "-other", db_path, timeout=60)
        assert second.returncode == 1
        assert "in use by another process" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
        assert "partitions_assigned" not in second.stdout
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=60) == 0
    events = log_events(log.read_text())
    assert events[-1]["event"] == "consumer_stopped"


DRAIN_BATCH, DRAIN_TAIL = 50, 20


def test_records_buffered_at_sigterm_are_in_the_file_when_the_process_exits_0(
    kafka_bootstrap: str, topic_factory: Callable[..., str], group_id: str, tmp_path: Path
) -> None:
    """Three full batches are written; the last 20 records of the topic then sit in the
    buffer, where a batch waits 600 s for more. SIGTERM: the process writes and commits them,
    exits 0, and before any restart the file holds the whole topic as the oracle says."""
    topic = topic_factory(1)
    records = hostile_stream(200, seed=23)[: 3 * DRAIN_BATCH + DRAIN_TAIL]
    publish(kafka_bootstrap, topic, records)
    db, log = tmp_path / "w.duckdb", tmp_path / "consumer.log"
    proc = start_consumer(
        kafka_bootstrap, topic, group_id, db,
        "--batch-max-records", str(DRAIN_BATCH), "--batch-max-seconds", "600",
        log=log,
    )  # fmt: skip
    try:
        # The third batch's commit is logged after a poll that followed its hand-over: that
        # poll took the tail, which the first fetch had brought along.
        deadline = time.monotonic() + 120
        while committed_records(log) < 3 * DRAIN_BATCH and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.1)
        before = [e["next_offsets"] for e in events(log) if e["event"] == "batch_committed"]
        assert before == [{"0": 50}, {"0": 100}, {"0": 150}], log.read_text()[-3000:]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=120) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    logged = events(log)
    at_stop = [e for e in logged if e["event"] == "batch_committed"][len(before) :]
    assert sum(e["records"] for e in at_stop) == DRAIN_TAIL, "the buffered records were lost"
    assert at_stop[-1]["next_offsets"] == {"0": len(records)}
    assert logged[-1]["event"] == "consumer_stopped"
    (started,) = [e for e in logged if e["event"] == "consumer_started"]
    built = any((ROOT / "consumer" / "core").glob("_native.*.so"))
    assert started["parse_tier"] == ("native" if built else "python")
    expected = compute_expected(read_topic(kafka_bootstrap, topic))
    assert_warehouse_matches(db, expected, topic, reports=False)
    with duckdb.connect(str(db), read_only=True) as con:
        ledger = con.execute('SELECT "partition", next_offset FROM kafka_offsets').fetchall()
    assert ledger == [(0, len(records))]
