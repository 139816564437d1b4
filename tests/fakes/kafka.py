"""An in-memory Kafka topic and group member implementing ``consumer.kafka.protocol``.

Like librdkafka, rebalance callbacks run inside ``poll``: a test schedules an assignment, a
revocation or a loss, and the next poll delivers it. Commits can be made to fail, partitions
rewound (redelivery), and a hook runs before every poll so that a test can act while a batch
is in flight.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import polars as pl

from consumer.core.positions import Position, next_offset_of, start_of
from consumer.core.records import Records
from consumer.errors import TransientError
from consumer.kafka.protocol import RebalanceListener

Event = tuple[str, list[int]]
MARKER = (b"\x00marker", None)


@dataclass
class FakeTopic:
    """The log: per partition, a list of (key, value), plus a log start (retention)."""

    name: str
    partitions: int = 3
    log: dict[int, list[tuple[bytes | None, bytes | None]]] = field(default_factory=dict)
    log_start: dict[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for p in range(self.partitions):
            self.log.setdefault(p, [])
            self.log_start.setdefault(p, 0)

    def produce(self, value: bytes | None, key: bytes | None = None, partition: int = 0) -> int:
        self.log[partition].append((key, value))
        return len(self.log[partition]) - 1

    def marker(self, partition: int = 0) -> int:
        """A transaction commit marker: it takes an offset, and no reader ever gets it."""
        self.log[partition].append(MARKER)
        return len(self.log[partition]) - 1

    def end(self, partition: int) -> int:
        return len(self.log[partition])


class FakeSource:
    """One group member reading a ``FakeTopic``."""

    def __init__(
        self, topic: FakeTopic, *, auto_assign: bool = True, topic_id: str | None = "id-1"
    ) -> None:
        self.topic = topic.name
        self.group_id = "g"
        self.topic_id = topic_id
        self.partition_count = topic.partitions
        self._log = topic
        self._held: set[int] = set()
        self.others: list[str] = []
        self._assigned: set[int] = set()
        self._position: dict[int, int] = {}
        self._events: deque[Event] = deque()
        self._listener: RebalanceListener | None = None
        self._auto_assign = auto_assign
        self.committed: dict[int, int] = {}
        self.commit_calls: list[dict[int, int]] = []
        self.commit_failures: deque[BaseException | bool] = deque()
        self.before_poll: Callable[[int], None] | None = None
        self.polls = 0
        self.closed = False

    # -- what a test does --------------------------------------------------------------------

    def assign(self, *partitions: int) -> None:
        self._events.append(("assign", list(partitions)))

    def revoke(self, *partitions: int) -> None:
        self._events.append(("revoke", list(partitions)))

    def lose(self, *partitions: int) -> None:
        self._events.append(("lose", list(partitions)))

    def rewind(self, partition: int, offset: int) -> None:
        """Redeliver from ``offset`` (as after a broker-side seek or a fetch retry)."""
        self._position[partition] = offset

    def fail_next_commit(self, outcome: BaseException | bool) -> None:
        """The next commit raises ``outcome``, or returns it (False: generation moved on)."""
        self.commit_failures.append(outcome)

    # -- the Source protocol -----------------------------------------------------------------

    @property
    def assigned(self) -> frozenset[int]:
        return frozenset(self._assigned)

    def check_cluster(self, timeout: float) -> int | None:
        return self._log.partitions

    def subscribe(self, listener: RebalanceListener) -> None:
        self._listener = listener
        if self._auto_assign:
            self.assign(*range(self._log.partitions))

    def poll(self, max_records: int, timeout: float, skip_below: Mapping[int, Position]) -> Records:
        self.polls += 1
        if self.before_poll is not None:
            self.before_poll(self.polls)
        while self._events:
            self._deliver(*self._events.popleft())
        records = Records()
        owned = sorted(self._assigned - self._held)
        share = -(-max_records // len(owned)) if owned else 0  # fetches interleave partitions
        for p in owned:
            log, taken = self._log.log[p], 0
            while taken < share and len(records) < max_records and self._position[p] < len(log):
                offset = self._position[p]
                self._position[p] += 1
                if offset < next_offset_of(skip_below, p, 0):
                    continue
                if log[offset] is MARKER:
                    continue
                key, value = log[offset]
                records.extend(Records([value], [key], [p], [offset]))
                taken += 1
        if not records:
            time.sleep(min(timeout, 0.005))
        return records

    def commit(self, next_offsets: Mapping[int, int]) -> bool:
        self.commit_calls.append(dict(next_offsets))
        if self.commit_failures:
            outcome = self.commit_failures.popleft()
            if isinstance(outcome, BaseException):
                raise outcome
            if outcome is False:
                return False
        self.committed.update(next_offsets)
        return True

    def end_offsets(self) -> dict[int, tuple[int, int]]:
        return {p: (self._log.log_start[p], self._log.end(p)) for p in self._assigned}

    def cached_watermarks(self) -> dict[int, tuple[int, int]]:
        return self.end_offsets()

    def positions(self) -> dict[int, Position]:
        return {p: Position(self._position[p]) for p in self._assigned}

    def hold(self, partitions: list[int]) -> None:
        self._held |= set(partitions)

    def release(self) -> None:
        self._held.clear()

    def other_members(self) -> list[str]:
        return list(self.others)

    def close(self) -> None:
        self.closed = True

    # -- rebalance delivery ------------------------------------------------------------------

    def _deliver(self, kind: str, partitions: list[int]) -> None:
        listener = self._listener
        assert listener is not None, "poll before subscribe"
        if kind == "assign":
            ledger = listener.claim(partitions)
            starts = {
                p: start_of(ledger.get(p), self.topic_id, self._log.log_start[p])
                for p in partitions
            }
            self._position.update({p: start.offset for p, start in starts.items()})
            self._assigned |= set(partitions)
            listener.partitions_assigned(partitions, starts)
        elif kind == "revoke":
            listener.partitions_revoking(partitions)
            self._assigned -= set(partitions)
            self._held -= set(partitions)
        else:
            listener.partitions_lost(partitions)
            self._assigned -= set(partitions)
            self._held -= set(partitions)


class FakeDeadLetters:
    """Collects dead letters; can fail a number of publishes first."""

    def __init__(self, topic: str = "orders.dlq") -> None:
        self.topic = topic
        self.published: list[tuple[int, int, str]] = []  # partition, offset, reason
        self.failures = 0
        self.closed = False

    def ensure_topic(self, partitions: int) -> None:
        pass

    def publish(self, rejects: pl.DataFrame, batch_number: int) -> None:
        if self.failures:
            self.failures -= 1
            raise TransientError("dead-letter delivery failed: injected")
        rows = rejects.select("partition", "offset", "reason").iter_rows()
        self.published.extend((int(p), int(o), str(r)) for p, o, r in rows)

    def close(self) -> None:
        self.closed = True
