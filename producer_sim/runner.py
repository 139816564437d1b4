"""A whole run: reference CSVs, the paged API, pacing, publishing, and the final report."""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Protocol, TextIO

from orders_common.logs import get_logger
from producer_sim.api import (
    ApiExhaustedError,
    FaultPlan,
    OrdersApi,
    RandomFaults,
    fetch_pages,
    run_ahead,
)
from producer_sim.config import BASE_KINDS, STREAM_OF_KIND, Settings
from producer_sim.events import LATE_RESEND_RANGE, Resume, generate_records
from producer_sim.orders import order_number
from producer_sim.pacing import Pacer, Progress
from producer_sim.publisher import KafkaSink
from producer_sim.records import SimRecord
from producer_sim.reference import Reference, generate_reference, write_rates, write_reference
from producer_sim.report import RESENDS, RunReport, Tally
from producer_sim.state import (
    CHECKPOINT_SECONDS,
    StateFile,
    StreamState,
    advance,
    resume_point,
)
from producer_sim.transactions import DEFAULT_TRANSACTION_SIZE, AbortPlan, TransactionalSink

READ_AHEAD_RECORDS = 50_000  # per buffer, about a second of work: hides most backoff waits


class Sink(Protocol):
    failed: int
    first_error: str | None
    topic_key: str

    def send(self, record: SimRecord) -> None: ...
    def poll(self) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> int: ...


def make_sink(settings: Settings) -> Sink:
    """The Kafka sink the settings ask for: transactional or not."""
    return TransactionalSink(settings) if settings.transactional else KafkaSink(settings)


def prepare_reference(settings: Settings) -> Reference:
    """Generate the reference data and write the CSVs the settings ask for."""
    reference = generate_reference(settings.orders)
    log = get_logger("producer_sim.runner")
    for directory, late in ((settings.reference_dir, False), (settings.late_reference_dir, True)):
        if directory is None:
            continue
        paths = write_reference(reference, directory, late=late, days=settings.days)
        if not late:
            paths.append(write_rates(directory, days=settings.days))
        log.info(
            "late_reference_written" if late else "reference_written",
            files=[str(p) for p in paths],
            users=len(reference.late_users if late else reference.users),
            products=len(reference.late_products if late else reference.products),
            days=settings.days,
        )
    return reference


class _Run:
    """One run's bookkeeping: the open tally, transactions, and the state file's checkpoints."""

    def __init__(
        self, settings: Settings, sink: Sink, state_file: StateFile | None, report: RunReport
    ) -> None:
        self._settings = settings
        self._sink = sink
        self._state_file = state_file
        self.report = report
        self.state = state_file.load() if state_file is not None else StreamState()
        self.start: Resume | None = resume_point(self.state, settings, settings.replay)
        # Base orders up to the topic's high mark were sent before: a resumed run is past it.
        self._known = self.state.orders
        self._top = self.state.orders if self.start is not None else 0
        self.sent = 0
        self._tally = Tally()
        self._transactional = isinstance(sink, TransactionalSink)
        self._size = settings.transaction_size or DEFAULT_TRANSACTION_SIZE
        self._aborts = AbortPlan(settings.abort_rate or 0.0, settings.seed)
        self._aborted: dict[bytes, int] = {}  # key -> number of aborted base orders, oldest first
        self._saved_at = time.monotonic()

    def send(self, record: SimRecord) -> None:
        self._sink.send(record)
        if record.kind in STREAM_OF_KIND:  # a change topic: outside any transaction
            self.report.reference_by_kind[record.kind] += 1
            self.sent += 1
            return
        tally = self._tally
        tally.by_kind[record.kind] += 1
        if record.kind in BASE_KINDS and record.key is not None:
            number = order_number(record.key)
            self._top = max(self._top, number)
            if number > self._known:
                tally.new_orders += 1
            else:
                tally.replayed_orders += 1
            if self._transactional:
                tally.bases.append((record.key, number))
        elif self._transactional and record.kind in RESENDS and record.key is not None:
            tally.resends.append((record.key, record.kind))
        self.sent += 1
        if self._transactional:
            if tally.records >= self._size:
                self.settle()
        elif self.sent % 16 == 0 and self._due():
            self._sink.flush()  # a checkpoint holds only acknowledged records
            self.settle()

    def _due(self) -> bool:
        return (
            self._state_file is not None and time.monotonic() - self._saved_at >= CHECKPOINT_SECONDS
        )

    def page_done(self) -> None:
        """Count a page that went out (transactions are settled as they fill)."""
        if not self._transactional:
            if self._due():
                self._sink.flush()
            self.settle()

    def _follow_aborted(self, committed: bool) -> None:
        """Remember aborted orders; a committed re-send of one is the first version readers see."""
        aborted = self._aborted
        tally = self._tally
        if not committed:
            aborted.update(tally.bases)
            oldest = self._top - LATE_RESEND_RANGE[1] - 1  # no re-send comes later than that
            while aborted and next(iter(aborted.values())) < oldest:
                del aborted[next(iter(aborted))]
            return
        for key, kind in tally.resends:
            number = aborted.pop(key, None)
            if number is not None:
                self.report.revived_by_kind[kind] += 1
                if number > self._known:
                    self.report.new_orders += 1
                else:
                    self.report.replayed_orders += 1

    def settle(self, final: bool = False) -> None:
        """End the open transaction (or count what went out), then checkpoint now and then."""
        if self._transactional:
            assert isinstance(self._sink, TransactionalSink)
            if self._tally.records:
                abort = self._aborts.aborts()
                committed = self._sink.end(commit=not abort)
                self.report.transactions += committed
                self.report.aborted_transactions += abort
                if committed or abort:
                    self._follow_aborted(committed)
                    self.report.settle(self._tally, committed)
                else:
                    self._tally.clear()  # failed: counted by the sink as delivery failures
        else:
            self.report.settle(self._tally, committed=True)
        if self._state_file is not None and (final or self._due()):
            if self._transactional:
                self._sink.flush()  # the change topics' records, outside the transactions
            new = advance(self.state, self._settings, self.start, self._top, self.sent)
            if self._settings.orders == 0 and new is not self.state:
                # From now on, positions count from the saved point.
                self.start, self.sent = Resume(new.after_order, new.records), 0
            self.state = new
            self._state_file.save(new)
            self._saved_at = time.monotonic()


