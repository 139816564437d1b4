"""orders-sim on a real broker: the topic holds the stream, whole and in key order."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest
from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from structlog.testing import capture_logs

from producer_sim.api import ScriptedFaults
from producer_sim.config import Settings
from producer_sim.events import SimRecord, generate_records
from producer_sim.runner import publish

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def state_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The simulator's default state dir goes under the test's tmp dir, not $HOME."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg-state"))


Record = tuple[bytes | None, bytes | None]


def read_topic(bootstrap: str, topic: str, timeout: float = 60) -> dict[int, list[Record]]:
    """Every record of every partition, in offset order, up to the current end."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
        }
    )
    partitions = sorted(consumer.list_topics(topic, timeout=10).topics[topic].partitions)
    ends = {
        p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
        for p in partitions
    }
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in partitions])
    result: dict[int, list[Record]] = {p: [] for p in partitions}
    deadline = time.monotonic() + timeout
    while any(len(result[p]) < ends[p] for p in partitions) and time.monotonic() < deadline:
        for message in consumer.consume(1000, timeout=0.5):
            assert message.error() is None, message.error()
            result[message.partition()].append((message.key(), message.value()))
    consumer.close()
    assert all(len(result[p]) == ends[p] for p in partitions)
    return result


def by_key(
    records: Iterable[Record],
) -> tuple[dict[bytes, list[bytes | None]], Counter[bytes | None]]:
    """Values per key in order, and the multiset of values of keyless records."""
    keyed: dict[bytes, list[bytes | None]] = defaultdict(list)
    keyless: Counter[bytes | None] = Counter()
    for key, value in records:
        if key is None:
            keyless[value] += 1
        else:
            keyed[key].append(value)
    return dict(keyed), keyless


def as_stream(records: Iterable[SimRecord]) -> list[Record]:
    return [(r.key, r.value) for r in records]


def order_id_of(value: bytes | None) -> str | None:
    try:
        doc = json.loads(value) if value else None
    except ValueError:
        return None
    oid = doc.get("order_id") if isinstance(doc, dict) else None
    return oid if isinstance(oid, str) and oid else None


