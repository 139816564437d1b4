"""The audit's arithmetic: every offset read in exactly one place, markers and aborted records
told apart from data, problems named by offset."""

from __future__ import annotations

from consumer.core.accounting import PartitionFacts, audit_partition, describe_problems


def facts(**overrides: object) -> PartitionFacts:
    base: dict[str, object] = {
        "partition": 0,
        "log_start": 0,
        "end": 10,
        "first_read": 0,
        "ledger": 10,
        "places": {"loaded": {0: 1, 1: 1, 2: 1}, "duplicate": {4: 1}, "rejected": {5: 1}},
        "data": {0, 1, 2, 4, 5},
        "aborted": {6, 7},
    }
    base.update(overrides)
    return PartitionFacts(**base)  # type: ignore[arg-type]


def test_a_complete_partition_counts_markers_and_aborted_records_apart() -> None:
    """Offsets 0-9: five records in place, two aborted, three markers (3, 8, 9)."""
    audit = audit_partition(facts())
    assert audit.complete and audit.lag == 0
    assert audit.counts["loaded"] == 3 and audit.counts["duplicate"] == 1
    assert audit.counts["aborted"] == 2 and audit.counts["markers"] == 3


def test_a_missing_record_a_doubled_one_and_a_place_without_a_record_are_named() -> None:
    """Offset 1 missing, offset 4 twice, offset 3 accounted although it holds no record."""
    places = {"loaded": {0: 1, 2: 1, 3: 1}, "duplicate": {4: 1}, "rejected": {4: 1, 5: 1}}
    audit = audit_partition(facts(places=places, data={0, 1, 2, 4, 5}))
    assert not audit.complete
    assert audit.missing == [1] and audit.doubled == [4] and audit.not_records == [3]
    lines = describe_problems([audit])
    assert lines == [
        "partition 0: 1 missing: 1",
        "partition 0: 1 doubled: 4",
        "partition 0: 1 accounted but not a record: 3",
    ]


def test_offsets_below_the_log_start_are_not_checked_but_still_counted() -> None:
    """Retention deleted 0-3 since they were read: the check starts at the log start."""
    audit = audit_partition(facts(log_start=4, data={4, 5}, aborted=set(), skipped=0))
    assert audit.complete
    assert audit.counts["deleted_since_read"] == 4


def test_many_problems_are_named_up_to_a_limit() -> None:
    """Fifty missing offsets: twenty are named, the rest counted."""
    audit = audit_partition(facts(end=60, ledger=60, places={}, data=set(range(50)), aborted=()))
    (line,) = describe_problems([audit])
    assert line.startswith("partition 0: 50 missing: 0, 1, 2") and line.endswith("and 30 more")
