"""interface §7 against a real consumer process: /metrics, /healthz, /readyz, JSON logs, SIGTERM.

The consumer runs as a subprocess with ``--metrics-port``; its stdout and stderr go to separate
files so that "stdout is JSON lines" is checked on stdout alone.
"""

from __future__ import annotations

import contextlib
import json
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]
from prometheus_client.parser import text_string_to_metric_families

from tests import promtool
from tests.corpus import edge_records
from tests.harness import ROOT, consumer_command, consumer_env, publish
from tests.oracle import compute_expected, read_topic
from tools.localkafka import descendant_pids, free_port

pytestmark = pytest.mark.integration

T = TypeVar("T")
WAIT_SECONDS = 45.0

#: interface §7: the metric families /metrics must expose, by their exposition names.
CONTRACT_SAMPLES = {
    "pipeline_records_total",
    "pipeline_fact_rows_total",
    "pipeline_batches_total",
    "pipeline_batch_duration_seconds_bucket",
    "pipeline_batch_duration_seconds_count",
    "pipeline_batch_duration_seconds_sum",
    "pipeline_consumer_lag",
    "pipeline_last_commit_timestamp_seconds",
}
#: A librdkafka setting, passed with --kafka-option, so that a topic created after the consumer
#: subscribed is noticed within a second rather than after the default five minutes.
FAST_METADATA = "topic.metadata.refresh.interval.ms=500"


@dataclass
class RunningConsumer:
    proc: subprocess.Popen[bytes]
    port: int
    stdout: Path
    stderr: Path

    def get(self, path: str) -> int | None:
        """HTTP status of GET path, or None while nothing listens."""
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5) as r:
                status: int = r.status
                return status
        except urllib.error.HTTPError as error:
            return error.code
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            return None

    def metrics_text(self) -> str:
        """The body of /metrics."""
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics", timeout=5) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain")
            text: str = r.read().decode()
            return text

    def scrape(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        """Every sample of /metrics, keyed by (name, labels)."""
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(self.metrics_text())
            for sample in family.samples
        }

    def events(self) -> list[dict[str, Any]]:
        """The complete log lines so far (a line still being written is left out)."""
        complete = self.stdout.read_text().split("\n")[:-1]
        return [json.loads(line) for line in complete if line.strip()]

    def diagnostics(self) -> str:
        return (
            f"stdout tail:\n{self.stdout.read_text()[-3000:]}\n"
            f"stderr tail:\n{self.stderr.read_text()[-3000:]}"
        )


def wait_for(what: str, probe: Callable[[], T | None], consumer: RunningConsumer) -> T:
    """Poll ``probe`` until it returns something truthy; fail with the consumer's output."""
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        if consumer.proc.poll() is not None:
            pytest.fail(f"consumer exited ({consumer.proc.returncode}) while waiting for {what}\n"
                        + consumer.diagnostics())  # fmt: skip
        value = probe()
        if value:
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}\n" + consumer.diagnostics())


@contextlib.contextmanager
def running_consumer(
    bootstrap: str,
    topic: str,
    group: str,
    db: Path,
    workdir: Path,
    *,
    name: str = "consumer",
    env: dict[str, str] | None = None,
) -> Iterator[RunningConsumer]:
    port = free_port()
    stdout, stderr = workdir / f"{name}.stdout", workdir / f"{name}.stderr"
    command = consumer_command(bootstrap, topic, group, db, "--metrics-port", str(port))
    command += ["--kafka-option", FAST_METADATA]
    with stdout.open("wb") as out, stderr.open("wb") as err:
        proc = subprocess.Popen(
            command, stdout=out, stderr=err, env=env or consumer_env(), cwd=ROOT
        )
    consumer = RunningConsumer(proc, port, stdout, stderr)
    try:
        yield consumer
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


@contextlib.contextmanager
def topics_deleted_afterwards(admin: AdminClient, *names: str) -> Iterator[None]:
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            for future in admin.delete_topics(list(names)).values():
                future.result(timeout=30)


def create_topic(admin: AdminClient, name: str, partitions: int) -> None:
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[
        name
    ].result(timeout=30)


def by_label(
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, label: str
) -> dict[str, float]:
    return {
        dict(labels)[label]: value
        for (sample, labels), value in samples.items()
        if sample == name and label in dict(labels)
    }


def value(samples: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str) -> float:
    return samples[(name, frozenset())]


