"""The consumer's Prometheus metrics and health state (served by ``runtime.http``)."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

RATE_WINDOW_SECONDS = 60.0
THROUGHPUT_SAMPLES = 512
BATCH_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The consumer's metrics in a registry of its own, plus the health state behind the probes."""

    def __init__(self, liveness_timeout: float = 120.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.records = Counter(
            "pipeline_records", "Kafka records by outcome.", ["outcome"], registry=self.registry
        )
        self.rejected = Counter(
            "pipeline_rejected_records",
            "Rejected records by reason.",
            ["reason"],
            registry=self.registry,
        )
        self.fact_rows = Counter(
            "pipeline_fact_rows", "fact_sales rows written.", registry=self.registry
        )
        self.batches = Counter(
            "pipeline_batches", "Micro-batches committed.", registry=self.registry
        )
        self.batch_duration = Histogram(
            "pipeline_batch_duration_seconds",
            "Time to transform, write and commit a batch.",
            buckets=BATCH_SECONDS_BUCKETS,
            registry=self.registry,
        )
        self.batch_records = Histogram(
            "pipeline_batch_records",
            "Records per micro-batch.",
            buckets=(1, 10, 100, 1_000, 5_000, 10_000, 20_000, 50_000),
            registry=self.registry,
        )
        self.lag = Gauge(
            "pipeline_consumer_lag",
            "Records between the last commit and the partition end.",
            ["partition"],
            registry=self.registry,
        )
        self.last_commit = Gauge(
            "pipeline_last_commit_timestamp_seconds",
            "Unix time of the last offset commit.",
            registry=self.registry,
        )
        self.retries = Counter(
            "pipeline_retries",
            "Retried operations after a transient failure.",
            ["operation"],
            registry=self.registry,
        )
        self.deleted_before_read = Counter(
            "pipeline_records_deleted_before_read",
            "Records that retention deleted before the warehouse read them, by partition.",
            ["partition"],
            registry=self.registry,
        )
        self.assigned_partitions = Gauge(
            "pipeline_assigned_partitions",
            "Partitions assigned to this consumer.",
            registry=self.registry,
        )
        for outcome in ("loaded", "duplicate", "rejected"):
            self.records.labels(outcome)
        self._liveness_timeout = liveness_timeout
        self._last_tick = time.monotonic()
        self._ready = False
        self._writable = True
        self._lag_partitions: set[str] = set()
        self._records_seen = 0
        self._throughput: deque[tuple[float, int]] = deque(maxlen=THROUGHPUT_SAMPLES)
        self._throughput.append((time.monotonic(), 0))

    def tick(self) -> None:
        """The loop is alive."""
        self._last_tick = time.monotonic()

    def set_ready(self, ready: bool) -> None:
        """Partitions are assigned."""
        self._ready = ready

    def set_writable(self, writable: bool) -> None:
        """False while a DuckDB write is failing and being retried."""
        self._writable = writable

    @property
    def alive(self) -> bool:
        return time.monotonic() - self._last_tick < self._liveness_timeout

    @property
    def ready(self) -> bool:
        return self._ready and self._writable and self.alive

    def observe_batch(
        self,
        *,
        loaded: int,
        duplicates: int,
        rejected_by_reason: Mapping[str, int],
        fact_rows: int,
        records: int,
        seconds: float,
    ) -> None:
        self.records.labels("loaded").inc(loaded)
        self.records.labels("duplicate").inc(duplicates)
        self.records.labels("rejected").inc(sum(rejected_by_reason.values()))
        for reason, count in rejected_by_reason.items():
            self.rejected.labels(reason).inc(count)
        self.fact_rows.inc(fact_rows)
        self.batches.inc()
        self.batch_duration.observe(seconds)
        self.batch_records.observe(records)
        self._records_seen += records
        self._throughput.append((time.monotonic(), self._records_seen))

    def mark_commit(self) -> None:
        self.last_commit.set(time.time())

    def set_lag(self, lag: Mapping[int, int]) -> None:
        current = {str(p) for p in lag}
        for gone in self._lag_partitions - current:
            self.lag.remove(gone)
        for partition, value in lag.items():
            self.lag.labels(str(partition)).set(value)
        self._lag_partitions = current

    def snapshot(self) -> dict[str, Any]:
        """The figures the dashboard shows, as plain JSON values."""
        now = time.monotonic()
        window = [(t, n) for t, n in self._throughput if now - t <= RATE_WINDOW_SECONDS]
        rate = 0.0
        if len(window) >= 2 and window[-1][0] > window[0][0]:
            rate = (window[-1][1] - window[0][1]) / (window[-1][0] - window[0][0])
        return {
            "records": {o: _value(self.records, o) for o in ("loaded", "duplicate", "rejected")},
            "rejected_by_reason": _by_label(self.rejected),
            "lag": _by_label(self.lag),
            "batches": int(self.batches._value.get()),
            "fact_rows": int(self.fact_rows._value.get()),
            "records_per_second": round(rate, 1),
            "last_commit_timestamp": self.last_commit._value.get() or None,
            "ready": self.ready,
        }


def _value(counter: Counter, label: str) -> int:
    return int(counter.labels(label)._value.get())


def _by_label(metric: Counter | Gauge) -> dict[str, int]:
    return {
        next(iter(sample.labels.values())): int(sample.value)
        for family in metric.collect()
        for sample in family.samples
        if sample.labels and not sample.name.endswith("_created")
    }
