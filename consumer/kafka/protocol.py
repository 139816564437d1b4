"""What the runtime needs of Kafka: a source of records and a dead-letter sink."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import polars as pl

from consumer.core.positions import LedgerRow, Position, Start
from consumer.core.records import Records


class RebalanceListener(Protocol):
    """Told of partition changes, from inside ``Source.poll`` (on the polling thread)."""

    def claim(self, partitions: list[int]) -> dict[int, LedgerRow]:
        """Take these partitions over in the warehouse; their ledger rows."""
        ...

    def partitions_assigned(self, partitions: list[int], starts: dict[int, Start]) -> None: ...
    def partitions_revoking(self, partitions: list[int]) -> None: ...
    def partitions_lost(self, partitions: list[int]) -> None: ...


class Source(Protocol):
    topic: str
    group_id: str
    topic_id: str | None  # the Kafka topic id, as last asked (None: unknown)
    partition_count: int  # of the topic, as last asked (0: unknown)

    @property
    def assigned(self) -> frozenset[int]:
        """Partitions this member owns now."""
        ...

    def check_cluster(self, timeout: float) -> int | None:
        """Wait for the cluster; the topic's partition count, or None if it is missing."""
        ...

    def subscribe(self, listener: RebalanceListener) -> None: ...

    def poll(self, max_records: int, timeout: float, skip_below: Mapping[int, Position]) -> Records:
        """Up to ``max_records`` records of owned partitions, none below ``skip_below``."""
        ...

    def commit(self, next_offsets: Mapping[int, int]) -> bool:
        """Commit synchronously. False when the group generation moved on; TransientError
        when it may succeed later."""
        ...

    def end_offsets(self) -> dict[int, tuple[int, int]]:
        """(low, high) watermarks of every owned partition, asked from the broker."""
        ...

    def cached_watermarks(self) -> dict[int, tuple[int, int]]:
        """(low, high) of every owned partition as last seen (no request)."""
        ...

    def positions(self) -> dict[int, Position]:
        """Where the fetcher stands on each owned partition, past transaction markers."""
        ...

    def hold(self, partitions: list[int]) -> None:
        """Stop fetching these partitions, keeping their positions, until ``release``."""
        ...

    def release(self) -> None: ...

    def other_members(self) -> list[str]:
        """The group's other members, as ``client_id@host`` (best effort, for messages)."""
        ...

    def close(self) -> None: ...


class DeadLetterSink(Protocol):
    topic: str

    def ensure_topic(self, partitions: int) -> None: ...

    def publish(self, rejects: pl.DataFrame, batch_number: int) -> None:
        """Produce and flush one batch of rejects; raise unless every one was acknowledged."""
        ...

    def close(self) -> None: ...
