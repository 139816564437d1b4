"""One batch into the warehouse, exactly once in effect, on the writer thread: one warehouse
transaction with the batch's dead letters published inside it, retried on a fresh connection
after a transient failure, and never written twice after a COMMIT that raised but took
effect."""

from __future__ import annotations

import time

import polars as pl

from consumer.core.plan import Batch, BatchResult
from consumer.kafka.protocol import DeadLetterSink
from consumer.runtime.retrying import Retrier
from consumer.serving.metrics import Metrics
from consumer.warehouse.protocol import Warehouse
from orders_common.logs import get_logger

log = get_logger("consumer")


class BatchStore:
    def __init__(
        self,
        *,
        warehouse: Warehouse,
        dead_letters: DeadLetterSink | None,
        retry: Retrier,
        metrics: Metrics,
    ) -> None:
        self._warehouse = warehouse
        self._dead_letters = dead_letters
        self._retry = retry
        self._metrics = metrics

    def next_batch_id(self) -> int:
        return self._warehouse.next_batch_id()

    def store(self, batch: Batch, number: int) -> tuple[BatchResult, float]:
        """Write the batch in one warehouse transaction, dead letters included; its result
        and the seconds it took. ``number`` counts batches in this process."""
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
        return result, time.perf_counter() - started
