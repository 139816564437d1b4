"""Where reading starts on each assigned partition: the warehouse's own ledger is the only
authority (CONTRACT §4), never the group's committed offset."""

from __future__ import annotations

from dataclasses import dataclass


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
