"""The three consumers measured side by side on the same topic.

- bare: a confluent-kafka consumer that reads every record and does nothing else, the ceiling
  for any Python consumer on this machine;
- pipeline: ``orders-consumer run`` as a real process with every guarantee on, a fresh group and
  a fresh database, timed from its first offset commit to its last;
- naive: json.loads and row-by-row INSERTs with a synchronous commit per record.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from subprocess import STDOUT, Popen

import duckdb
from confluent_kafka import Consumer, TopicPartition

from tools.localkafka import descendant_pids

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Measurement:
    records: int
    seconds: float
    fact_rows: int = 0
    peak_rss_mib: float = 0.0  # the consumer and its parsing workers: peak of their summed PSS
    cpu_seconds: float = 0.0  # user + system CPU of the whole run (the consumer and workers)
    main_peak_rss_mib: float = 0.0  # the consumer process alone (its ru_maxrss)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0

    @property
    def fact_rate(self) -> float:
        return self.fact_rows / self.seconds if self.seconds else 0.0


def topic_size(bootstrap: str, topic: str) -> int:
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"bench-{uuid.uuid4()}"})
    try:
        partitions = consumer.list_topics(topic, timeout=30).topics[topic].partitions
        total = 0
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=30)
            total += high - low
        return total
    finally:
        consumer.close()


def reader(bootstrap: str, role: str) -> Consumer:
    """A plain consumer in a fresh group, reading from the start, committing nothing itself."""
    return Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"bench-{role}-{uuid.uuid4()}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )


def start_pipeline(bootstrap: str, topic: str, db: Path, log: Path, *extra: str) -> Popen[bytes]:
    """``orders-consumer run`` as a process of its own (JSON logs to ``log``), a fresh group."""
    command = [
        sys.executable,
        "-m",
        "consumer",
        "run",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
        "--group-id",
        f"bench-pipeline-{uuid.uuid4()}",
        "--db",
        str(db),
        "--log-format",
        "json",
        "--no-dlq",
        *extra,
    ]
    with log.open("wb") as out:
        return Popen(
            command,
            stdout=out,
            stderr=STDOUT,
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


class TreeMemory:
    """Samples the summed PSS of a process and its descendants every 0.2 s: the consumer's
    parsing workers are processes of their own, and PSS shares the pages of the libraries
    they all map between them instead of counting them once per process."""

    def __init__(self, pid: int) -> None:
        self.peak_kib = 0
        self._pid = pid
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.2):
            total = sum(_pss_kib(p) for p in descendant_pids(self._pid))
            self.peak_kib = max(self.peak_kib, total)

    def stop(self) -> float:
        """The peak, in MiB."""
        self._done.set()
        self._thread.join()
        return self.peak_kib / 1024


def bare(bootstrap: str, topic: str, expected: int) -> Measurement:
    """Read every record with a plain consumer; timed from the first record to the last."""
    consumer = reader(bootstrap, "bare")
    consumer.subscribe([topic])
    count, started = 0, 0.0
    while not started:
        # The clock starts at the first record, as the pipeline's starts at its first commit.
        first = consumer.consume(1, 1.0)
        if first and first[0].error() is None:
            started = time.perf_counter()
            count = 1
    while count < expected:
        # Never ask for more than remains: consume() would wait out its timeout for them.
        messages = consumer.consume(min(10_000, expected - count), 0.5)
        for message in messages:
            if message.error() is None:
                message.value()
                count += 1
    seconds = time.perf_counter() - started
    consumer.close()
    return Measurement(count, seconds)


def pipeline(bootstrap: str, topic: str, *extra: str, workdir: Path | None = None) -> Measurement:
    """Run the real consumer to the end of the topic; time it from first to last commit."""
    with tempfile.TemporaryDirectory(dir=workdir) as tmp:
        db = Path(tmp) / "bench.duckdb"
        log = Path(tmp) / "consumer.log"
        proc = start_pipeline(bootstrap, topic, db, log, "--until-idle", "3", *extra)
        memory = TreeMemory(proc.pid)
        # The rusage of wait4 includes the workers, reaped by the consumer before it exits.
        _, status, usage = os.wait4(proc.pid, 0)
        peak_mib = memory.stop()
        if os.waitstatus_to_exitcode(status) != 0:
            raise RuntimeError(f"consumer failed:\n{log.read_text()[-3000:]}")
        commits = [
            e
            for e in map(json.loads, log.read_text().splitlines())
            if e.get("event") == "batch_committed"
        ]
        with duckdb.connect(str(db), read_only=True) as con:
            row = con.execute("SELECT count(*) FROM fact_sales").fetchone()
            fact_rows = int(row[0]) if row else 0
    if len(commits) < 2:
        raise RuntimeError("too few batches to time; use a larger topic")
    first, last = (_when(commits[0]), _when(commits[-1]))
    records = sum(e["records"] for e in commits[1:])
    facts = sum(e["fact_rows"] for e in commits[1:])
    assert sum(e["fact_rows"] for e in commits) == fact_rows
    cpu = usage.ru_utime + usage.ru_stime
    return Measurement(records, (last - first), facts, peak_mib, cpu, usage.ru_maxrss / 1024)


def _when(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def naive(bootstrap: str, topic: str, limit: int) -> Measurement:
    """The textbook per-message consumer, with commit-after-write, on the first records."""
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "naive.duckdb"))
        con.execute(
            "CREATE TABLE orders (order_id VARCHAR, user_id VARCHAR, amount DOUBLE, "
            "created_at VARCHAR)"
        )
        con.execute(
            "CREATE TABLE lines (order_id VARCHAR, sku VARCHAR, quantity BIGINT, price DOUBLE)"
        )
        consumer = reader(bootstrap, "naive")
        consumer.subscribe([topic])
        count, started, facts = 0, 0.0, 0
        while count < limit:
            message = consumer.poll(1.0)
            if message is None or message.error() is not None:
                continue
            if not started:
                started = time.perf_counter()
            count += 1
            try:
                doc = json.loads(message.value() or b"")
                items = doc.get("items") or []
                con.execute(
                    "INSERT INTO orders VALUES (?, ?, ?, ?)",
                    [
                        doc.get("order_id"),
                        doc.get("user_id"),
                        doc.get("amount"),
                        doc.get("created_at"),
                    ],
                )
                for item in items:
                    con.execute(
                        "INSERT INTO lines VALUES (?, ?, ?, ?)",
                        [
                            doc.get("order_id"),
                            item.get("sku"),
                            item.get("quantity"),
                            item.get("price"),
                        ],
                    )
                    facts += 1
            except (ValueError, AttributeError, TypeError, duckdb.Error):
                pass
            consumer.commit(message=message, asynchronous=False)
        seconds = time.perf_counter() - started
        consumer.close()
        con.close()
    return Measurement(count, seconds, facts)
