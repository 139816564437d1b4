"""A whole run: reference CSVs, the paged API, pacing, publishing, and the final report."""

from __future__ import annotations

import base64
import json
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import IO, Protocol, TextIO

from consumer.logs import get_logger
from producer_sim.api import (
    ApiExhaustedError,
    FaultPlan,
    OrdersApi,
    RandomFaults,
    fetch_pages,
    run_ahead,
)
from producer_sim.config import ALL_KINDS, BASE_KINDS, Settings
from producer_sim.events import SimRecord, generate_records
from producer_sim.pacing import Pacer, Progress
from producer_sim.publisher import KafkaSink
from producer_sim.reference import Reference, generate_reference, write_reference

READ_AHEAD_RECORDS = 50_000  # per buffer, about a second of work: hides most backoff waits


class Sink(Protocol):
    failed: int
    first_error: str | None

    def send(self, record: SimRecord) -> None: ...
    def poll(self) -> None: ...
    def close(self) -> int: ...


@dataclass
class RunReport:
    topic: str
    target_orders: int
    by_kind: Counter[str] = field(default_factory=Counter)
    pages: int = 0
    delivery_failures: int = 0
    first_delivery_error: str | None = None
    api_error: ApiExhaustedError | None = None
    stopped: bool = False
    elapsed: float = 0.0

    @property
    def records(self) -> int:
        return sum(self.by_kind.values())

    @property
    def orders(self) -> int:
        return sum(n for kind, n in self.by_kind.items() if kind in BASE_KINDS)

    @property
    def rate(self) -> float:
        return self.records / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def exit_code(self) -> int:
        return 1 if self.api_error is not None or self.delivery_failures else 0

    def failure(self) -> str | None:
        """One line saying why the run failed, or None."""
        if self.api_error is not None:
            return (
                f"{self.api_error}; the {self.records:,} records of the {self.pages} page(s) "
                f"before it were published and flushed"
            )
        if self.delivery_failures:
            return (
                f"{self.delivery_failures:,} of {self.records:,} records were not delivered to "
                f"topic {self.topic!r} (first error: {self.first_delivery_error})"
            )
        return None

    def summary(self) -> str:
        how = "stopped by signal after publishing" if self.stopped else "published"
        return (
            f"{how} {self.records:,} records ({self.orders:,} orders, {self.pages} pages) to "
            f"topic {self.topic!r} in {self.elapsed:.1f}s: {self.rate:,.0f} records/s, "
            f"{self.delivery_failures:,} delivery errors"
        )


def prepare_reference(settings: Settings) -> Reference:
    """Generate the reference data and write the CSVs the settings ask for."""
    reference = generate_reference(settings.orders)
    log = get_logger("producer_sim.runner")
    if settings.reference_dir is not None:
        paths = write_reference(reference, settings.reference_dir)
        log.info(
            "reference_written",
            files=[str(p) for p in paths],
            users=len(reference.users),
            products=len(reference.products),
        )
    if settings.late_reference_dir is not None:
        paths = write_reference(reference, settings.late_reference_dir, late=True)
        log.info(
            "late_reference_written",
            files=[str(p) for p in paths],
            users=len(reference.late_users),
            products=len(reference.late_products),
        )
    return reference


def publish(
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    faults: FaultPlan | None = None,
    sink_factory: Callable[[Settings], Sink] = KafkaSink,
    progress_stream: TextIO | None = None,
) -> RunReport:
    """Publish the stream of ``settings``. Raises BrokerUnavailableError before the first record.

    If the API gives up on a page, every earlier page is flushed first and the report carries
    the error; delivery failures are counted in the report too.
    """
    log = get_logger("producer_sim.runner")
    stop = stop or threading.Event()
    reference = prepare_reference(settings)
    sink = sink_factory(settings)
    report = RunReport(settings.topic, settings.orders)
    stream = progress_stream if progress_stream is not None else sys.stderr
    bulk = settings.orders > 0 and not settings.rate
    show = settings.progress == "always" or (
        settings.progress == "auto" and bulk and stream.isatty()
    )
    progress = Progress(settings.orders, stream, enabled=show)
    depth = max(2, READ_AHEAD_RECORDS // settings.page_size)
    api = OrdersApi(
        generate_records(settings, reference),
        settings.page_size,
        faults or RandomFaults(settings.api_failure_rate, settings.seed),
        read_ahead=depth,
    )
    pacer = Pacer(settings.rate, stop.wait) if settings.rate else None
    log.info(
        "publish_started",
        topic=settings.topic,
        orders=settings.orders,
        seed=settings.seed,
        rate=settings.rate,
        bootstrap_servers=settings.bootstrap_servers,
    )
    by_kind = report.by_kind
    # Pages are generated ahead of the API calls, and fetched ahead of publishing, so that a
    # backoff wait stalls neither the generator nor the producer while either has work.
    pages = run_ahead(
        fetch_pages(
            api,
            attempts=settings.retry_attempts,
            base_delay=settings.retry_base_delay,
            max_delay=settings.retry_max_delay,
            stop=stop,
        ),
        depth,
    )
    started = time.monotonic()
    try:
        for page in pages:
            for record in page.records:
                if pacer is not None:
                    pacer.pace()
                    sink.poll()
                if stop.is_set():
                    break
                sink.send(record)
                by_kind[record.kind] += 1
            else:
                report.pages += 1
                progress.update(report.orders, report.records)
                if not stop.is_set():
                    continue
            break
    except ApiExhaustedError as error:
        report.api_error = error
        log.error(
            "api_exhausted", page=error.page, attempts=error.attempts, error=str(error.last_error)
        )
    finally:
        pages.close()
        api.close()
        report.delivery_failures = sink.close()
        report.first_delivery_error = sink.first_error
        report.elapsed = time.monotonic() - started
        report.stopped = stop.is_set()
        progress.finish(report.orders, report.records)
    log.info(
        "publish_summary",
        topic=report.topic,
        records=report.records,
        orders=report.orders,
        pages=report.pages,
        by_kind={kind: report.by_kind[kind] for kind in ALL_KINDS if report.by_kind[kind]},
        delivery_failures=report.delivery_failures,
        stopped=report.stopped,
        elapsed_seconds=round(report.elapsed, 3),
        records_per_second=round(report.rate, 1),
    )
    return report


def write_lines(records: Iterable[SimRecord], out: IO[str]) -> Counter[str]:
    """The stream as JSON lines ``{"kind", "key", "value"}`` (``value_base64`` if not UTF-8)."""
    counts: Counter[str] = Counter()
    for record in records:
        line: dict[str, str | None] = {
            "kind": record.kind,
            "key": record.key.decode() if record.key is not None else None,
        }
        try:
            line["value"] = record.value.decode() if record.value is not None else None
        except UnicodeDecodeError:
            line["value_base64"] = base64.b64encode(record.value or b"").decode()
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
        counts[record.kind] += 1
    return counts
