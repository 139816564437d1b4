"""Accounting for a run: per-batch metrics and summary log lines, and the totals at exit."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Mapping

from consumer.core.plan import Batch, BatchResult
from consumer.serving.metrics import Metrics
from orders_common.logs import get_logger

log = get_logger("consumer")


def by_partition(offsets: Mapping[int, int]) -> dict[str, int]:
    """Offsets keyed by partition as text (JSON object keys), in partition order."""
    return {str(p): o for p, o in sorted(offsets.items())}


class RunStats:
    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics
        self._totals: Counter[str] = Counter()
        self._rejected_by_reason: Counter[str] = Counter()
        self._started = time.monotonic()

    def batch_committed(
        self,
        batch: Batch,
        result: BatchResult,
        timings: Mapping[str, float],
        lag: Mapping[int, int],
    ) -> None:
        """Count a committed batch and write its summary line (``timings`` in milliseconds)."""
        records = len(batch.values)
        by_reason = result.rejected_by_reason()
        seconds = sum(timings.values()) / 1000
        self._totals.update(
            batches=1,
            records=records,
            loaded=result.loaded,
            duplicates=result.duplicates,
            rejected=result.rejected,
            fact_rows=result.fact_rows,
        )
        self._rejected_by_reason.update(by_reason)
        self._metrics.observe_batch(
            loaded=result.loaded,
            duplicates=result.duplicates,
            rejected_by_reason=by_reason,
            fact_rows=result.fact_rows,
            records=records,
            seconds=seconds,
        )
        reference = {}
        if batch.reference is not None:
            self._totals.update(versions=result.versions, redeliveries=result.redeliveries)
            reference = {
                "reference_records": batch.reference.records,
                "versions": result.versions,
                "redeliveries": result.redeliveries,
            }
            self._metrics.reference_versions.inc(result.versions)
        log.info(
            "batch_committed",
            batch_id=batch.batch_id,
            topic=batch.topic,
            records=records,
            **reference,
            loaded=result.loaded,
            duplicates=result.duplicates,
            rejected=result.rejected,
            rejected_by_reason=by_reason,
            fact_rows=result.fact_rows,
            duration_ms=round(seconds * 1000, 1),
            **{name: round(value, 1) for name, value in timings.items()},
            lag=sum(lag.values()),
            next_offsets=by_partition(batch.next_offsets),
        )

    def stopped(self, next_offsets: Mapping[int, int]) -> None:
        """The run's summary line."""
        totals = self._totals
        log.info(
            "consumer_stopped",
            batches=totals["batches"],
            records=totals["records"],
            loaded=totals["loaded"],
            duplicates=totals["duplicates"],
            rejected=totals["rejected"],
            rejected_by_reason=dict(sorted(self._rejected_by_reason.items())),
            fact_rows=totals["fact_rows"],
            versions=totals["versions"],
            redeliveries=totals["redeliveries"],
            elapsed_s=round(time.monotonic() - self._started, 1),
            next_offsets=by_partition(next_offsets),
        )
