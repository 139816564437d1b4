"""Kafka side of the consumer: group membership, rebalances, micro-batch polling, commits."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from confluent_kafka import (
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from consumer.core.positions import Position, Start, start_of
from consumer.core.records import Records
from consumer.errors import (
    BrokerUnavailableError,
    ConfigError,
    FencedError,
    TerminalError,
    TransientError,
)
from consumer.kafka import cluster, offsets
from consumer.kafka.config import consumer_config
from consumer.kafka.protocol import RebalanceListener
from consumer.settings import KafkaSettings
from orders_common import kafka
from orders_common.logs import get_logger

log = get_logger(__name__)

COMMIT_LOST_GENERATION = frozenset(
    {
        KafkaError.REBALANCE_IN_PROGRESS,
        KafkaError.ILLEGAL_GENERATION,
        KafkaError.UNKNOWN_MEMBER_ID,
        KafkaError._ASSIGNMENT_LOST,
    }
)


class KafkaSource:
    def __init__(
        self,
        settings: KafkaSettings,
        instance_id: str | None,
        *,
        client: Callable[[dict[str, Any]], Any] = Consumer,
        admin: Callable[[dict[str, Any]], Any] = AdminClient,
    ) -> None:
        self.topic = settings.topic
        self._listener: RebalanceListener | None = None
        self._fatal: KafkaError | None = None
        self._last_error: str | None = None
        self._callback_error: Exception | None = None
        self._marks: dict[int, tuple[int, int]] = {}
        self._held: set[int] = set()
        self.group_id = settings.group_id
        self.topic_id: str | None = None
        self.partition_count = 0
        self._assigned: set[int] = set()
        config = consumer_config(settings, instance_id)
        config["error_cb"] = self._error
        try:
            self._consumer = client(config)
            self._admin = admin(
                kafka.client_config(
                    settings.bootstrap_servers,
                    "orders-consumer-admin",
                    service="consumer",
                    options=settings.options,
                )
            )
        except KafkaException as exc:
            raise ConfigError(f"invalid Kafka client setting: {exc.args[0].str()}") from exc

    @property
    def assigned(self) -> frozenset[int]:
        return frozenset(self._assigned)

    @property
    def _callbacks(self) -> RebalanceListener:
        if self._listener is None:
            raise RuntimeError("rebalance callback before subscribe()")
        return self._listener

    def check_cluster(self, timeout: float) -> int | None:
        """Wait for the cluster; return the topic's partition count, or None if it is missing."""
        try:
            metadata = self._consumer.list_topics(self.topic, timeout=timeout)
        except KafkaException as exc:
            raise BrokerUnavailableError(
                f"cannot reach Kafka within {timeout:.0f}s: {exc.args[0].str()}"
            ) from exc
        topic = metadata.topics.get(self.topic)
        if topic is None or topic.error is not None:
            return None
        return len(topic.partitions)

    def subscribe(self, listener: RebalanceListener) -> None:
        self._listener = listener
        self._consumer.subscribe(
            [self.topic], on_assign=self._assign, on_revoke=self._revoke, on_lost=self._lost
        )

    def poll(self, max_records: int, timeout: float, skip_below: Mapping[int, Position]) -> Records:
        """Up to ``max_records`` records; offsets below ``skip_below[partition]`` are dropped."""
        messages: list[Message] = self._consumer.consume(max_records, timeout)
        if self._callback_error is not None:
            failure, self._callback_error = self._callback_error, None
            raise failure
        if self._fatal is not None:
            raise TerminalError(f"fatal Kafka error: {self._fatal.str()}")
        if any(message.error() is not None for message in messages):
            for message in messages:
                if (error := message.error()) is not None:
                    self._error(error)
            messages = [message for message in messages if message.error() is None]
        # Comprehensions, not one loop: this runs for every record and is on the hot path.
        partitions: list[int] = [message.partition() for message in messages]  # type: ignore[misc]
        offsets: list[int] = [message.offset() for message in messages]  # type: ignore[misc]
        # Records already in the warehouse (below the ledger), or of a partition no longer
        # owned: neither may be written again.
        owned = self._assigned
        below = {p: at.next_offset for p, at in skip_below.items()}
        stale = [
            i
            for i, (p, o) in enumerate(zip(partitions, offsets, strict=True))
            if o < below.get(p, 0) or p not in owned
        ]
        if stale:
            dropped = set(stale)
            messages = [m for i, m in enumerate(messages) if i not in dropped]
            partitions = [message.partition() for message in messages]  # type: ignore[misc]
            offsets = [message.offset() for message in messages]  # type: ignore[misc]
        values = [message.value() for message in messages]
        keys = [message.key() for message in messages]
        # Each partition's first message (the dict keeps the last index given: reversed, the
        # first), built in C rather than by a loop over every record.
        first = dict(zip(reversed(partitions), range(len(partitions) - 1, -1, -1), strict=True))
        firsts = {p: (offsets[i], messages[i].timestamp()[1]) for p, i in first.items()}
        return Records(values, keys, partitions, offsets, firsts)

    def commit(self, next_offsets: Mapping[int, int]) -> bool:
        """Commit synchronously. False when the group generation moved on (data is safe in the
        ledger and the next owner resumes from it); TransientError when it may succeed later."""
        offsets = [TopicPartition(self.topic, p, o) for p, o in next_offsets.items()]
        try:
            results = self._consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as exc:
            return self._commit_failed(exc.args[0])
        failed = [tp.error for tp in results or [] if tp.error is not None]
        return self._commit_failed(failed[0]) if failed else True

    def _commit_failed(self, error: KafkaError) -> bool:
        if error.code() == KafkaError.FENCED_INSTANCE_ID:
            raise FencedError("another consumer took over this group.instance.id; stopping")
        if error.code() in COMMIT_LOST_GENERATION:
            log.warning("commit_skipped_rebalance", error=error.str())
            return False
        if error.fatal():
            raise TerminalError(f"Kafka commit failed: {error.str()}")
        raise TransientError(f"Kafka commit failed: {error.str()}")

    def end_offsets(self, timeout: float = 10.0) -> dict[int, tuple[int, int]]:
        """(low, high) watermarks of every assigned partition, asked from the broker."""
        try:
            return {
                p: self._consumer.get_watermark_offsets(
                    TopicPartition(self.topic, p), timeout=timeout, cached=False
                )
                for p in sorted(self.assigned)
            }
        except KafkaException as exc:
            raise TransientError(f"cannot read end offsets: {exc.args[0].str()}") from exc

    def cached_watermarks(self) -> dict[int, tuple[int, int]]:
        """(low, high) of every assigned partition as last seen by the fetcher (no request)."""
        marks = {}
        for p in self.assigned:
            low, high = self._consumer.get_watermark_offsets(
                TopicPartition(self.topic, p), cached=True
            )
            if high >= 0:
                marks[p] = (max(low, 0), high)
            elif p in self._marks:  # nothing fetched yet: as asked at assignment
                marks[p] = self._marks[p]
        return marks

    def positions(self) -> dict[int, Position]:
        """Where the fetcher stands on each assigned partition: the next offset it will
        return (past any transaction markers), where known."""
        try:
            tps = self._consumer.position([TopicPartition(self.topic, p) for p in self.assigned])
        except KafkaException as exc:
            raise TransientError(f"cannot read positions: {exc.args[0].str()}") from exc
        return {tp.partition: Position(tp.offset) for tp in tps if tp.offset >= 0}

    def close(self) -> None:
        self._consumer.close()

    def _error(self, error: KafkaError) -> None:
        if error.fatal():
            self._fatal = error
        text = error.str()
        if text != self._last_error:  # a dead broker repeats the same error every second
            log.warning("kafka_error", error=text, fatal=error.fatal(), code=error.name())
            self._last_error = text

    def _assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        """Start every partition where the warehouse's ledger says, whatever the group
        committed: a partition the warehouse has never seen, or of a re-created topic (another
        topic id), starts at its log start."""
        try:
            self._describe()
            ledger = self._callbacks.claim([tp.partition for tp in partitions])
            starts: dict[int, Start] = {}
            for tp in partitions:
                low, high = offsets.log_bounds(self._consumer, self.topic, tp.partition)
                if high >= 0:
                    self._marks[tp.partition] = (max(low, 0), high)
                start = start_of(ledger.get(tp.partition), self.topic_id, low)
                tp.offset = start.offset
                starts[tp.partition] = start
            consumer.incremental_assign(partitions)
            numbers = [tp.partition for tp in partitions]
            self._assigned |= set(numbers)
            self._callbacks.partitions_assigned(numbers, starts)
        except Exception as exc:  # raised again from poll(), outside librdkafka's callback
            self._callback_error = exc

    def _revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._give_up(consumer, partitions, self._callbacks.partitions_revoking)

    def _lost(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._give_up(consumer, partitions, self._callbacks.partitions_lost)

    def _give_up(
        self,
        consumer: Consumer,
        partitions: list[TopicPartition],
        tell: Callable[[list[int]], None],
    ) -> None:
        """Tell the loop (revoked: it drains and commits; lost: it drops), then unassign."""
        numbers = [tp.partition for tp in partitions]
        try:
            tell(numbers)
        except Exception as exc:  # raised again from poll(), outside librdkafka's callback
            self._callback_error = exc
        consumer.incremental_unassign(partitions)
        self._assigned -= set(numbers)
        self._held -= set(numbers)

    # -- topic identity, group, flow control -------------------------------------------------

    def _describe(self) -> None:
        """The topic's id and partition count, asked from the cluster (a re-created topic has
        another id). Without an answer the id stays as it was: the name alone then."""
        self.partition_count = cluster.partition_count(self._consumer, self.topic) or 0
        self.topic_id = cluster.topic_id(self._admin, self.topic) or self.topic_id

    def other_members(self) -> list[str]:
        return cluster.other_members(self._admin, self.group_id, self._consumer.memberid())

    def hold(self, partitions: list[int]) -> None:
        """Stop fetching these partitions (their position stays) until ``release``."""
        if partitions:
            self._consumer.pause([TopicPartition(self.topic, p) for p in partitions])
            self._held |= set(partitions)

    def release(self) -> None:
        if self._held:
            self._consumer.resume([TopicPartition(self.topic, p) for p in sorted(self._held)])
            self._held.clear()
