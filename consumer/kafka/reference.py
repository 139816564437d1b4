"""The change topics of reference data (CONTRACT §2): read whole, every partition, by
assignment (never split among a group's members), from where the warehouse's ledger stands.

Nothing is committed to Kafka for them: the warehouse's ledger is the only record of what it
holds, as for the orders topic (a partition never seen starts at its log start, a re-created
topic at its start). A topic that does not exist yet is looked for again every
``RECHECK_SECONDS`` and read from its start once it appears.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from consumer.core.positions import LedgerRow, Start, start_of
from consumer.core.records import Records
from consumer.errors import ConfigError, TransientError
from consumer.kafka import cluster, offsets
from consumer.settings import KafkaSettings
from orders_common import kafka
from orders_common.logs import get_logger

log = get_logger(__name__)
RECHECK_SECONDS = 5.0
Ledger = Callable[[str], dict[int, LedgerRow]]


class ReferenceTopics:
    """Reads the reference topics ``kinds`` (topic -> kind) while ``start`` ... ``stop``."""

    def __init__(
        self,
        settings: KafkaSettings,
        kinds: Mapping[str, str],
        *,
        client: Callable[[dict[str, Any]], Any] = Consumer,
        admin: Callable[[dict[str, Any]], Any] = AdminClient,
    ) -> None:
        self.kinds = dict(kinds)
        self.topic_ids: dict[str, str | None] = {}
        self.starts: dict[str, dict[int, Start]] = {}
        fixed = {
            # Assigned, never subscribed: the group id only names the client to the broker.
            "group.id": f"{settings.group_id}.reference",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
        }
        config = kafka.client_config(
            settings.bootstrap_servers, "orders-consumer-reference", service="consumer",
            fixed=fixed, options=settings.options,
        )  # fmt: skip
        try:
            self._consumer = client(config)
            self._admin = admin(
                kafka.client_config(
                    settings.bootstrap_servers, "orders-consumer-admin", service="consumer",
                    options=settings.options,
                )
            )  # fmt: skip
        except KafkaException as exc:
            raise ConfigError(f"invalid Kafka client setting: {exc.args[0].str()}") from exc
        self._ledger: Ledger | None = None
        self._missing: set[str] = set()
        self._checked = 0.0

    @property
    def reading(self) -> bool:
        return self._ledger is not None

    def start(self, ledger: Ledger) -> None:
        """Read every topic that exists from where ``ledger(topic)`` says (this member now
        writes the reference data)."""
        self._ledger = ledger
        self._missing = set(self.kinds)
        self._assign_found()

    def stop(self) -> None:
        """Stop reading (another member writes the reference data now)."""
        if self._ledger is None:
            return
        self._ledger = None
        self._consumer.unassign()
        self.starts.clear()

    def poll(self, max_records: int, timeout: float = 0.0) -> dict[str, Records]:
        """Records consumed since the last call, by topic (empty when not reading)."""
        if self._ledger is None:
            return {}
        if self._missing and time.monotonic() - self._checked >= RECHECK_SECONDS:
            self._assign_found()
        if not self.starts:
            return {}
        found: dict[str, Records] = {}
        for message in self._consumer.consume(max_records, timeout):
            if message.error() is not None:
                log.warning("reference_kafka_error", error=message.error().str())
                continue
            topic = message.topic()
            records = found.setdefault(topic, Records())
            records.values.append(message.value())
            records.keys.append(message.key())
            records.partitions.append(message.partition())
            records.offsets.append(message.offset())
        return found

    def positions(self) -> dict[str, dict[int, int]]:
        """Per topic and partition, the next offset the fetcher returns (past transaction
        markers), where known."""
        tps = [TopicPartition(t, p) for t, starts in self.starts.items() for p in starts]
        if not tps:
            return {}
        try:
            known = self._consumer.position(tps)
        except KafkaException as exc:
            raise TransientError(f"cannot read reference positions: {exc.args[0].str()}") from exc
        out: dict[str, dict[int, int]] = {}
        for tp in known:
            if tp.offset >= 0:
                out.setdefault(tp.topic, {})[tp.partition] = tp.offset
        return out

    def ends(self) -> dict[str, dict[int, int]]:
        """Per topic and partition, the end of the log (for --until-idle)."""
        out: dict[str, dict[int, int]] = {}
        for topic, starts in self.starts.items():
            for partition in starts:
                _, high = offsets.log_bounds(self._consumer, topic, partition)
                out.setdefault(topic, {})[partition] = high
        return out

    def close(self) -> None:
        self._consumer.close()

    def _assign_found(self) -> None:
        self._checked = time.monotonic()
        assert self._ledger is not None
        assignment: list[TopicPartition] = []
        for topic in sorted(self._missing):
            count = cluster.partition_count(self._consumer, topic)
            if not count:
                log.warning("reference_topic_missing", topic=topic, next="looked for again")
                continue
            self._missing.discard(topic)
            self.topic_ids[topic] = cluster.topic_id(self._admin, topic)
            ledger = self._ledger(topic)
            starts: dict[int, Start] = {}
            for partition in range(count):
                low, _ = offsets.log_bounds(self._consumer, topic, partition)
                start = start_of(ledger.get(partition), self.topic_ids[topic], low)
                starts[partition] = start
                assignment.append(TopicPartition(topic, partition, start.offset))
            self.starts[topic] = starts
            log.info(
                "reference_topic_assigned",
                topic=topic,
                kind=self.kinds[topic],
                start_offsets={str(p): s.offset for p, s in starts.items()},
            )
        if assignment:
            self._consumer.incremental_assign(assignment)
