"""Duck-typed stand-ins for confluent-kafka's Consumer, Producer and AdminClient: what the
consumer's Kafka layer calls, with the answers and failures a test sets up. Messages,
errors and TopicPartitions are confluent-kafka's own objects."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from types import SimpleNamespace
from typing import Any

from confluent_kafka import OFFSET_INVALID, KafkaError, KafkaException, Message, TopicPartition

Callback = Callable[[Any, list[TopicPartition]], None]


class FakeConsumer:
    """A consumer client: ``consume`` hands out the queued message lists; rebalances are
    delivered by the test through ``assign``, ``revoke`` and ``lose``."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.messages: deque[list[Message]] = deque()
        self.topics: dict[str, Any] = {}
        self.metadata_error: KafkaException | None = None
        self.commit_raises: KafkaException | None = None
        self.commit_results: list[Any] | None = None
        self.commits: list[list[tuple[str, int, int]]] = []
        self.watermarks: dict[int, tuple[int, int]] = {}
        self.cached: dict[int, tuple[int, int]] = {}
        self.watermark_calls: list[tuple[int, bool]] = []
        self.watermark_error: KafkaException | None = None
        self.watermark_failures = -1  # how many calls raise watermark_error (-1: all)
        self.next_positions: dict[int, int] = {}
        self.position_error: KafkaException | None = None
        self.owned: set[int] = set()
        self.events: list[str] = []
        self.callbacks: dict[str, Callback] = {}
        self.subscribed: list[str] = []
        self.closed = False

    # -- what a test does --------------------------------------------------------------------

    def assign(self, topic: str, *partitions: int) -> list[TopicPartition]:
        tps = [TopicPartition(topic, p) for p in partitions]
        self.callbacks["on_assign"](self, tps)
        return tps

    def revoke(self, topic: str, *partitions: int) -> None:
        self.callbacks["on_revoke"](self, [TopicPartition(topic, p) for p in partitions])

    def lose(self, topic: str, *partitions: int) -> None:
        self.callbacks["on_lost"](self, [TopicPartition(topic, p) for p in partitions])

    # -- the client's API --------------------------------------------------------------------

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        if self.metadata_error is not None:
            raise self.metadata_error
        return SimpleNamespace(topics=self.topics)

    def subscribe(
        self, topics: list[str], on_assign: Callback, on_revoke: Callback, on_lost: Callback
    ) -> None:
        self.subscribed = list(topics)
        self.callbacks = {"on_assign": on_assign, "on_revoke": on_revoke, "on_lost": on_lost}

    def consume(self, num_messages: int = 1, timeout: float = -1) -> list[Message]:
        return self.messages.popleft() if self.messages else []

    def commit(self, offsets: list[TopicPartition], asynchronous: bool = True) -> Any:
        self.commits.append([(tp.topic, tp.partition, tp.offset) for tp in offsets])
        if self.commit_raises is not None:
            raise self.commit_raises
        return self.commit_results if self.commit_results is not None else offsets

    def committed(self, partitions: list[TopicPartition], timeout: float = -1) -> Any:
        return [TopicPartition(tp.topic, tp.partition, OFFSET_INVALID) for tp in partitions]

    def get_watermark_offsets(
        self, partition: TopicPartition, timeout: float = -1, cached: bool = False
    ) -> tuple[int, int]:
        self.watermark_calls.append((partition.partition, cached))
        if self.watermark_error is not None and self.watermark_failures != 0:
            self.watermark_failures -= 1
            raise self.watermark_error
        marks = self.cached if cached else self.watermarks
        return marks.get(partition.partition, (OFFSET_INVALID, OFFSET_INVALID))

    def position(self, partitions: list[TopicPartition]) -> list[TopicPartition]:
        if self.position_error is not None:
            raise self.position_error
        return [
            TopicPartition(tp.topic, tp.partition, self.next_positions.get(tp.partition, -1001))
            for tp in partitions
        ]

    def incremental_assign(self, partitions: list[TopicPartition]) -> None:
        self.events.append("incremental_assign")
        self.owned |= {tp.partition for tp in partitions}

    def incremental_unassign(self, partitions: list[TopicPartition]) -> None:
        self.events.append("incremental_unassign")
        self.owned -= {tp.partition for tp in partitions}

    def memberid(self) -> str:
        return "member-me"

    def pause(self, partitions: list[TopicPartition]) -> None:
        self.events.append("pause:" + ",".join(str(tp.partition) for tp in partitions))

    def resume(self, partitions: list[TopicPartition]) -> None:
        self.events.append("resume:" + ",".join(str(tp.partition) for tp in partitions))

    def close(self) -> None:
        self.closed = True


