"""Consumed records, column by column: what the core needs of Kafka messages."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Records:
    """Consumed records, column by column: what the transform and the sink need of them."""

    values: list[bytes | None] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)
    # Per partition, the offset and the Kafka timestamp (ms) of its first record here: the
    # oldest of them not yet committed is how far behind the consumer is in time.
    firsts: dict[int, tuple[int, int]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.values)

    def extend(self, records: Records) -> None:
        self.values.extend(records.values)
        self.keys.extend(records.keys)
        self.partitions.extend(records.partitions)
        self.offsets.extend(records.offsets)
        for partition, first in records.firsts.items():
            self.firsts.setdefault(partition, first)

    def without(self, partitions: set[int]) -> Records:
        keep = [i for i, p in enumerate(self.partitions) if p not in partitions]
        return Records(
            [self.values[i] for i in keep],
            [self.keys[i] for i in keep],
            [self.partitions[i] for i in keep],
            [self.offsets[i] for i in keep],
            {p: first for p, first in self.firsts.items() if p not in partitions},
        )
