"""The guarantee at its edges, with a real broker: the ledger as the only authority (a new
file under an old group, a re-created topic), one writer per file, clean errors, and lag from
the moment of assignment."""

from __future__ import annotations

import re
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from producer_sim.config import Settings as SimSettings
from producer_sim.events import generate_records
from tests.harness import (
    ROOT,
    assert_warehouse_matches,
    consumer_env,
    log_events,
    publish,
    run_consumer,
    start_consumer,
    table_counts,
)
from tests.oracle import compute_expected, read_topic
from tools.localkafka import free_port

pytestmark = pytest.mark.integration
SHORT_SESSION = ("--kafka-option", "session.timeout.ms=6000")


def stream(orders: int, seed: int) -> list[tuple[bytes | None, bytes | None]]:
    return [(r.key, r.value) for r in generate_records(SimSettings(seed=seed, orders=orders))]


def test_a_new_file_under_an_old_group_gets_the_whole_topic(
    kafka_bootstrap: str, topic: str, group_id: str, tmp_path: Path
) -> None:
    """The group's committed offsets do not count: a second, empty file read under the same
    group receives every record, as the oracle computes them."""
    publish(kafka_bootstrap, topic, stream(800, seed=11))
    # The first (static) member stays in the group until its session times out: a short one,
    # rather than the default 45 s the second would otherwise wait out.
    first = run_consumer(kafka_bootstrap, topic, group_id, tmp_path / "a.duckdb", *SHORT_SESSION)
    assert first.returncode == 0, first.stderr
    second = run_consumer(kafka_bootstrap, topic, group_id, tmp_path / "b.duckdb", *SHORT_SESSION)
    assert second.returncode == 0, second.stderr
    expected = compute_expected(read_topic(kafka_bootstrap, topic))
    assert_warehouse_matches(tmp_path / "b.duckdb", expected, topic)