def test_metrics_health_and_logs_of_a_real_run_match_what_was_consumed(
    kafka_bootstrap: str, kafka_admin: AdminClient, group_id: str, db_path: Path, tmp_path: Path
) -> None:
    """Probes, /metrics counters and JSON logs match the oracle; SIGTERM exits 0."""
    topic = f"metrics-{uuid.uuid4().hex[:12]}"
    with (
        topics_deleted_afterwards(kafka_admin, topic, f"{topic}.dlq"),
        running_consumer(kafka_bootstrap, topic, group_id, db_path, tmp_path) as consumer,
    ):
        # The topic does not exist yet: the loop runs (live) but owns no partition (not ready).
        wait_for("/healthz", lambda: consumer.get("/healthz") == 200, consumer)
        wait_for(
            "consumer_started",
            lambda: any(e["event"] == "consumer_started" for e in consumer.events()),
            consumer,
        )
        assert consumer.get("/readyz") == 503, "ready although no partition can be assigned"
        assert value(consumer.scrape(), "pipeline_assigned_partitions") == 0

        create_topic(kafka_admin, topic, partitions=3)
        published = publish(kafka_bootstrap, topic, edge_records())
        wait_for("/readyz 200", lambda: consumer.get("/readyz") == 200, consumer)

        expected = compute_expected(read_topic(kafka_bootstrap, topic))
        assert sum(expected.outcome_counts.values()) == published

        def settled() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            samples = consumer.scrape()
            done = sum(by_label(samples, "pipeline_records_total", "outcome").values())
            lag = by_label(samples, "pipeline_consumer_lag", "partition")
            return samples if done >= published and lag and not any(lag.values()) else None

        samples = wait_for("every record counted and lag 0", settled, consumer)
        assert consumer.get("/healthz") == 200
        assert consumer.get("/readyz") == 200

        consumer.proc.send_signal(signal.SIGTERM)
        returncode = consumer.proc.wait(60)
        assert returncode == 0, consumer.diagnostics()

    names = {name for name, _ in samples}
    assert names >= CONTRACT_SAMPLES, f"missing from /metrics: {CONTRACT_SAMPLES - names}"
    assert by_label(samples, "pipeline_records_total", "outcome") == expected.outcome_counts
    assert value(samples, "pipeline_fact_rows_total") == len(expected.lines)
    rejected_by_reason: dict[str, int] = {}
    for reason in expected.rejected.values():
        rejected_by_reason[reason] = rejected_by_reason.get(reason, 0) + 1
    assert by_label(samples, "pipeline_rejected_records_total", "reason") == rejected_by_reason
    assert set(by_label(samples, "pipeline_consumer_lag", "partition")) <= {"0", "1", "2"}
    assert value(samples, "pipeline_assigned_partitions") == 3
    batches = value(samples, "pipeline_batches_total")
    assert batches >= 1
    assert value(samples, "pipeline_batch_duration_seconds_count") == batches
    assert value(samples, "pipeline_batch_records_sum") == published
    assert value(samples, "pipeline_last_commit_timestamp_seconds") > 0

    # Logs: stdout is JSON lines, each with event, level and timestamp.
    lines = [line for line in consumer.stdout.read_text().splitlines() if line.strip()]
    assert lines, "no log lines on stdout"
    events = []
    for line in lines:
        try:
            event = json.loads(line)
        except json.JSONDecodeError:
            pytest.fail(f"stdout line is not JSON: {line!r}")
        assert isinstance(event, dict), line
        assert {"event", "level", "timestamp"} <= event.keys(), line
        events.append(event)
    summaries = [e for e in events if e["event"] == "batch_committed"]
    assert len(summaries) == batches
    for summary in summaries:
        assert summary["topic"] == topic
        assert isinstance(summary["batch_id"], int)
        assert isinstance(summary["duration_ms"], int | float)
        assert summary["records"] == summary["loaded"] + summary["duplicates"] + summary["rejected"]
    assert sum(s["records"] for s in summaries) == published
    assert sum(s["loaded"] for s in summaries) == expected.outcome_counts["loaded"]
    assert sum(s["fact_rows"] for s in summaries) == len(expected.lines)
    assert events[-1]["event"] == "consumer_stopped"


def test_readyz_is_503_for_a_group_member_without_partitions(
    kafka_bootstrap: str, kafka_admin: AdminClient, group_id: str, tmp_path: Path
) -> None:
    """Of two consumers sharing one partition, only the one that owns it answers /readyz 200."""
    topic = f"metrics-{uuid.uuid4().hex[:12]}"
    create_topic(kafka_admin, topic, partitions=1)
    with (
        topics_deleted_afterwards(kafka_admin, topic, f"{topic}.dlq"),
        running_consumer(
            kafka_bootstrap, topic, group_id, tmp_path / "a.duckdb", tmp_path, name="a"
        ) as first,
    ):
        wait_for("first consumer ready", lambda: first.get("/readyz") == 200, first)
        with running_consumer(
            kafka_bootstrap, topic, group_id, tmp_path / "b.duckdb", tmp_path, name="b"
        ) as second:
            wait_for(
                "the second consumer's first assignment",
                lambda: any(e["event"] == "partitions_assigned" for e in second.events()),
                second,
            )
            owners = {
                name: value(c.scrape(), "pipeline_assigned_partitions")
                for name, c in (("a", first), ("b", second))
            }
            ready = {name: c.get("/readyz") for name, c in (("a", first), ("b", second))}
            if sorted(owners.values()) != [0, 1]:
                pytest.fail(f"expected one owner of the one partition, got {owners}")
            assert ready == {name: 200 if owned else 503 for name, owned in owners.items()}


