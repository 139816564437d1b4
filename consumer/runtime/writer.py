"""Writing micro-batches: one warehouse transaction per batch on a single writer thread, then
the Kafka commit of its offsets on the polling thread.

Three stages overlap: the polling thread reads batch N+2 while a parsing worker process
(``parsing``) parses N+1 and the writer thread writes N (DuckDB releases the GIL). Batches are
written one at a time and in order, so duplicates are still classified inside each batch's own
transaction, after the previous one committed; their offsets are committed to Kafka in the same
order, each only after its own write. Once a write fails, no later batch is written.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType

import polars as pl

from consumer.core.plan import Batch, BatchResult, build_batch, reading_ends
from consumer.core.positions import Start
from consumer.core.records import Records
from consumer.core.transform import Parsed
from consumer.errors import TerminalError, TransientError
from consumer.faults import NO_FAULTS, Faults
from consumer.kafka.protocol import DeadLetterSink, Source
from consumer.runtime.parsing import InlineParser, Parser, Pending
from consumer.runtime.retrying import Retrier
from consumer.runtime.stats import RunStats, by_partition
from consumer.serving.metrics import Metrics
from consumer.warehouse.protocol import Warehouse
from orders_common.logs import get_logger

log = get_logger("consumer")


@dataclass(frozen=True)
class _Prepared:
    number: int
    next_offsets: dict[int, int]
    parsing: Pending
    batch_of: Callable[[Parsed], Batch]  # the batch, once its records are parsed


@dataclass(frozen=True)
class _Written:
    batch: Batch
    number: int
    result: BatchResult
    transform_seconds: float
    write_seconds: float


@dataclass(frozen=True)
class _InFlight:
    written: Future[_Written]
    next_offsets: dict[int, int]


class BatchWriter:
    def __init__(
        self,
        *,
        warehouse: Warehouse,
        source: Source,
        dead_letters: DeadLetterSink | None,
        metrics: Metrics,
        stats: RunStats,
        retry: Retrier,
        faults: Faults = NO_FAULTS,
        parser: Parser | None = None,
    ) -> None:
        self._topic = source.topic
        self._parser = parser or InlineParser()
        self._warehouse = warehouse
        self._source = source
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._stats = stats
        self._faults = faults
        self._retry = retry
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warehouse-writer")
        self._inflight: deque[_InFlight] = deque()
        self._failed = False  # a write failed: later batches are not written (writer thread)
        self._batch_number = 0
        self._next: dict[int, int] = {}
        self._first: dict[int, int] = {}
        # Partitions the ledger holds a row for: only their offsets are committed to Kafka, so
        # that the group's offsets never run ahead of (or beside) the warehouse's ledger.
        self._ledgered: set[int] = set()
        self._skipped: dict[int, tuple[int, int]] = {}

    # -- where each partition stands ---------------------------------------------------------

    @property
    def next_offsets(self) -> Mapping[int, int]:
        """Per partition, the next offset the warehouse does not hold yet (read-only)."""
        return MappingProxyType(self._next)

    @property
    def handed_over(self) -> dict[int, int]:
        """Per partition, where the batches handed to the writer leave it (in flight
        included): what an empty batch would have to go beyond."""
        merged = dict(self._next)
        for batch in self._inflight:
            for p, o in batch.next_offsets.items():
                merged[p] = max(o, merged.get(p, o))
        return merged

    def resume(self, starts: Mapping[int, Start]) -> None:
        """Partitions newly assigned, and where their reading starts."""
        for p, start in starts.items():
            self._next[p] = start.offset
            self._first[p] = start.first_offset
            if start.why == "ledger":
                self._ledgered.add(p)
            if start.skipped is not None:
                self._skipped[p] = start.skipped

    def forget(self, partitions: list[int]) -> None:
        """Partitions given away: nothing more of them is committed here."""
        for p in partitions:
            self._next.pop(p, None)
            self._first.pop(p, None)
            self._ledgered.discard(p)

    # -- batches -----------------------------------------------------------------------------

    def submit(self, records: Records, positions: Mapping[int, int] | None = None) -> None:
        """Hand the batch to the parser and the writer, then commit the oldest batches until
        at most the parser's depth are in flight. ``positions`` is where reading stands after
        these records."""
        prepared = self._prepare(records, positions)
        self._inflight.append(
            _InFlight(self._pool.submit(self._write, prepared), prepared.next_offsets)
        )
        while len(self._inflight) > self._parser.depth:
            self._commit_oldest()

    def write_now(self, records: Records, positions: Mapping[int, int] | None = None) -> None:
        """Write and commit a batch on this thread (drain, revocation)."""
        self.drain()
        self._commit(self._write(self._prepare(records, positions)))

    def commit_if_written(self) -> None:
        """Commit the offsets of the batches whose writes are done, oldest first; never waits."""
        while self._inflight and self._inflight[0].written.done():
            self._commit_oldest()

    def drain(self, lost: frozenset[int] | set[int] = frozenset()) -> None:
        """Wait for the batches in flight, commit their offsets in order, and re-raise the
        first failure.

        Runs on the polling thread: librdkafka holds a synchronous commit issued from another
        thread until the poll loop pauses, so offsets are only ever committed from here.
        Partitions in ``lost`` belong to another member already: not committed.
        """
        while self._inflight:
            self._commit_oldest(lost)

    def _commit_oldest(self, lost: frozenset[int] | set[int] = frozenset()) -> None:
        oldest = self._inflight.popleft()
        try:
            written = oldest.written.result()
        except BaseException:
            self._inflight.clear()  # none of them was written: a failure stops the writer
            raise
        self._commit(written, lost)

    def commit_owned(self, partitions: list[int]) -> None:
        """Commit where the warehouse stands for partitions about to be given away."""
        offsets = {p: self._next[p] for p in partitions if p in self._next and p in self._ledgered}
        try:
            if offsets:
                self._source.commit(offsets)
        except TransientError as exc:
            log.warning("commit_on_revoke_failed", error=str(exc), offsets=by_partition(offsets))

    def publish_lag(self) -> dict[int, int]:
        """Set and return the lag per owned partition: records between where the warehouse
        stands (or the log start) and the partition's end, as last seen by the fetcher."""
        marks = self._source.cached_watermarks()
        lag = {p: max(0, high - self._next.get(p, low)) for p, (low, high) in marks.items()}
        self._metrics.set_lag(lag)
        return lag

    def shutdown(self) -> None:
        """Let a write in progress finish (its offsets are then in the ledger), then stop the
        parser."""
        self._failed = True  # a batch not written yet stays unwritten
        self._pool.shutdown(wait=True)
        self._parser.close()

    def _prepare(self, records: Records, positions: Mapping[int, int] | None) -> _Prepared:
        self._batch_number += 1
        skipped, self._skipped = self._skipped, {}
        ends = reading_ends(records, positions)
        batch_id, topic_id, first = (
            self._warehouse.next_batch_id(),
            self._source.topic_id,
            dict(self._first),
        )

        def batch_of(parsed: Parsed) -> Batch:
            return build_batch(
                batch_id,
                self._topic,
                records,
                ends,
                topic_id=topic_id,
                first_offsets=first,
                skipped=skipped,
                parsed=parsed,
            )

        return _Prepared(self._batch_number, ends, self._parser.submit(records.values), batch_of)

    def _write(self, prepared: _Prepared) -> _Written:
        """Wait for the batch's parse, then write it in one warehouse transaction, dead letters
        included (writer thread)."""
        if self._failed:
            raise TerminalError("not written: an earlier batch failed or the writer stopped")
        try:
            return self._parsed_and_written(prepared)
        except BaseException:
            self._failed = True
            raise

    def _parsed_and_written(self, prepared: _Prepared) -> _Written:
        parsed, transform_seconds = prepared.parsing.result()
        number = prepared.number
        batch = prepared.batch_of(parsed)
        attempts = 0

        def publish_dead_letters(rejects: pl.DataFrame) -> None:
            if self._dead_letters is not None:
                self._dead_letters.publish(rejects, number)

        def attempt() -> BatchResult:
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                # A COMMIT can raise after it took effect (a lost connection): the batch is
                # then in the warehouse, and writing it again would fail or double it.
                done = self._warehouse.committed_result(batch.batch_id)
                if done is not None:
                    log.warning("ambiguous_commit_resolved", batch_id=batch.batch_id)
                    return done
            return self._warehouse.write_batch(batch, publish_dead_letters, number)

        def reconnect() -> None:
            self._metrics.set_writable(False)
            self._warehouse.reconnect()

        started = time.perf_counter()
        result = self._retry("warehouse_write", attempt, on_retry=reconnect)
        self._metrics.set_writable(True)
        return _Written(batch, number, result, transform_seconds, time.perf_counter() - started)

    def _commit(self, written: _Written, lost: frozenset[int] | set[int] = frozenset()) -> None:
        """Commit the written batch's offsets to Kafka, then account for it.

        The batch is in the warehouse already, so the positions move on whatever Kafka
        answers. Every owned partition is committed, so that an earlier commit skipped during
        a rebalance is caught up.
        """
        batch = written.batch
        started = time.perf_counter()
        self._faults.hit("kill_after_db_commit", written.number)
        self._next.update(batch.next_offsets)
        self._ledgered |= set(batch.next_offsets)
        owned = self._source.assigned - set(lost)
        offsets = {p: o for p, o in self._next.items() if p in owned and p in self._ledgered}
        committed = not offsets or self._retry("kafka_commit", lambda: self._source.commit(offsets))
        done = time.perf_counter()
        if committed:
            self._metrics.mark_commit()
        timings = {
            "transform_ms": written.transform_seconds * 1000,
            "write_ms": written.write_seconds * 1000,
            "commit_ms": (done - started) * 1000,
        }
        self._stats.batch_committed(batch, written.result, timings, self.publish_lag())
