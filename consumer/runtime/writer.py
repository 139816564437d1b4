"""Writing micro-batches: one warehouse transaction per batch on a single writer thread, then
the Kafka commit of its offsets on the polling thread.

Consuming and parsing the next batch (Python) overlaps with writing the previous one (DuckDB,
which releases the GIL). Batches are written one at a time, so duplicates are still classified
inside each batch's own transaction, after the previous one committed.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from types import MappingProxyType

import polars as pl

from consumer.core.plan import Batch, BatchResult, build_batch
from consumer.core.positions import Start
from consumer.core.records import Records
from consumer.errors import TransientError
from consumer.faults import NO_FAULTS, Faults
from consumer.kafka.protocol import DeadLetterSink, Source
from consumer.runtime.metrics import Metrics
from consumer.runtime.retrying import Retrier
from consumer.runtime.stats import RunStats, by_partition
from consumer.warehouse.protocol import Warehouse
from orders_common.logs import get_logger

log = get_logger("consumer")


@dataclass(frozen=True)
class _Prepared:
    number: int
    batch: Batch
    started: float
    transform_seconds: float


@dataclass(frozen=True)
class _Written:
    prepared: _Prepared
    result: BatchResult
    write_seconds: float


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
    ) -> None:
        self._topic = source.topic
        self._warehouse = warehouse
        self._source = source
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._stats = stats
        self._faults = faults
        self._retry = retry
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warehouse-writer")
        self._inflight: Future[_Written] | None = None
        self._inflight_offsets: dict[int, int] | None = None
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
        if self._inflight_offsets is not None:
            for p, o in self._inflight_offsets.items():
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
        """Transform on this thread, then hand the batch to the writer once the previous one
        is committed. ``positions`` is where reading stands after these records."""
        prepared = self._prepare(records, positions)
        self.drain()
        self._inflight = self._pool.submit(self._write, prepared)
        self._inflight_offsets = prepared.batch.next_offsets

    def write_now(self, records: Records, positions: Mapping[int, int] | None = None) -> None:
        """Write and commit a batch on this thread (drain, revocation)."""
        self.drain()
        self._commit(self._write(self._prepare(records, positions)))

    def commit_if_written(self) -> None:
        """Commit the offsets of the batch in flight if its write is done; never waits."""
        if self._inflight is not None and self._inflight.done():
            self.drain()

    def drain(self, lost: frozenset[int] | set[int] = frozenset()) -> None:
        """Wait for the batch in flight, commit its offsets, and re-raise its failure.

        Runs on the polling thread: librdkafka holds a synchronous commit issued from another
        thread until the poll loop pauses, so offsets are only ever committed from here.
        Partitions in ``lost`` belong to another member already: not committed.
        """
        inflight, self._inflight = self._inflight, None
        self._inflight_offsets = None
        if inflight is not None:
            self._commit(inflight.result(), lost)

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
        """Let a write in progress finish (its offsets are then in the ledger)."""
        self._pool.shutdown(wait=True)

    def _prepare(self, records: Records, positions: Mapping[int, int] | None) -> _Prepared:
        started = time.perf_counter()
        self._batch_number += 1
        batch_id = self._warehouse.next_batch_id()
        skipped, self._skipped = self._skipped, {}
        batch = build_batch(
            batch_id,
            self._topic,
            records,
            dict(positions or {}),
            topic_id=self._source.topic_id,
            first_offsets=dict(self._first),
            skipped=skipped,
        )
        return _Prepared(self._batch_number, batch, started, time.perf_counter() - started)

    def _write(self, prepared: _Prepared) -> _Written:
        """The batch's one warehouse transaction, dead letters included (writer thread)."""
        number, batch = prepared.number, prepared.batch
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
        return _Written(prepared, result, time.perf_counter() - started)

    def _commit(self, written: _Written, lost: frozenset[int] | set[int] = frozenset()) -> None:
        """Commit the written batch's offsets to Kafka, then account for it.

        The batch is in the warehouse already, so the positions move on whatever Kafka
        answers. Every owned partition is committed, so that an earlier commit skipped during
        a rebalance is caught up.
        """
        prepared, batch = written.prepared, written.prepared.batch
        started = time.perf_counter()
        self._faults.hit("kill_after_db_commit", prepared.number)
        self._next.update(batch.next_offsets)
        self._ledgered |= set(batch.next_offsets)
        owned = self._source.assigned - set(lost)
        offsets = {p: o for p, o in self._next.items() if p in owned and p in self._ledgered}
        committed = not offsets or self._retry("kafka_commit", lambda: self._source.commit(offsets))
        done = time.perf_counter()
        if committed:
            self._metrics.mark_commit()
        timings = {
            "transform_ms": prepared.transform_seconds * 1000,
            "write_ms": written.write_seconds * 1000,
            "commit_ms": (done - started) * 1000,
        }
        self._stats.batch_committed(batch, written.result, timings, self.publish_lag())
