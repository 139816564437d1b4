"""Where partitions stand: the warehouse's positions as starts and committed batches move
them, and where a batch leaves each partition."""

from __future__ import annotations

from consumer.core.positions import (
    Position,
    Positions,
    Start,
    any_beyond,
    next_offset_of,
    next_offsets,
    positions_after,
)
from consumer.core.records import Records


def started() -> Positions:
    positions = Positions()
    positions.resume(
        {
            0: Start(40, 0, "ledger"),  # the ledger holds it
            1: Start(7, 7, "new", deleted=7),  # never read: retention deleted 0..7 first
        }
    )
    return positions


def test_only_partitions_the_ledger_holds_are_committable_until_a_batch_writes_them() -> None:
    """A partition never written stands at its log start but is not committed to Kafka: the
    group's offsets never run ahead of the ledger. A batch puts it in the ledger."""
    positions = started()
    assert positions.committable({0, 1}) == {0: 40}
    positions.advance({1: 9})
    assert positions.committable({0, 1}) == {0: 40, 1: 9}
    assert positions.committable({1}) == {1: 9}
    assert positions[1] == Position(9, 7, ledgered=True)


def test_what_retention_deleted_is_handed_to_one_batch_and_a_forgotten_partition_is_gone() -> None:
    positions = started()
    assert positions.take_skipped() == {1: (0, 7)}
    assert positions.take_skipped() == {}
    assert positions.first_offsets() == {0: 0, 1: 7}
    positions.forget([0])
    assert list(positions) == [1] and positions.committable({0, 1}) == {}
    assert next_offsets(positions) == {1: 7}


def test_a_batch_leaves_a_partition_past_its_last_record_or_where_reading_stands() -> None:
    """Reading past transaction markers stands further than the last record: the batch goes
    there; a partition with records only, past its last one."""
    records = Records([b"a", b"b", b"c"], [None] * 3, [0, 0, 1], [3, 5, 2])
    after = positions_after(records, {0: Position(8), 2: Position(4)})
    assert next_offsets(after) == {0: 8, 1: 3, 2: 4}
    assert next_offsets(positions_after(records, {0: Position(1)})) == {0: 6, 1: 3}


def test_beyond_compares_only_partitions_both_know() -> None:
    assert any_beyond({0: Position(5)}, {0: Position(4)})
    assert not any_beyond({0: Position(4), 3: Position(99)}, {0: Position(4)})
    assert next_offset_of({0: Position(4)}, 1, 11) == 11
