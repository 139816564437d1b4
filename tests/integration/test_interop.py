"""Topics written by Kafka's own Java client (issue 15): transactions with aborts, each codec,
headers, key-less records. Each topic is checked against the oracle over what a
``read_committed`` reader sees, with lag 0 at the end and ``audit`` complete."""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pytest
from confluent_kafka import Consumer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families

from producer_sim.config import MessRates
from producer_sim.config import Settings as SimSettings
from producer_sim.events import generate_records
from tests.conftest import Broker
from tests.corpus import Record, malformed
from tests.harness import (
    ROOT,
    assert_warehouse_matches,
    consumer_command,
    consumer_env,
    run_consumer,
)
from tests.javaproducer import CODECS, JavaProducer, JavaUnavailableError
from tests.oracle import compute_expected, read_topic
from tests.topicfacts import (
    assert_at_the_true_end,
    assert_audit_complete,
    assert_dead_letters_match,
    batch_codecs,
    run_audit,
)
from tools.localkafka import free_port

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def java(tmp_path_factory: pytest.TempPathFactory) -> JavaProducer:
    try:
        return JavaProducer.build(tmp_path_factory.mktemp("java-producer"))
    except JavaUnavailableError as exc:
        pytest.skip(str(exc))


def stream(orders: int, seed: int, rates: MessRates | None = None) -> list[Record]:
    """The simulator's messy stream plus every hand-written malformed record."""
    settings = SimSettings(seed=seed, orders=orders, rates=rates or MessRates())
    return [(r.key, r.value) for r in generate_records(settings)] + malformed()


def test_a_java_transactional_topic_with_aborts_loads_exactly_the_committed_records(
    java: JavaProducer, kafka_bootstrap: str, topic: str, group_id: str, db_path: Path
) -> None:
    """Java client, zstd, transactions of 40 with every third aborted: the warehouse equals
    the oracle over the committed records, every reject has its dead letter, ledger and
    commits reach the end past the markers, audit is complete with the true counts; a
    deleted dim_order row is then named."""
    summary = java.publish(
        kafka_bootstrap, topic, stream(1500, seed=151),
        "--compression", "zstd", "--transaction-size", "40", "--abort-every", "3",
    )  # fmt: skip
    assert summary["aborted_transactions"] > 0 and summary["aborted_records"] > 0
    proc = run_consumer(kafka_bootstrap, topic, group_id, db_path)
    assert proc.returncode == 0, proc.stderr
    records = read_topic(kafka_bootstrap, topic)
    assert len(records) == summary["records"] - summary["aborted_records"]
    expected = compute_expected(records)
    assert_warehouse_matches(db_path, expected, topic)
    assert_at_the_true_end(kafka_bootstrap, topic, group_id, db_path)
    rows = assert_audit_complete(kafka_bootstrap, topic, db_path)
    assert_dead_letters_match(kafka_bootstrap, topic, expected.rejected)
    assert sum(r["aborted"] for r in rows) == summary["aborted_records"]
    assert sum(r["markers"] for r in rows) >= summary["transactions"]

    # A truly missing offset is still named, and markers and aborts are not blamed for it.
    with duckdb.connect(str(db_path)) as con:
        row = con.execute(
            "SELECT kafka_partition, kafka_offset FROM dim_order ORDER BY kafka_offset DESC LIMIT 1"
        ).fetchone()
        assert row is not None
        partition, offset = row
        con.execute("DELETE FROM dim_order WHERE kafka_partition = ? AND kafka_offset = ?", row)
    audit = run_audit(kafka_bootstrap, topic, db_path)
    assert audit.returncode == 1
    assert f"partition {partition}: 1 missing: {offset}" in audit.stderr
    problems = [r for r in audit.rows if r["status"] != "complete"]
    assert [(r["partition"], r["missing"], r["doubled"]) for r in problems] == [
        (partition, [offset], [])
    ]


def test_lag_metric_reaches_zero_on_a_transactional_topic(
    java: JavaProducer, kafka_bootstrap: str, topic: str, group_id: str, tmp_path: Path
) -> None:
    """A long-running consumer on a topic that ends with commit markers shows
    pipeline_consumer_lag 0 on every partition once caught up (not 1 for ever)."""
    java.publish(
        kafka_bootstrap, topic, stream(300, seed=152), "--transaction-size", "25",
        "--abort-every", "4",
    )  # fmt: skip
    port, db_path = free_port(), tmp_path / "warehouse.duckdb"
    log = tmp_path / "consumer.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            consumer_command(kafka_bootstrap, topic, group_id, db_path, "--metrics-port",
                             str(port)),
            stdout=out, stderr=subprocess.STDOUT, env=consumer_env(), cwd=ROOT,
        )  # fmt: skip
    try:
        lag = wait_for_lag(port, proc, lambda lag: len(lag) == 3 and not any(lag.values()))
        assert lag == {"0": 0.0, "1": 0.0, "2": 0.0}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0, log.read_text()[-3000:]
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
    assert_at_the_true_end(kafka_bootstrap, topic, group_id, db_path)


def wait_for_lag(
    port: int, proc: subprocess.Popen[bytes], done: Callable[[dict[str, float]], bool]
) -> dict[str, float]:
    """Scrape pipeline_consumer_lag until ``done`` holds (fail after 120 s, naming the last)."""
    lag: dict[str, float] = {}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the consumer exited"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                text = r.read().decode()
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
            continue
        lag = {
            s.labels["partition"]: s.value
            for family in text_string_to_metric_families(text)
            for s in family.samples
            if s.name == "pipeline_consumer_lag"
        }
        if done(lag):
            return lag
        time.sleep(0.2)
    pytest.fail(f"pipeline_consumer_lag never reached 0: last {lag}")


