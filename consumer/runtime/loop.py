"""The consume loop: collect a micro-batch, transform, write in one transaction, then commit.

Order of effects per batch, which is what makes every record land exactly once:
1. dead letters produced and flushed (inside the warehouse transaction, before its commit);
2. the warehouse transaction commits data, processed keys and the offsets ledger together;
3. the same offsets are committed to Kafka, synchronously.
A crash between 2 and 3 is repaired on restart: partitions resume from the ledger.
Writing is ``writer.BatchWriter``'s, committing and where each partition stands
``committer.Committer``'s; this module runs the loop, follows rebalances, and starts and stops
everything. Its collaborators are passed in (``consumer.wiring`` builds them from settings).
"""

from __future__ import annotations

import signal
import time
from types import FrameType

from consumer.core.positions import (
    LedgerRow,
    Position,
    Start,
    any_beyond,
    next_offset_of,
    next_offsets,
)
from consumer.core.records import Records
from consumer.errors import PipelineError, TerminalError
from consumer.kafka.protocol import DeadLetterSink, Source
from consumer.runtime.committer import Committer
from consumer.runtime.coverage import Coverage
from consumer.runtime.reference_feed import ReferenceFeed
from consumer.runtime.retrying import Retrier
from consumer.runtime.stats import RunStats, by_partition
from consumer.runtime.writer import BatchWriter
from consumer.serving.metrics import Metrics
from consumer.settings import BatchSettings
from consumer.warehouse.protocol import Warehouse
from orders_common.logs import get_logger

log = get_logger("consumer")
EMPTY_POLL_SECONDS = 0.5
# In a lake, the owner of this partition of the orders topic writes the reference data.
REFERENCE_PARTITION = 0


