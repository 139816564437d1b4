"""After a batch is in the warehouse: its offsets committed to Kafka, on the polling thread,
and the batch accounted for; where each partition stands, and the lag from there.

librdkafka holds a synchronous commit issued from another thread until the poll loop pauses,
so offsets are only ever committed from the polling thread. Only partitions the ledger holds
a row for are committed, so that the group's offsets never run ahead of (or beside) the
warehouse's ledger.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from consumer.core.plan import Batch, BatchResult
from consumer.core.positions import Positions, Start, next_offset_of
from consumer.errors import TransientError
from consumer.faults import NO_FAULTS, Faults
from consumer.kafka.protocol import Source
from consumer.runtime.retrying import Retrier
from consumer.runtime.stats import RunStats, by_partition
from consumer.runtime.timelag import TimeLag
from consumer.serving.metrics import Metrics
from orders_common.logs import get_logger

log = get_logger("consumer")


@dataclass(frozen=True)
class Written:
    """A batch in the warehouse, its offsets not committed to Kafka yet."""

    batch: Batch
    number: int
    result: BatchResult
    transform_seconds: float
    write_seconds: float


class Committer:
    def __init__(
        self,
        *,
        source: Source,
        metrics: Metrics,
        stats: RunStats,
        retry: Retrier,
        faults: Faults = NO_FAULTS,
        time_lag: TimeLag | None = None,
    ) -> None:
        self._source = source
        self._time_lag = time_lag or TimeLag()
        self._metrics = metrics
        self._stats = stats
        self._retry = retry
        self._faults = faults
        self._positions = Positions()

    @property
    def positions(self) -> Positions:
        """Where the warehouse stands on each owned partition (read-only to callers)."""
        return self._positions

    def resume(self, starts: Mapping[int, Start]) -> None:
        """Partitions newly assigned, and where their reading starts."""
        self._positions.resume(starts)
        self._time_lag.owned(set(self._source.assigned) | set(starts))

    def forget(self, partitions: list[int]) -> None:
        """Partitions given away: nothing more of them is committed here."""
        self._positions.forget(partitions)
        self._time_lag.owned(self._source.assigned - set(partitions))

    @property
    def time_lag(self) -> TimeLag:
        return self._time_lag

    def commit(self, written: Written, lost: frozenset[int] | set[int] = frozenset()) -> None:
        """Commit the written batch's offsets to Kafka, then account for it.

        The batch is in the warehouse already, so the positions move on whatever Kafka
        answers. Every owned partition is committed, so that an earlier commit skipped during
        a rebalance is caught up. Partitions in ``lost`` belong to another member already.
        """
        batch = written.batch
        started = time.perf_counter()
        self._faults.hit("kill_after_db_commit", written.number)
        self._positions.advance(batch.next_offsets)
        self._time_lag.committed(batch.next_offsets)
        offsets = self._positions.committable(self._source.assigned - set(lost))
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

    def commit_owned(self, partitions: list[int]) -> None:
        """Commit where the warehouse stands for partitions about to be given away."""
        offsets = self._positions.committable(partitions)
        try:
            if offsets:
                self._source.commit(offsets)
        except TransientError as exc:
            log.warning("commit_on_revoke_failed", error=str(exc), offsets=by_partition(offsets))

    def publish_lag(self) -> dict[int, int]:
        """Set and return the lag per owned partition: records between where the warehouse
        stands (or the log start) and the partition's end, as last seen by the fetcher."""
        marks = self._source.cached_watermarks()
        at = self._positions
        lag = {p: max(0, high - next_offset_of(at, p, low)) for p, (low, high) in marks.items()}
        self._metrics.set_lag(lag)
        return lag
