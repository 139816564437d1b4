"""The audit's arithmetic (CONTRACT §5): does every offset a warehouse has read have exactly
one place? Pure: the offsets come from the warehouse and from the topic, read elsewhere."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

SHOWN = 20  # offsets named per problem, at most


@dataclass(frozen=True)
class PartitionFacts:
    """What is known of one partition. Offsets are those of ``[verified_from, ledger)``."""

    partition: int
    log_start: int
    end: int
    first_read: int  # where the warehouse began reading
    ledger: int  # the warehouse's next offset
    places: Mapping[str, Mapping[int, int]]  # outcome -> offset -> rows at that offset
    data: Collection[int]  # offsets a read_committed reader gets in the verified range
    aborted: Collection[int] = ()  # offsets of aborted transactions (a read_uncommitted extra)
    skipped: int = 0  # offsets recorded as deleted by retention before they were read
    redriven: int = 0  # rejected offsets loaded or dropped since by a redrive (informative)

    @property
    def verified_from(self) -> int:
        """Offsets below the log start are gone: they cannot be checked against the topic."""
        return max(self.first_read, self.log_start)


@dataclass(frozen=True)
class PartitionAudit:
    partition: int
    log_start: int
    first_read: int
    ledger: int
    end: int
    counts: dict[str, int]
    missing: list[int] = field(default_factory=list)
    doubled: list[int] = field(default_factory=list)
    not_records: list[int] = field(default_factory=list)  # accounted, but not data

    @property
    def lag(self) -> int:
        return max(0, self.end - self.ledger)

    @property
    def complete(self) -> bool:
        return not (self.missing or self.doubled or self.not_records)


def audit_partition(facts: PartitionFacts) -> PartitionAudit:
    low, high = facts.verified_from, facts.ledger
    seen: dict[int, int] = {}
    counts: dict[str, int] = {}
    for outcome, offsets in facts.places.items():
        counts[outcome] = sum(offsets.values())
        for offset, rows in offsets.items():
            seen[offset] = seen.get(offset, 0) + rows
    data = {o for o in facts.data if low <= o < high}
    aborted = {o for o in facts.aborted if low <= o < high} - data
    verified = {o: n for o, n in seen.items() if low <= o < high}
    counts["aborted"] = len(aborted)
    counts["markers"] = max(0, (high - low) - len(data) - len(aborted)) if high > low else 0
    counts["retention_skipped"] = facts.skipped
    counts["redriven"] = facts.redriven
    deleted = max(0, min(facts.log_start, high) - facts.first_read)
    counts["deleted_since_read"] = max(0, deleted - facts.skipped)
    return PartitionAudit(
        partition=facts.partition,
        log_start=facts.log_start,
        first_read=facts.first_read,
        ledger=facts.ledger,
        end=facts.end,
        counts=counts,
        missing=sorted(data - verified.keys()),
        doubled=sorted(o for o, n in seen.items() if n > 1),
        not_records=sorted(verified.keys() - data),
    )


def describe_problems(audits: list[PartitionAudit]) -> list[str]:
    """One line per partition with a problem, naming the first offsets."""
    lines = []
    for a in audits:
        for label, offsets in (
            ("missing", a.missing),
            ("doubled", a.doubled),
            ("accounted but not a record", a.not_records),
        ):
            if offsets:
                named = ", ".join(map(str, offsets[:SHOWN]))
                more = f" and {len(offsets) - SHOWN} more" if len(offsets) > SHOWN else ""
                lines.append(f"partition {a.partition}: {len(offsets)} {label}: {named}{more}")
    return lines