def publish(
    settings: Settings,
    *,
    stop: threading.Event | None = None,
    faults: FaultPlan | None = None,
    sink_factory: Callable[[Settings], Sink] = make_sink,
    progress_stream: TextIO | None = None,
) -> RunReport:
    """Publish the stream of ``settings``. Raises BrokerUnavailableError before the first record.

    If the API gives up on a page, every earlier page is flushed first and the report carries
    the error; delivery failures are counted in the report too. With a state directory, an
    endless run starts where the last one stopped (``producer_sim.state``).
    """
    log = get_logger("producer_sim.runner")
    stop = stop or threading.Event()
    reference = prepare_reference(settings)
    sink = sink_factory(settings)
    report = RunReport(settings.topic, settings.orders, transactional=settings.transactional)
    for name in settings.reference_streams:
        report.reference_topics[name] = str(settings.topic_of(name))
    state_file = None
    if settings.state_dir is not None:
        state_file = StateFile(settings.state_dir, settings.topic, sink.topic_key, settings.seed)
    run = _Run(settings, sink, state_file, report)
    stream = progress_stream if progress_stream is not None else sys.stderr
    bulk = settings.orders > 0 and not settings.rate
    show = settings.progress == "always" or (
        settings.progress == "auto" and bulk and stream.isatty()
    )
    progress = Progress(settings.orders, stream, enabled=show)
    depth = max(2, READ_AHEAD_RECORDS // settings.page_size)
    api = OrdersApi(
        generate_records(settings, reference, run.start),
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
        days=settings.days,
        reference_topics=report.reference_topics,
        rate=settings.rate,
        bootstrap_servers=settings.bootstrap_servers,
        transactional=settings.transactional,
        state_file=str(state_file.path) if state_file is not None else None,
        resume_after_order=run.start.after_order if run.start is not None else None,
        resume_skip_records=run.start.records if run.start is not None else None,
        orders_sent_before=run.state.orders,
    )
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
        try:
            for page in pages:
                for record in page.records:
                    if pacer is not None:
                        pacer.pace()
                        sink.poll()
                    if stop.is_set():
                        break
                    run.send(record)
                else:
                    report.pages += 1
                    run.page_done()
                    progress.update(report.orders, report.records)
                    if not stop.is_set():
                        continue
                break
        except ApiExhaustedError as error:
            report.api_error = error
            log.error(
                "api_exhausted",
                page=error.page,
                attempts=error.attempts,
                error=str(error.last_error),
            )
        pages.close()
        if settings.transactional:
            run.settle()  # the last, partial transaction
        sink.flush()
        run.settle(final=True)
    finally:
        pages.close()
        api.close()
        report.delivery_failures = sink.close()
        report.first_delivery_error = sink.first_error
        report.elapsed = time.monotonic() - started
        report.stopped = stop.is_set()
        progress.finish(report.orders, report.records)
    log.info("publish_summary", **report.log_fields())
    return report
