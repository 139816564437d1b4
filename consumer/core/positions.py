"""Where each partition stands (a ``Position``), and where reading starts on each assigned
partition: the warehouse's own ledger is the only authority (CONTRACT §4), never the group's
committed offset."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Iterator, Mapping
from dataclasses import dataclass

from consumer.core.records import Records


@dataclass(frozen=True)
class LedgerRow:
    """What the warehouse holds of one partition: the next offset to read, the topic id it
    belongs to (None in files written before topic ids were kept) and where reading began."""

    next_offset: int
    topic_id: str | None = None
    first_offset: int | None = None


@dataclass(frozen=True)
class Start:
    offset: int
    first_offset: int  # where this warehouse began reading the partition
    why: str  # "ledger", "new" (never seen) or "recreated" (another topic id)
    deleted: int = 0  # records retention deleted before the warehouse read them

    @property
    def skipped(self) -> tuple[int, int] | None:
        """The offsets [from, to) deleted before they were read, past the ledger."""
        return (self.offset - self.deleted, self.offset) if self.deleted else None


def start_of(row: LedgerRow | None, topic_id: str | None, log_start: int) -> Start:
    """The first offset to read, given the ledger row, the topic's id now and the partition's
    log start (records below it are gone)."""
    low = max(log_start, 0)
    if row is None:
        return Start(low, low, "new", deleted=low)
    if topic_id is not None and row.topic_id is not None and row.topic_id != topic_id:
        return Start(low, low, "recreated", deleted=low)
    first = row.first_offset if row.first_offset is not None else 0
    if row.next_offset < low:
        return Start(low, first, "ledger", deleted=low - row.next_offset)
    return Start(row.next_offset, first, "ledger")


@dataclass(frozen=True)
class Position:
    """Where a partition stands: everything below ``next_offset`` is behind (read, handed
    over or written, as the holder says). The warehouse's own position also knows where its
    reading of the partition began, and whether its ledger holds a row for it: only then is
    the offset committed to Kafka, so that the group's offsets never run ahead of (or beside)
    the ledger."""

    next_offset: int
    first_offset: int | None = None
    ledgered: bool = False


def next_offsets(positions: Mapping[int, Position]) -> dict[int, int]:
    """The next offset of each partition."""
    return {p: position.next_offset for p, position in positions.items()}


def next_offset_of(positions: Mapping[int, Position], partition: int, default: int) -> int:
    """The partition's next offset, or ``default`` where ``positions`` does not know it."""
    at = positions.get(partition)
    return default if at is None else at.next_offset


def any_beyond(positions: Mapping[int, Position], of: Mapping[int, Position]) -> bool:
    """Whether a partition of ``positions`` stands beyond where ``of`` has it (partitions
    ``of`` does not know are not compared)."""
    return any(
        position.next_offset > of[p].next_offset for p, position in positions.items() if p in of
    )


def positions_after(
    records: Records, reading: Mapping[int, Position] | None = None
) -> dict[int, Position]:
    """Where each partition stands after ``records``: past its last record, or where reading
    stands (``reading``: the consumer's positions, past transaction markers) when further."""
    last: dict[int, int] = {}
    for partition, offset in zip(records.partitions, records.offsets, strict=True):
        if offset >= last.get(partition, -1):
            last[partition] = offset + 1
    for partition, position in (reading or {}).items():
        if position.next_offset > last.get(partition, -1):
            last[partition] = position.next_offset
    return {partition: Position(offset) for partition, offset in last.items()}


class Positions(Mapping[int, Position]):
    """Where the warehouse stands on each owned partition, as its committed batches left it
    (read-only to all but its holder), and the offsets that retention deleted before they
    were read, until a batch records them."""

    def __init__(self) -> None:
        self._at: dict[int, Position] = {}
        self._skipped: dict[int, tuple[int, int]] = {}

    def __getitem__(self, partition: int) -> Position:
        return self._at[partition]

    def __iter__(self) -> Iterator[int]:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)

    def resume(self, starts: Mapping[int, Start]) -> None:
        """Partitions newly assigned, and where their reading starts."""
        for p, start in starts.items():
            self._at[p] = Position(start.offset, start.first_offset, start.why == "ledger")
            if start.skipped is not None:
                self._skipped[p] = start.skipped

    def forget(self, partitions: Iterable[int]) -> None:
        """Partitions given away."""
        for p in partitions:
            self._at.pop(p, None)

    def advance(self, offsets: Mapping[int, int]) -> None:
        """A batch is in the warehouse: its partitions stand where it left them, in the
        ledger."""
        for p, offset in offsets.items():
            known = self._at.get(p)
            self._at[p] = Position(offset, None if known is None else known.first_offset, True)

    def first_offsets(self) -> dict[int, int]:
        """Where reading of each partition began (for the ledger)."""
        return {p: at.first_offset for p, at in self._at.items() if at.first_offset is not None}

    def take_skipped(self) -> dict[int, tuple[int, int]]:
        """The offsets deleted before they were read, not yet handed to a batch; handed now."""
        skipped, self._skipped = self._skipped, {}
        return skipped

    def committable(self, partitions: Collection[int]) -> dict[int, int]:
        """The next offsets of these partitions that the ledger holds: what Kafka may get."""
        return {p: at.next_offset for p, at in self._at.items() if p in partitions and at.ledgered}