def run_cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_SIM_")}
    return subprocess.run(
        [sys.executable, "-m", "producer_sim", "publish", *args, "--retry-base-delay", "0"],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def test_same_seed_fills_two_topics_identically(
    kafka_bootstrap: str, topic_factory: Callable[..., str], tmp_path: Path
) -> None:
    """5,000 orders twice with one seed: equal topics and CSVs, keys = order ids, key order kept."""
    topics = [topic_factory(3), topic_factory(3)]
    for topic, ref in zip(topics, ("ref-a", "ref-b"), strict=True):
        done = run_cli(
            "--bootstrap-servers",
            kafka_bootstrap,
            "--topic",
            topic,
            "--orders",
            "5000",
            "--seed",
            "99",
            "--reference-dir",
            str(tmp_path / ref),
        )
        assert done.returncode == 0, done.stderr
        assert "published" in done.stderr and len(done.stderr.strip().splitlines()) == 1
        events = [json.loads(line)["event"] for line in done.stdout.splitlines()]
        assert "publish_summary" in events
    first, second = (read_topic(kafka_bootstrap, t) for t in topics)
    assert first == second
    for name in ("users.csv", "products.csv"):
        assert (tmp_path / "ref-a" / name).read_bytes() == (tmp_path / "ref-b" / name).read_bytes()

    stream = as_stream(generate_records(Settings(seed=99, orders=5000)))
    in_topic = [record for part in first.values() for record in part]
    assert len(in_topic) == len(stream)
    assert by_key(in_topic) == by_key(stream)  # same records, same order within each key
    partitions_of: dict[bytes, set[int]] = defaultdict(set)
    for partition, records in first.items():
        for key, value in records:
            oid = order_id_of(value)
            if oid is not None:
                assert key == oid.encode()
            if key is not None:
                partitions_of[key].add(partition)
    assert all(len(parts) == 1 for parts in partitions_of.values())
    assert sum(key is None for key, _ in in_topic) > 0 and len(set(partitions_of)) > 5_000 - 1


def test_exhausted_retries_leave_exactly_the_earlier_pages(
    kafka_bootstrap: str, topic: str
) -> None:
    """Page 3 never answers: pages 0-2 (600 records) are in the topic, nothing more; exit code 1."""
    settings = Settings(
        seed=12,
        orders=2_000,
        page_size=200,
        bootstrap_servers=kafka_bootstrap,
        topic=topic,
        retry_base_delay=0,
    )
    report = publish(settings, faults=ScriptedFaults({3: 99}), progress_stream=io.StringIO())
    assert report.exit_code == 1 and report.api_error is not None and report.api_error.page == 3
    in_topic = [r for part in read_topic(kafka_bootstrap, topic).values() for r in part]
    expected = as_stream(generate_records(settings))[:600]
    assert len(in_topic) == 600
    assert by_key(in_topic) == by_key(expected)


def test_transient_failures_then_success_publish_everything(
    kafka_bootstrap: str, topic: str
) -> None:
    """Pages failing 1 and 3 times are retried (and logged); the topic gets the whole stream."""
    settings = Settings(
        seed=13,
        orders=1_500,
        page_size=250,
        bootstrap_servers=kafka_bootstrap,
        topic=topic,
        retry_base_delay=0,
    )
    with capture_logs() as logs:
        report = publish(
            settings, faults=ScriptedFaults({0: 1, 2: 3}), progress_stream=io.StringIO()
        )
    assert report.exit_code == 0 and report.delivery_failures == 0
    assert [(e["page"], e["attempt"]) for e in logs if e["event"] == "api_retry"] == [
        (0, 1),
        (2, 1),
        (2, 2),
        (2, 3),
    ]
    in_topic = [r for part in read_topic(kafka_bootstrap, topic).values() for r in part]
    assert by_key(in_topic) == by_key(as_stream(generate_records(settings)))


def test_cli_exits_1_with_one_line_when_the_api_never_answers(
    kafka_bootstrap: str, topic: str
) -> None:
    """--api-failure-rate 1: exit 1, a single clear stderr line, and an empty topic."""
    done = run_cli(
        "--bootstrap-servers",
        kafka_bootstrap,
        "--topic",
        topic,
        "--orders",
        "100",
        "--api-failure-rate",
        "1",
        "--retry-attempts",
        "2",
    )
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "failed on page 0 after 2 attempt(s)" in lines[0], done.stderr
    assert sum(len(p) for p in read_topic(kafka_bootstrap, topic).values()) == 0


def test_delivery_errors_are_counted_and_fail_the_run(
    kafka_bootstrap: str, kafka_admin: AdminClient
) -> None:
    """A topic that refuses every batch (max.message.bytes=300): exit 1, one line with the count."""
    topic = f"tiny-{uuid.uuid4().hex[:12]}"
    new = NewTopic(
        topic, num_partitions=3, replication_factor=1, config={"max.message.bytes": "300"}
    )
    kafka_admin.create_topics([new])[topic].result(timeout=30)
    try:
        done = run_cli(
            "--bootstrap-servers",
            kafka_bootstrap,
            "--topic",
            topic,
            "--orders",
            "200",
            "--api-failure-rate",
            "0",
            "--delivery-timeout",
            "20",
        )
    finally:
        kafka_admin.delete_topics([topic])[topic].result(timeout=30)
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "were not delivered" in lines[0], done.stderr
    assert "Message size too large" in lines[0]
    failures = [json.loads(line) for line in done.stdout.splitlines()]
    assert any(e["event"] == "delivery_failed" for e in failures)


def test_endless_trickle_stops_cleanly_on_sigterm(kafka_bootstrap: str, topic: str) -> None:
    """--orders 0 --rate 400 runs until SIGTERM, then flushes, reports and exits 0."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORDERS_SIM_")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "producer_sim",
            "publish",
            "--bootstrap-servers",
            kafka_bootstrap,
            "--topic",
            topic,
            "--orders",
            "0",
            "--rate",
            "400",
            "--seed",
            "21",
            "--api-failure-rate",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            consumer = Consumer({"bootstrap.servers": kafka_bootstrap, "group.id": "peek"})
            try:
                meta = consumer.list_topics(topic, timeout=5).topics[topic]
                total = sum(
                    consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5)[1]
                    for p in meta.partitions
                )
            finally:
                consumer.close()
            if total >= 200:
                break
            time.sleep(0.2)
        assert proc.poll() is None, proc.communicate()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "stopped by signal" in err and "Traceback" not in err
    in_topic = [r for part in read_topic(kafka_bootstrap, topic).values() for r in part]
    assert len(in_topic) >= 200
    endless = generate_records(Settings(seed=21, orders=0))
    prefix = [(r.key, r.value) for r, _ in zip(endless, range(len(in_topic)), strict=False)]
    assert by_key(in_topic) == by_key(prefix)