def vm_rss(pid: int) -> int:
    """VmRSS of /proc/PID/status in bytes: the kernel's figure, read apart from the consumer."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_promtool_accepts_the_live_metrics_of_a_running_consumer(
    kafka_bootstrap: str, kafka_admin: AdminClient, group_id: str, db_path: Path, tmp_path: Path
) -> None:
    """`promtool check metrics` on the /metrics of a real consumer that has loaded records:
    Prometheus's own parser and linter accept it. Its process_* figures describe the
    consumer's process, and the pipeline_parse_workers_* ones its one parsing worker."""
    promtool.promtool()  # before starting anything
    topic = f"metrics-{uuid.uuid4().hex[:12]}"
    create_topic(kafka_admin, topic, partitions=3)
    with (
        topics_deleted_afterwards(kafka_admin, topic, f"{topic}.dlq"),
        running_consumer(kafka_bootstrap, topic, group_id, db_path, tmp_path) as consumer,
    ):
        published = publish(kafka_bootstrap, topic, edge_records())
        wait_for("/healthz", lambda: consumer.get("/healthz") == 200, consumer)

        def settled() -> dict[tuple[str, frozenset[tuple[str, str]]], float] | None:
            samples = consumer.scrape()
            done = sum(by_label(samples, "pipeline_records_total", "outcome").values())
            return samples if done >= published else None

        wait_for("every record counted", settled, consumer)
        text = consumer.metrics_text()
        result = promtool.run("check", "metrics", stdin=text)
        assert result.returncode == 0, result.stdout + result.stderr
        assert not (result.stdout + result.stderr).strip(), result.stdout + result.stderr

        samples = consumer.scrape()
        (worker,) = [
            pid
            for pid in descendant_pids(consumer.proc.pid)[1:]
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
        ]  # the resource tracker is a child too
        rss = value(samples, "process_resident_memory_bytes")
        assert rss == pytest.approx(vm_rss(consumer.proc.pid), rel=0.2)
        assert value(samples, "process_cpu_seconds_total") > 0
        assert value(samples, "process_open_fds") > 0
        assert value(samples, "pipeline_parse_workers") == 1
        workers_rss = value(samples, "pipeline_parse_workers_resident_memory_bytes")
        assert workers_rss == pytest.approx(vm_rss(worker), rel=0.2)
        assert value(samples, "pipeline_parse_workers_cpu_seconds_total") > 0


def test_the_time_lag_grows_while_a_write_hangs_and_returns_to_0_once_it_is_released(
    kafka_bootstrap: str, kafka_admin: AdminClient, group_id: str, db_path: Path, tmp_path: Path
) -> None:
    """CONTRACT §7 pipeline_consumer_lag_seconds: the first batch's write is held (the fault
    hook ``hold_db_write``); the age of its oldest record grows with the wall clock, scrape
    after scrape, though the loop waits for the write; released, every partition goes to 0."""
    topic = f"timelag-{uuid.uuid4().hex[:12]}"
    release = tmp_path / "release"
    env = consumer_env("hold_db_write@1", ORDERS_FAULTS_RELEASE=str(release))
    create_topic(kafka_admin, topic, partitions=3)
    with (
        topics_deleted_afterwards(kafka_admin, topic, f"{topic}.dlq"),
        running_consumer(kafka_bootstrap, topic, group_id, db_path, tmp_path, env=env) as consumer,
    ):
        wait_for("/readyz 200", lambda: consumer.get("/readyz") == 200, consumer)
        publish(kafka_bootstrap, topic, edge_records())

        def ages() -> dict[str, float]:
            return by_label(consumer.scrape(), "pipeline_consumer_lag_seconds", "partition")

        first = wait_for("a record waiting", lambda: ages() if max(ages().values()) > 0 else None,
                         consumer)  # fmt: skip
        started = time.monotonic()
        time.sleep(2.0)
        later = ages()
        waited = time.monotonic() - started
        grown = [p for p, age in first.items() if age > 0]
        # The same records still wait: their age grew by the time that passed (less the
        # scrapes' own rounding), not by less.
        assert grown and all(later[p] - first[p] >= waited - 0.1 for p in grown), (first, later)
        assert not any(e["event"] == "batch_committed" for e in consumer.events())

        release.touch()
        wait_for(
            "the time lag back to 0",
            lambda: all(age == 0 for age in ages().values()) and ages(),
            consumer,
        )
        assert any(e["event"] == "batch_committed" for e in consumer.events())
