"""Writing micro-batches: one DuckDB transaction per batch on a single writer thread, then the
Kafka commit of its offsets on the polling thread.

Consuming and parsing the next batch (Python) overlaps with writing the previous one (DuckDB,
which releases the GIL). Batches are written one at a time, so duplicates are still classified
inside each batch's own transaction, after the previous one committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import polars as pl

from consumer.batch import Batch, BatchResult
from consumer.deadletter import DeadLetters
from consumer.errors import TransientError
from consumer.faults import FaultPlan
from consumer.logs import get_logger
from consumer.metrics import Metrics
from consumer.schema import Records
from consumer.sink import Warehouse
from consumer.source import KafkaSource
from consumer.stats import RunStats, by_partition

log = get_logger("consumer")
Retry = Callable[..., Any]


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
        topic: str,
        warehouse: Warehouse,
        source: KafkaSource,
        dead_letters: DeadLetters | None,
        metrics: Metrics,
        stats: RunStats,
        faults: FaultPlan,
        retry: Retry,
    ) -> None:
        self._topic = topic
        self._warehouse = warehouse
        self._source = source
        self._dead_letters = dead_letters
        self._metrics = metrics
        self._stats = stats
        self._faults = faults
        self._retry = retry
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="duckdb-writer")
        self._inflight: Future[_Written] | None = None
        self._batch_number = 0
        self._next_batch_id = warehouse.last_batch_id() + 1
        self.next: dict[int, int] = {}
        """Per partition, the next offset the warehouse does not hold yet."""

    def submit(self, records: Records) -> None:
        """Transform on this thread, then hand the batch to the writer once the previous one
        is committed."""
        prepared = self._prepare(records)
        self.finish(wait=True)
        self._inflight = self._pool.submit(self._write, prepared)

    def write_now(self, records: Records) -> None:
        """Write and commit a batch on this thread (drain, revocation)."""
        self.finish(wait=True)
        self._commit(self._write(self._prepare(records)))

    def finish(self, wait: bool, lost: frozenset[int] | set[int] = frozenset()) -> None:
        """Commit the offsets of a batch whose DuckDB write is done; re-raise its failure.

        Runs on the polling thread: librdkafka holds a synchronous commit issued from another
        thread until the poll loop pauses, so offsets are only ever committed from here.
        Partitions in ``lost`` belong to another member already: not committed.
        """
        inflight = self._inflight
        if inflight is None or not (wait or inflight.done()):
            return
        self._inflight = None
        self._commit(inflight.result(), lost)

    def commit_owned(self, partitions: list[int]) -> None:
        """Commit where the warehouse stands for partitions about to be given away."""
        offsets = {p: self.next[p] for p in partitions if p in self.next}
        try:
            if offsets:
                self._source.commit(offsets)
        except TransientError as exc:
            log.warning("commit_on_revoke_failed", error=str(exc), offsets=by_partition(offsets))

    def lag(self) -> dict[int, int]:
        """Records between what is committed and each assigned partition's end, as last seen."""
        marks = self._source.cached_watermarks()
        lag = {p: max(0, high - self.next.get(p, low)) for p, (low, high) in marks.items()}
        self._metrics.set_lag(lag)
        return lag

    def shutdown(self) -> None:
        """Let a write in progress finish (its offsets are then in the ledger)."""
        self._pool.shutdown(wait=True)

    def _prepare(self, records: Records) -> _Prepared:
        started = time.perf_counter()
        self._batch_number += 1
        batch_id = self._next_batch_id
        self._next_batch_id += 1
        batch = Batch.from_records(batch_id, self._topic, records)
        return _Prepared(self._batch_number, batch, started, time.perf_counter() - started)

    def _write(self, prepared: _Prepared) -> _Written:
        """The batch's one DuckDB transaction, dead letters included (on the writer thread)."""
        number, batch = prepared.number, prepared.batch

        def publish_dead_letters(rejects: pl.DataFrame) -> None:
            if self._dead_letters is not None:
                self._dead_letters.publish(rejects, number)

        def reconnect() -> None:
            self._metrics.set_writable(False)
            self._warehouse.reconnect()

        started = time.perf_counter()
        result = self._retry(
            "duckdb_write",
            lambda: self._warehouse.write_batch(batch, publish_dead_letters, number),
            on_retry=reconnect,
        )
        self._metrics.set_writable(True)
        return _Written(prepared, result, time.perf_counter() - started)

    def _commit(self, written: _Written, lost: frozenset[int] | set[int] = frozenset()) -> None:
        """Commit the written batch's offsets to Kafka, then account for it.

        The batch is in the warehouse already, so ``next`` moves on whatever Kafka answers.
        Every owned partition is committed, so that an earlier commit skipped during a
        rebalance is caught up.
        """
        prepared, batch = written.prepared, written.prepared.batch
        started = time.perf_counter()
        self._faults.hit("kill_after_db_commit", prepared.number)
        self.next.update(batch.next_offsets)
        owned = self._source.assigned - set(lost)
        offsets = {p: o for p, o in self.next.items() if p in owned}
        committed = not offsets or self._retry("kafka_commit", lambda: self._source.commit(offsets))
        done = time.perf_counter()
        if committed:
            self._metrics.mark_commit()
        timings = {
            "transform_ms": prepared.transform_seconds * 1000,
            "write_ms": written.write_seconds * 1000,
            "commit_ms": (done - started) * 1000,
        }
        self._stats.batch_committed(batch, written.result, timings, self.lag())