def test_a_topic_recreated_under_the_same_name_is_read_from_its_start(
    kafka_bootstrap: str, kafka_admin: AdminClient, topic: str, group_id: str, tmp_path: Path
) -> None:
    """Deleted and re-created, the topic has another id: all of its records are loaded,
    although the ledger of the old one stood further on."""
    db = tmp_path / "w.duckdb"
    publish(kafka_bootstrap, topic, stream(900, seed=12))
    assert run_consumer(kafka_bootstrap, topic, group_id, db).returncode == 0
    kafka_admin.delete_topics([topic])[topic].result(timeout=30)
    for _ in range(60):  # deletion completes asynchronously
        if topic not in kafka_admin.list_topics(timeout=10).topics:
            break
        time.sleep(0.5)
    new = NewTopic(topic, num_partitions=3, replication_factor=1)
    for _ in range(60):
        try:
            kafka_admin.create_topics([new])[topic].result(timeout=30)
            break
        except Exception:  # "marked for deletion" until the broker finishes
            time.sleep(0.5)
    smaller = stream(300, seed=13)
    publish(kafka_bootstrap, topic, smaller)
    again = run_consumer(kafka_bootstrap, topic, group_id, db)
    assert again.returncode == 0, again.stderr
    assigned = [e for e in log_events(again.stdout) if e["event"] == "partitions_assigned"]
    assert set(assigned[0]["started_from"].values()) == {"recreated"}
    loaded_new = subprocess.run(
        [sys.executable, "-m", "consumer", "sql",
         "SELECT count(DISTINCT order_id) FROM dim_order WHERE order_id LIKE 'o-s13-%'",
         "--db", str(db), "--format", "csv"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    ).stdout.splitlines()[1]  # fmt: skip
    assert int(loaded_new) == 300


def test_a_second_member_writing_another_file_is_refused_and_the_first_stays_complete(
    kafka_bootstrap: str, topic: str, group_id: str, tmp_path: Path
) -> None:
    """One writer per file: the later member exits 1 with one line naming the conflict; the
    first one holds the whole topic; run alone afterwards, the second file is complete too."""
    publish(kafka_bootstrap, topic, stream(1200, seed=14))
    first_log = tmp_path / "first.log"
    first = start_consumer(
        kafka_bootstrap, topic, group_id, tmp_path / "a.duckdb", *SHORT_SESSION, log=first_log
    )
    try:
        deadline = time.monotonic() + 60
        while "batch_committed" not in first_log.read_text() and time.monotonic() < deadline:
            time.sleep(0.3)
        second = subprocess.run(
            [*consumer_argv(kafka_bootstrap, topic, group_id, tmp_path / "b.duckdb")],
            capture_output=True, text=True, timeout=120, env=consumer_env(), cwd=ROOT,
            check=False,
        )  # fmt: skip
        assert second.returncode == 1
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and "is shared with" in lines[0] and group_id in lines[0]
        assert table_counts(tmp_path / "b.duckdb", ["load_batches"]) == {"load_batches": 0}
        publish(kafka_bootstrap, topic, stream(1300, seed=14)[1200:])  # more, for the first
        expected = compute_expected(read_topic(kafka_bootstrap, topic))
        wait_for_orders(tmp_path / "a.duckdb", len(expected.orders))  # read while it runs
    finally:
        first.terminate()
        assert first.wait(60) == 0
    assert_warehouse_matches(tmp_path / "a.duckdb", expected, topic)
    alone = run_consumer(kafka_bootstrap, topic, f"{group_id}-alone", tmp_path / "b.duckdb")
    assert alone.returncode == 0, alone.stderr
    assert_warehouse_matches(tmp_path / "b.duckdb", expected, topic)


def wait_for_orders(db: Path, count: int, timeout: float = 90) -> None:
    """Until the running consumer's file holds ``count`` orders, asked through its channel."""
    deadline, loaded = time.monotonic() + timeout, -1
    while loaded < count and time.monotonic() < deadline:
        proc = subprocess.run(
            [sys.executable, "-m", "consumer", "sql", "SELECT count(*) AS n FROM dim_order",
             "--db", str(db), "--format", "csv"],
            capture_output=True, text=True, cwd=ROOT, check=False,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        loaded = int(proc.stdout.splitlines()[1])
        time.sleep(0.5)
    assert loaded == count


def consumer_argv(bootstrap: str, topic: str, group: str, db: Path) -> list[str]:
    return [
        sys.executable, "-m", "consumer", "run", "--bootstrap-servers", bootstrap, "--topic",
        topic, "--group-id", group, "--db", str(db), "--log-format", "json",
        "--until-idle", "30", *SHORT_SESSION,
    ]  # fmt: skip


def test_an_unreachable_broker_is_one_line_on_stderr_and_no_client_logs(tmp_path: Path) -> None:
    """librdkafka's own lines (``%3|...|FAIL|``) go to the JSON log, never to stderr."""
    proc = subprocess.run(
        [sys.executable, "-m", "consumer", "run", "--bootstrap-servers", "127.0.0.1:9",
         "--topic", "t", "--group-id", "g", "--db", str(tmp_path / "w.duckdb"),
         "--startup-timeout", "3", "--log-format", "json"],
        capture_output=True, text=True, timeout=60, env=consumer_env(), cwd=ROOT, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1 and "cannot reach Kafka" in proc.stderr
    assert not re.search(r"%\d\|", proc.stderr)
    log_events(proc.stdout)  # every stdout line is JSON


def test_lag_is_published_as_soon_as_partitions_are_assigned(
    kafka_bootstrap: str, topic: str, group_id: str, tmp_path: Path
) -> None:
    """With a first batch that waits long for more records, /metrics already shows the lag
    of every partition: the records not yet in the warehouse."""
    records = stream(500, seed=15)
    publish(kafka_bootstrap, topic, records)
    unused_port = free_port()
    proc = start_consumer(
        kafka_bootstrap, topic, group_id, tmp_path / "w.duckdb",
        "--metrics-port", str(unused_port), "--batch-max-seconds", "60",
        "--batch-max-records", "1000000",
    )  # fmt: skip
    try:
        lag: dict[str, float] = {}
        deadline = time.monotonic() + 60
        while sum(lag.values()) < len(records) and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                body = urllib.request.urlopen(f"http://127.0.0.1:{unused_port}/metrics").read()
            except OSError:
                continue
            lag = {
                m[0]: float(m[1])
                for m in re.findall(
                    r'^pipeline_consumer_lag\{partition="(\d+)"\} (\S+)$', body.decode(), re.M
                )
            }
        assert set(lag) == {"0", "1", "2"}
        assert sum(lag.values()) == len(records)
        assert re.search(r"^pipeline_batches_total 0\.0$", body.decode(), re.M)
    finally:
        proc.terminate()
        proc.wait(60)