def warehouse_content(db: Path) -> dict[str, Counter[tuple[Any, ...]]]:
    """Every table's rows without Kafka positions (which depend on where markers fall)."""
    queries = {
        "dim_order": "SELECT order_id, user_id, amount, currency, source, promo, created_at "
        "FROM dim_order",
        "fact_sales": "SELECT order_id, line_number, sku, user_id, quantity, unit_price, "
        "created_at FROM fact_sales",
        "dim_user": "SELECT user_id, name, email, country, signup_date, is_inferred FROM dim_user",
        "dim_product": "SELECT sku, name, category, list_price, is_inferred FROM dim_product",
        "rejected_events": "SELECT reason, payload FROM rejected_events",
        "dropped_duplicates": "SELECT count(*) FROM dropped_duplicates",
    }
    with duckdb.connect(str(db), read_only=True) as con:
        return {name: Counter(con.execute(sql).fetchall()) for name, sql in queries.items()}


def test_the_four_codecs_give_the_same_warehouse(
    java: JavaProducer, kafka_broker: Broker, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    """One transactional stream written with gzip, snappy, lz4 and zstd (checked in the
    broker's own log segments): each warehouse equals its oracle with lag 0 and a complete
    audit, and all four hold the same rows."""
    bootstrap = kafka_broker.bootstrap
    records = stream(400, seed=153)
    topics = {codec: topic_factory(3) for codec in CODECS}

    def load(codec: str) -> dict[str, Counter[tuple[Any, ...]]]:
        topic, db = topics[codec], tmp_path / f"{codec}.duckdb"
        group = f"g-{topic}"
        java.publish(
            bootstrap, topic, records, "--compression", codec, "--transaction-size", "30",
            "--abort-every", "5",
        )  # fmt: skip
        proc = run_consumer(bootstrap, topic, group, db)
        assert proc.returncode == 0, proc.stderr
        assert_warehouse_matches(db, compute_expected(read_topic(bootstrap, topic)), topic)
        assert_at_the_true_end(bootstrap, topic, group, db)
        assert_audit_complete(bootstrap, topic, db)
        return warehouse_content(db)

    # The four runs are independent processes mostly waiting on the broker: side by side,
    # they took 42 s here instead of 118 s one after the other (600 orders each).
    with ThreadPoolExecutor(len(CODECS)) as pool:
        contents = dict(zip(CODECS, pool.map(load, CODECS), strict=True))
    if kafka_broker.local is not None:
        stored = batch_codecs(kafka_broker.local, list(topics.values()))
        assert {codec: set(stored[topics[codec]]) for codec in CODECS} == {
            codec: {codec} for codec in CODECS
        }
    first = contents["gzip"]
    assert first["dim_order"] and first["rejected_events"]
    for codec in CODECS[1:]:
        assert contents[codec] == first, codec


def test_records_with_headers_load_as_if_they_had_none(
    java: JavaProducer, kafka_bootstrap: str, topic: str, group_id: str, db_path: Path
) -> None:
    """Every record carries text, binary, null and repeated headers (one named order_id): they
    reach the topic, and the warehouse still equals the oracle, which ignores headers."""
    records = stream(200, seed=154)
    java.publish(kafka_bootstrap, topic, records, "--headers", "--transaction-size", "50")
    reader = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": f"h-{group_id}"})
    reader.assign([TopicPartition(topic, p, 0) for p in range(3)])
    message = None
    deadline = time.monotonic() + 30
    while message is None and time.monotonic() < deadline:
        message = reader.poll(0.5)
    reader.close()
    assert message is not None and message.error() is None
    headers = message.headers() or []
    assert ("binary", b"\x00\x01\x02\xff") in headers and ("empty", None) in headers
    assert [v for k, v in headers if k == "order_id"] == [b"not-the-order-id", b"twice"]

    proc = run_consumer(kafka_bootstrap, topic, group_id, db_path)
    assert proc.returncode == 0, proc.stderr
    expected = compute_expected(read_topic(kafka_bootstrap, topic))
    assert len(expected.loaded) + len(expected.duplicates) + len(expected.rejected) == len(records)
    assert_warehouse_matches(db_path, expected, topic)
    assert_at_the_true_end(kafka_bootstrap, topic, group_id, db_path)
    assert_audit_complete(kafka_bootstrap, topic, db_path)


def test_key_less_records_from_the_sticky_partitioner_are_all_loaded(
    java: JavaProducer, kafka_bootstrap: str, topic: str, group_id: str, db_path: Path
) -> None:
    """Without keys, the Java client's sticky partitioner spreads whole batches over the
    partitions; every order (no re-sends, so none is ambiguous) is loaded, lag 0, audit
    complete."""
    rates = MessRates(resend_identical=0, resend_conflicting=0)
    records = stream(800, seed=155, rates=rates)
    java.publish(kafka_bootstrap, topic, records, "--keyless", "--transaction-size", "100")
    topic_records = read_topic(kafka_bootstrap, topic)
    assert all(record.key is None for record in topic_records)
    per_partition = Counter(record.partition for record in topic_records)
    assert len(per_partition) >= 2, per_partition  # sticky, not all in one partition

    proc = run_consumer(kafka_bootstrap, topic, group_id, db_path)
    assert proc.returncode == 0, proc.stderr
    expected = compute_expected(topic_records)
    assert len({partition for _, partition, _ in expected.loaded}) >= 2
    assert_warehouse_matches(db_path, expected, topic)
    assert_at_the_true_end(kafka_bootstrap, topic, group_id, db_path)
    assert_audit_complete(kafka_bootstrap, topic, db_path)
