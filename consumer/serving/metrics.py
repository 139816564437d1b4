"""The consumer's Prometheus metrics and health state (served by ``serving.http``)."""

from __future__ import annotations

import os
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

RATE_WINDOW_SECONDS = 60.0
THROUGHPUT_SAMPLES = 512
BATCH_SECONDS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    """The consumer's metrics in a registry of its own, plus the health state behind the probes."""

    def __init__(self, liveness_timeout: float = 120.0) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # The collectors prometheus_client puts on its global registry (process_*, python_*),
        # on this private one; the parsing workers' share is ``ParseWorkers`` below.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.parse_workers = ParseWorkers(registry=self.registry)
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
        self.lag_seconds = LagSeconds(self.registry)
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
        self.reference_versions = Counter(
            "pipeline_reference_versions",
            "Versions of users and products and exchange rates stored (CSV files and change "
            "topics).",
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
            "lag_seconds": self.lag_seconds.by_partition(),
            "batches": int(self.batches._value.get()),
            "fact_rows": int(self.fact_rows._value.get()),
            "records_per_second": round(rate, 1),
            "last_commit_timestamp": self.last_commit._value.get() or None,
            "ready": self.ready,
        }


class LagSeconds:
    """``pipeline_consumer_lag_seconds{partition}``, computed at each scrape from the engine's
    time lag (``runtime.timelag``): it grows while a write hangs and the loop waits for it."""

    NAME = "pipeline_consumer_lag_seconds"
    HELP = "Age of the oldest record read and not yet committed, by partition (0 when none)."

    def __init__(self, registry: CollectorRegistry) -> None:
        self._ages: Callable[[], Mapping[int, float]] = dict
        registry.register(self)

    def watch(self, ages: Callable[[], Mapping[int, float]]) -> None:
        self._ages = ages

    def by_partition(self) -> dict[str, float]:
        return {str(p): round(age, 3) for p, age in sorted(self._ages().items())}

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(self.NAME, self.HELP, labels=["partition"])

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.NAME, self.HELP, labels=["partition"])
        for partition, age in self.by_partition().items():
            family.add_metric([partition], age)
        yield family


class ParseWorkers:
    """The parsing worker processes' resident memory and CPU time, summed over the live ones
    and read from /proc at each scrape: ``process_*`` describes the consumer's own process
    only. Resident memory is the kernel's RSS, as ``process_resident_memory_bytes`` counts it,
    so the two add up to the tree's RSS (pages of the shared libraries counted once a process).
    """

    MEMORY = "pipeline_parse_workers_resident_memory_bytes"
    CPU = "pipeline_parse_workers_cpu_seconds"
    COUNT = "pipeline_parse_workers"

    def __init__(self, registry: CollectorRegistry, proc: str = "/proc") -> None:
        self._pids: Callable[[], Iterable[int]] = tuple
        self._proc = Path(proc)
        self._page = os.sysconf("SC_PAGE_SIZE")
        self._ticks = os.sysconf("SC_CLK_TCK")
        registry.register(self)

    def watch(self, pids: Callable[[], Iterable[int]]) -> None:
        """Count the processes ``pids()`` names (called at each scrape) from now on."""
        self._pids = pids

    def describe(self) -> Iterator[Metric]:
        yield from self._families()

    def collect(self) -> Iterator[Metric]:
        rss = cpu = 0.0
        live = 0
        for pid in self._pids():
            try:
                stat = (self._proc / str(pid) / "stat").read_bytes()
            except OSError:  # exited since it was listed
                continue
            fields = stat.rsplit(b")", 1)[-1].split()  # the name may hold spaces and ")"
            # proc(5): utime and stime are fields 14 and 15, rss field 24 (1-based, from pid)
            cpu += (int(fields[11]) + int(fields[12])) / self._ticks
            rss += int(fields[21]) * self._page
            live += 1
        yield from self._families(rss, cpu, live)

    def _families(self, rss: float = 0, cpu: float = 0, live: float = 0) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            self.MEMORY, "Resident memory of the parsing worker processes, summed.", value=rss
        )
        yield CounterMetricFamily(
            self.CPU, "User and system CPU time of the parsing worker processes, summed.", cpu
        )
        yield GaugeMetricFamily(self.COUNT, "Parsing worker processes alive.", value=live)


def _value(counter: Counter, label: str) -> int:
    return int(counter.labels(label)._value.get())


def _by_label(metric: Counter | Gauge) -> dict[str, int]:
    return {
        next(iter(sample.labels.values())): int(sample.value)
        for family in metric.collect()
        for sample in family.samples
        if sample.labels and not sample.name.endswith("_created")
    }
