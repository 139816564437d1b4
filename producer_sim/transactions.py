"""``--transactional``: the stream goes out in Kafka transactions, some of them aborted on purpose.

Each transaction holds ``--transaction-size`` consecutive records of the stream. Whether one is
aborted is drawn from an RNG of its own (``--abort-rate``), so one seed aborts the same
transactions in every run. An aborted transaction's records are written to the log first and
then marked aborted, so the topic really holds aborted batches; those records are lost to the
stream (nothing retries them) and their ids are never used again, so a consumer that reads
aborted records by mistake loads orders that a ``read_committed`` oracle does not have.

Transactions cover the orders topic only: the change topics' records go through a plain
idempotent producer beside the transactional one, so no version or rate is ever aborted.
"""

from __future__ import annotations

import random
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from producer_sim.config import STREAM_OF_KIND, Settings
from producer_sim.orders import seed_scope
from producer_sim.publisher import BrokerUnavailableError, KafkaSink, producer_config

DEFAULT_TRANSACTION_SIZE = 100
_PURGED = (KafkaError._PURGE_QUEUE, KafkaError._PURGE_INFLIGHT)


class AbortPlan:
    """Draws, transaction after transaction, whether it is aborted."""

    def __init__(self, rate: float, seed: int) -> None:
        self._rate = rate
        self._rng = random.Random(f"orders-sim:{seed}:aborts")

    def aborts(self) -> bool:
        return self._rate > 0 and self._rng.random() < self._rate


def transactional_id(settings: Settings) -> str:
    """Stable per topic and seed: a restarted run fences its killed predecessor and aborts the
    transaction it left open, instead of leaving it to block read_committed readers until the
    transaction timeout."""
    return f"orders-sim-{settings.topic}-{seed_scope(settings.seed)}"


class TransactionalSink(KafkaSink):
    """A transactional producer: ``send`` opens a transaction, ``end`` commits or aborts it."""

    def __init__(self, settings: Settings) -> None:
        # librdkafka wants message.timeout.ms (the delivery timeout) <= transaction.timeout.ms.
        timeout_ms = max(60_000, int(settings.delivery_timeout * 1000))
        super().__init__(
            settings,
            {"transactional.id": transactional_id(settings), "transaction.timeout.ms": timeout_ms},
        )
        self._timeout = settings.delivery_timeout + 10
        self._open = False
        self._in_transaction = 0
        if settings.reference_streams:
            plain = producer_config(settings, lambda *args: KafkaSink._on_delivery(self, *args))
            self._reference_producer = Producer(plain)
        try:
            self._producer.init_transactions(settings.connect_timeout)
        except KafkaException as error:
            raise BrokerUnavailableError(
                f"Kafka at {settings.bootstrap_servers} did not start transactions for "
                f"{transactional_id(settings)!r} ({error.args[0].str()})"
            ) from error

    def _on_delivery(self, error: KafkaError | None, message: Any) -> None:
        # A failed record fails its transaction's commit, which counts the whole transaction;
        # records purged by an abort on purpose are no error at all.
        if error is None or error.code() in _PURGED:
            return
        if self.first_error is None:
            self.first_error = error.str()
        self._log.error("delivery_failed", topic=message.topic(), error=error.str())

    def send(self, record: Any) -> None:
        if record.kind in STREAM_OF_KIND:  # a change topic: outside the transactions
            super().send(record)
            return
        if not self._open:
            self._producer.begin_transaction()
            self._open = True
        super().send(record)
        self._in_transaction += 1

    def end(self, commit: bool) -> bool:
        """Commit (True once committed) or abort the open transaction; False if it aborted."""
        if not self._open:
            return commit
        self._open = False
        count, self._in_transaction = self._in_transaction, 0
        if not commit:
            # Flushed first, so the aborted records are in the log, behind an abort marker.
            self._producer.flush(self._timeout)
            self._producer.abort_transaction(self._timeout)
            return False
        while True:
            try:
                self._producer.commit_transaction(self._timeout)
                return True
            except KafkaException as error:
                kafka_error = error.args[0]
                if kafka_error.retriable():
                    continue
                if not kafka_error.txn_requires_abort():
                    raise
                self._producer.abort_transaction(self._timeout)
                self.failed += count
                self.first_error = self.first_error or kafka_error.str()
                self._log.error("transaction_failed", records=count, error=kafka_error.str())
                return False
