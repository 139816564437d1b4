"""The standard process metrics on the consumer's own registry (process_*, python_*), and the
parsing workers' memory and CPU, read from /proc by pid (issue 26, part 4)."""

from __future__ import annotations

import os
import resource
import sys
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from consumer.runtime.parsing import ProcessParser
from consumer.serving.metrics import Metrics, ParseWorkers
from tests.corpus import edge_records

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")
MEMORY = "pipeline_parse_workers_resident_memory_bytes"
CPU = "pipeline_parse_workers_cpu_seconds_total"
COUNT = "pipeline_parse_workers"


def scraped(metrics: Metrics) -> dict[str, float]:
    """The unlabelled samples of the registry, as /metrics serves them."""
    text = generate_latest(metrics.registry).decode()
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.labels
    }


def vm_rss(pid: int) -> int:
    """VmRSS of /proc/PID/status, in bytes: the kernel's own figure, read another way."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@linux_only
def test_the_process_collectors_describe_this_process() -> None:
    """CPU, memory, open files and start time of the consumer's own process, and python_info,
    on its private registry."""
    metrics = Metrics()
    found = scraped(metrics)
    for name in (
        "process_cpu_seconds_total",
        "process_resident_memory_bytes",
        "process_virtual_memory_bytes",
        "process_open_fds",
        "process_max_fds",
        "process_start_time_seconds",
    ):
        assert name in found, f"{name} missing from /metrics"
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    assert 0 < found["process_resident_memory_bytes"] <= peak
    assert found["process_max_fds"] == resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    text = generate_latest(metrics.registry).decode()
    (info,) = [f for f in text_string_to_metric_families(text) if f.name == "python_info"]
    assert info.samples[0].labels["version"] == ".".join(map(str, sys.version_info[:3]))


def test_each_metrics_object_has_the_collectors_of_its_own() -> None:
    """Two consumers' metrics in one process (as in the tests) do not share, or clash over, a
    registry: prometheus_client refuses the same collector names twice on one registry."""
    first, second = Metrics(), Metrics()
    assert first.registry is not second.registry
    assert "python_gc_collections_total" in {
        s.name for f in first.registry.collect() for s in f.samples
    }
    assert scraped(second)[COUNT] == 0


def test_without_workers_their_figures_are_zero() -> None:
    """--parse-workers 0 (or before the pool starts): the families are there, at 0."""
    found = scraped(Metrics())
    assert (found[MEMORY], found[CPU], found[COUNT]) == (0, 0, 0)


def stat_line(pid: int, name: str, utime: int, stime: int, rss_pages: int) -> str:
    """A /proc/PID/stat line with the fields of proc(5) by their 1-based number; the others
    (children's CPU, virtual size, ...) are set far from the wanted ones."""
    fields = {n: str(10_000_000 + n) for n in range(1, 53)}
    fields.update({1: str(pid), 2: f"({name})", 3: "S", 14: str(utime), 15: str(stime)})
    fields[24] = str(rss_pages)
    return " ".join(fields[n] for n in range(1, 53)) + "\n"


def test_worker_memory_and_cpu_are_summed_from_proc(tmp_path: Path) -> None:
    """Two workers' RSS and CPU add up; a worker that exited since it was listed is skipped;
    a process name with spaces and parentheses does not shift the fields."""
    workers = ParseWorkers(CollectorRegistry(), proc=str(tmp_path))
    for pid, name, utime, stime, rss in ((11, "python3", 250, 50, 1000), (12, "a) (b", 7, 3, 500)):
        (tmp_path / str(pid)).mkdir()
        (tmp_path / str(pid) / "stat").write_text(stat_line(pid, name, utime, stime, rss))
    workers.watch(lambda: [11, 12, 13])  # 13 has no /proc entry
    values = {s.name: s.value for family in workers.collect() for s in family.samples}
    assert values[MEMORY] == 1500 * PAGE
    assert values[CPU] == pytest.approx(310 / TICKS)
    assert values[COUNT] == 2


@linux_only
def test_a_real_parsing_worker_is_counted_until_the_pool_closes() -> None:
    """Through ProcessParser.worker_pids, as the consumer wires it: the worker's RSS as the
    kernel reports it, CPU that grows as it parses, and nothing once the pool is shut."""
    metrics = Metrics()
    parser = ProcessParser(1)
    try:
        parser.submit([]).result()  # the worker has started and imported what it parses with
        metrics.parse_workers.watch(parser.worker_pids)
        (pid,) = parser.worker_pids()
        before = scraped(metrics)
        assert before[COUNT] == 1
        assert before[MEMORY] == pytest.approx(vm_rss(pid), rel=0.1)
        assert before[MEMORY] > 10 * 2**20  # an interpreter with Polars imported, not a page
        values = [value for _key, value in edge_records()] * 200
        parser.submit(values).result()
        assert scraped(metrics)[CPU] > before[CPU]
    finally:
        parser.close()
    after = scraped(metrics)
    assert (after[COUNT], after[MEMORY]) == (0, 0)