class FakeClusterAdmin:
    """The admin calls of the source: a topic id, and the group's members."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.topic_id: str | None = "topic-id-1"
        self.members: list[Any] = []

    def describe_topics(self, topics: Any) -> dict[str, Future[Any]]:
        future: Future[Any] = Future()
        if self.topic_id is None:
            future.set_exception(KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART)))
        else:
            future.set_result(SimpleNamespace(topic_id=self.topic_id))
        return {name: future for name in topics.topic_names}

    def describe_consumer_groups(self, groups: list[str]) -> dict[str, Future[Any]]:
        future: Future[Any] = Future()
        future.set_result(SimpleNamespace(members=self.members))
        return {group: future for group in groups}


def message(
    partition: int,
    offset: int,
    value: bytes | None = b"{}",
    key: bytes | None = None,
    *,
    topic: str = "orders",
    error: KafkaError | None = None,
) -> Message:
    return Message(
        topic=topic, partition=partition, offset=offset, value=value, key=key, error=error
    )


def topic_metadata(partitions: int, error: KafkaError | None = None) -> Any:
    return SimpleNamespace(partitions={p: object() for p in range(partitions)}, error=error)


def failed_partition(error: KafkaError | None) -> Any:
    """A commit result entry carrying a per-partition error (TopicPartition.error is read-only)."""
    return SimpleNamespace(error=error)


class FakeProducer:
    """A producer: records what is produced; deliveries are acknowledged at ``flush`` unless
    ``fail_delivery`` says otherwise. ``buffer_full`` BufferErrors come first."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.produced: list[dict[str, Any]] = []
        self.pending: list[Callable[[KafkaError | None, Any], None]] = []
        self.buffer_full = 0
        self.polls = 0
        self.produce_error: KafkaException | None = None
        self.fail_delivery: KafkaError | None = None
        self.leave_unacknowledged = 0
        self.flushes = 0

    def produce(self, topic: str, **kwargs: Any) -> None:
        if self.produce_error is not None:
            raise self.produce_error
        if self.buffer_full:
            self.buffer_full -= 1
            raise BufferError("Local: Queue full")
        self.produced.append({"topic": topic, **kwargs})
        self.pending.append(kwargs["on_delivery"])

    def poll(self, timeout: float = -1) -> int:
        self.polls += 1
        return 0

    def flush(self, timeout: float = -1) -> int:
        self.flushes += 1
        keep = self.leave_unacknowledged
        delivered = self.pending[: len(self.pending) - keep] if keep else self.pending
        for on_delivery in delivered:
            on_delivery(self.fail_delivery, None)
        self.pending = self.pending[len(delivered) :]
        return len(self.pending)


class FakeAdmin:
    """An admin client: ``topics`` is the cluster's metadata; ``create_topics`` resolves each
    future with ``create_error``, or success, or (``hang``) never."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.topics: dict[str, Any] = {}
        self.created: list[Any] = []
        self.create_error: BaseException | None = None
        self.hang = False  # leave every future unresolved (a broker that never answers)
        self.metadata_error: KafkaException | None = None

    def list_topics(self, topic: str | None = None, timeout: float = -1) -> Any:
        if self.metadata_error is not None:
            raise self.metadata_error
        return SimpleNamespace(topics=self.topics)

    def create_topics(self, new_topics: list[Any]) -> dict[str, Future[None]]:
        self.created.extend(new_topics)
        futures: dict[str, Future[None]] = {}
        for new in new_topics:
            future: Future[None] = Future()
            if self.create_error is not None:
                future.set_exception(self.create_error)
            elif not self.hang:
                future.set_result(None)
            futures[new.topic] = future
        return futures
