"""Writing micro-batches: one warehouse transaction per batch on a single writer thread, then
the Kafka commit of its offsets on the polling thread.

Three stages overlap: the polling thread reads batch N+2 while a parsing worker process
(``parsing``) parses N+1 and the writer thread writes N (DuckDB releases the GIL). Batches are
written one at a time and in order, so duplicates are still classified inside each batch's own
transaction, after the previous one committed; their offsets are committed to Kafka in the same
order, each only after its own write. Once a write fails, no later batch is written.

What one write does is ``storing.BatchStore``'s; what follows it, ``committer.Committer``'s.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from consumer.core.plan import Batch, build_batch
from consumer.core.positions import Position, Positions, next_offsets, positions_after
from consumer.core.records import Records
from consumer.core.refbatch import ReferenceBatch
from consumer.core.transform import Parsed
from consumer.errors import TerminalError
from consumer.kafka.protocol import Source
from consumer.runtime.committer import Committer, Written
from consumer.runtime.parsing import InlineParser, Parser, Pending
from consumer.runtime.storing import BatchStore


@dataclass(frozen=True)
class _Prepared:
    number: int
    positions: dict[int, Position]  # where the batch leaves its partitions
    parsing: Pending
    batch_of: Callable[[Parsed], Batch]  # the batch, once its records are parsed


@dataclass(frozen=True)
class _InFlight:
    written: Future[Written]
    positions: dict[int, Position]


class BatchWriter:
    def __init__(
        self,
        *,
        source: Source,
        store: BatchStore,
        committer: Committer,
        parser: Parser | None = None,
    ) -> None:
        self._source = source  # the topic and its id, that each batch carries
        self._store = store
        self._committer = committer
        self._parser = parser or InlineParser()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="warehouse-writer")
        self._inflight: deque[_InFlight] = deque()
        self._failed = False  # a write failed: later batches are not written (writer thread)
        self._batch_number = 0

    @property
    def positions(self) -> Positions:
        """Where the warehouse stands on each owned partition (read-only)."""
        return self._committer.positions

    def positions_handed_over(self) -> dict[int, Position]:
        """Where the batches handed to the writer leave each partition (in flight included):
        what an empty batch would have to go beyond."""
        merged = dict(self.positions)
        for flight in self._inflight:
            for p, at in flight.positions.items():
                if p not in merged or at.next_offset > merged[p].next_offset:
                    merged[p] = at
        return merged

    # -- batches -----------------------------------------------------------------------------

    def submit(
        self,
        records: Records,
        reading: Mapping[int, Position] | None = None,
        reference: ReferenceBatch | None = None,
    ) -> None:
        """Hand the batch to the parser and the writer, then commit the oldest batches until
        at most the parser's depth are in flight. ``reading`` is where reading stands after
        these records; ``reference``, reference rows written in the same transaction."""
        prepared = self._prepare(records, reading, reference)
        self._inflight.append(
            _InFlight(self._pool.submit(self._write, prepared), prepared.positions)
        )
        while len(self._inflight) > self._parser.depth:
            self._commit_oldest()

    def write_now(
        self,
        records: Records,
        reading: Mapping[int, Position] | None = None,
        reference: ReferenceBatch | None = None,
    ) -> None:
        """Write and commit a batch on this thread (drain, revocation)."""
        self.drain()
        self._committer.commit(self._write(self._prepare(records, reading, reference)))

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
        self._committer.commit(written, lost)

    def shutdown(self) -> None:
        """Let a write in progress finish (its offsets are then in the ledger), then stop the
        parser."""
        self._failed = True  # a batch not written yet stays unwritten
        self._pool.shutdown(wait=True)
        self._parser.close()

    def _prepare(
        self,
        records: Records,
        reading: Mapping[int, Position] | None,
        reference: ReferenceBatch | None = None,
    ) -> _Prepared:
        self._batch_number += 1
        positions = self.positions
        skipped = positions.take_skipped()
        ends = positions_after(records, reading)
        batch_id, topic, topic_id, first = (
            self._store.next_batch_id(),
            self._source.topic,
            self._source.topic_id,
            positions.first_offsets(),
        )

        def batch_of(parsed: Parsed) -> Batch:
            return build_batch(
                batch_id,
                topic,
                records,
                next_offsets(ends),
                topic_id=topic_id,
                first_offsets=first,
                skipped=skipped,
                parsed=parsed,
                reference=reference,
            )

        return _Prepared(self._batch_number, ends, self._parser.submit(records.values), batch_of)

    def _write(self, prepared: _Prepared) -> Written:
        """Wait for the batch's parse, then write it in one warehouse transaction, dead letters
        included (writer thread)."""
        if self._failed:
            raise TerminalError("not written: an earlier batch failed or the writer stopped")
        try:
            parsed, transform_seconds = prepared.parsing.result()
            batch = prepared.batch_of(parsed)
            result, write_seconds = self._store.store(batch, prepared.number)
        except BaseException:
            self._failed = True
            raise
        return Written(batch, prepared.number, result, transform_seconds, write_seconds)