class Pipeline:
    def __init__(
        self,
        *,
        settings: BatchSettings,
        source: Source,
        warehouse: Warehouse,
        dead_letters: DeadLetterSink | None,
        writer: BatchWriter,
        committer: Committer,
        reference: ReferenceFeed,
        coverage: Coverage,
        metrics: Metrics,
        stats: RunStats,
        retry: Retrier,
        startup_timeout: float = 30.0,
    ) -> None:
        self._settings = settings
        self._source = source
        self._warehouse = warehouse
        self._dead_letters = dead_letters
        self._batches = writer
        self._committer = committer
        self._reference = reference
        self._metrics = metrics
        self._stats = stats
        self._retry = retry
        self._startup_timeout = startup_timeout
        self._coverage = coverage
        self._buffer = Records()
        self._stopping = False
        self._abandoned = False

    # -- lifecycle ---------------------------------------------------------------------------

    def run(self) -> None:
        """Consume until SIGTERM/SIGINT (or idleness with --until-idle); drain; close."""
        previous = {
            sig: signal.signal(sig, self.request_stop) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        try:
            self._start()
            idle_since = time.monotonic()
            while not self._stopping:
                self._metrics.tick()
                self._coverage.check()
                self._committer.publish_lag()
                self._collect()
                self._reference.collect()
                if self._buffer or self._reference.ready():
                    buffer, self._buffer = self._buffer, Records()
                    self._batches.submit(buffer, self._reading(), self._reference.take())
                    idle_since = time.monotonic()
                elif self._past_markers():
                    pass
                elif self._idle_done(idle_since):
                    log.info(
                        "idle_exit",
                        idle_seconds=self._settings.until_idle,
                        next_offsets=by_partition(next_offsets(self._committer.positions)),
                    )
                    break
            self._flush()
        except BaseException:
            self._abandon()
            raise
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self._close()

    def request_stop(self, _signum: int = 0, _frame: FrameType | None = None) -> None:
        """A signal handler: only sets a flag; the loop drains, writes, commits and closes."""
        self._stopping = True

    def _abandon(self) -> None:
        """After a failure, write nothing more: a later batch committed before a failed one
        would move the offsets past records that never reached the warehouse."""
        self._abandoned = True
        self._buffer = Records()

    def _start(self) -> None:
        self._reference.start()
        partitions = self._source.check_cluster(self._startup_timeout)
        if partitions is None:
            if self._settings.until_idle is not None:
                raise TerminalError(f"topic {self._source.topic} does not exist")
            log.warning("topic_missing_waiting", topic=self._source.topic)
        if self._dead_letters is not None:
            self._dead_letters.ensure_topic(partitions or 1)
        if self._warehouse.single_writer:
            self._reference.take_over()  # a file's consumer writes everything
        self._coverage.joined()
        self._source.subscribe(self)

    def _close(self) -> None:
        stopped_at = next_offsets(self._committer.positions)
        try:
            self._batches.shutdown()
            self._source.close()
            self._reference.close()
        finally:
            if self._dead_letters is not None:
                self._dead_letters.close()
        self._stats.stopped(stopped_at)

    # -- batches -----------------------------------------------------------------------------

    def _collect(self) -> None:
        """Fill the buffer up to the record limit, or until the batch time has passed since its
        first record; return early when nothing arrives, so the loop can check idleness."""
        settings = self._settings
        deadline = time.monotonic() + (settings.max_seconds if self._buffer else EMPTY_POLL_SECONDS)
        while not self._stopping and len(self._buffer) < settings.max_records:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            started_empty = not self._buffer
            records = self._source.poll(
                settings.max_records - len(self._buffer),
                min(remaining, 0.1),
                self._committer.positions,
            )
            self._committer.time_lag.seen(records.firsts)
            self._buffer.extend(records)
            self._batches.commit_if_written()
            if started_empty and self._buffer:
                deadline = time.monotonic() + settings.max_seconds

    def _flush(self) -> None:
        """Write and commit everything consumed so far."""
        self._batches.drain()
        if self._buffer or self._reference.ready():
            buffer, self._buffer = self._buffer, Records()
            self._batches.write_now(buffer, self._reading(), self._reference.take())

    def _reading(self) -> dict[int, Position]:
        """Where reading stands on each owned partition: past the records consumed, and past
        transaction markers and aborted records, which are not data."""
        try:
            return self._source.positions()
        except PipelineError as exc:
            log.warning("positions_unavailable", error=str(exc))
            return {}

    def _past_markers(self) -> bool:
        """With no record waiting, move the ledger and the group's offsets to the position
        where reading stands, when that is past them: a transactional topic ends with a commit
        marker, and lag must still reach 0. True when a batch (of no records) was written."""
        handed_over = self._batches.positions_handed_over()
        reading = self._reading()
        if not any_beyond(reading, handed_over):
            return False
        self._batches.submit(Records(), reading)
        return True

    def _idle_done(self, idle_since: float) -> bool:
        until_idle = self._settings.until_idle
        if until_idle is None or time.monotonic() - idle_since < until_idle:
            return False
        if not self._coverage.confirmed or not self._reference.caught_up():
            return False
        self._batches.drain()
        if not self._source.assigned:
            return False
        ends = self._retry("end_offsets", self._source.end_offsets)
        fetched = self._source.positions()
        written = self._committer.positions
        return all(
            max(next_offset_of(written, p, low), next_offset_of(fetched, p, low)) >= high
            for p, (low, high) in ends.items()
        )

    # -- callbacks from the Kafka source (RebalanceListener) ---------------------------------

    def claim(self, partitions: list[int]) -> dict[int, LedgerRow]:
        return self._retry(
            "claim",
            lambda: self._warehouse.claim(
                self._source.topic, partitions, self._source.partition_count
            ),
        )

    def partitions_assigned(self, partitions: list[int], starts: dict[int, Start]) -> None:
        self._committer.resume(starts)
        self._owned_changed(self._source.assigned)
        log.info(
            "partitions_assigned",
            topic=self._source.topic,
            topic_id=self._source.topic_id,
            partitions=sorted(partitions),
            owned=sorted(self._source.assigned),
            start_offsets=by_partition({p: start.offset for p, start in starts.items()}),
            started_from={str(p): start.why for p, start in sorted(starts.items())},
        )
        for p, start in sorted(starts.items()):
            if start.skipped is not None:
                low, high = start.skipped
                log.warning(
                    "records_deleted_before_read",
                    topic=self._source.topic,
                    partition=p,
                    count=start.deleted,
                    from_offset=low,
                    to_offset=high,
                    cause="retention deleted them before this warehouse read them",
                )
                self._metrics.deleted_before_read.labels(str(p)).inc(start.deleted)
        self._coverage.assigned(partitions)
        self._committer.publish_lag()
        if REFERENCE_PARTITION in partitions and not self._warehouse.single_writer:
            self._reference.take_over()

    def partitions_revoking(self, partitions: list[int]) -> None:
        if not self._abandoned:
            self._flush()
            self._committer.commit_owned(partitions)
        if REFERENCE_PARTITION in partitions and not self._warehouse.single_writer:
            self._reference.give_up()
        self._forget(partitions)
        log.info("partitions_revoked", topic=self._source.topic, partitions=partitions)

    def partitions_lost(self, partitions: list[int]) -> None:
        if REFERENCE_PARTITION in partitions and not self._warehouse.single_writer:
            self._reference.give_up()
        self._batches.drain(lost=set(partitions))
        self._buffer = self._buffer.without(set(partitions))
        self._forget(partitions)
        log.warning("partitions_lost", topic=self._source.topic, partitions=partitions)

    def _forget(self, partitions: list[int]) -> None:
        self._committer.forget(partitions)
        self._warehouse.release(partitions)
        self._owned_changed(self._source.assigned - set(partitions))
        self._metrics.set_lag(
            {p: v for p, v in self._committer.publish_lag().items() if p not in partitions}
        )

    def _owned_changed(self, owned: frozenset[int]) -> None:
        self._metrics.assigned_partitions.set(len(owned))
        self._metrics.set_ready(bool(owned))
