"""The consume loop, in-process: a real pipeline and a real DuckDB file over the in-memory
Kafka fake, checked against the oracle after rebalances, failures and signals."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from consumer.core.positions import next_offsets
from consumer.errors import TerminalError, TransientError
from consumer.faults import Faults
from tests.fakes.kafka import FakeTopic
from tests.unit.runtime.loopkit import (
    assert_exactly_once,
    ends,
    expected_of,
    ledger,
    rig,
    rows,
)


class FailAt(Faults):
    """Raises ``error`` once, at ``point`` of batch ``batch``."""

    def __init__(self, point: str, batch: int, error: BaseException) -> None:
        super().__init__()
        self.target = (point, batch)
        self.error = error
        self.fired = False

    def hit(self, point: str, batch_number: int) -> None:
        if (point, batch_number) == self.target and not self.fired:
            self.fired = True
            raise self.error


def test_a_whole_stream_lands_exactly_once_and_every_offset_is_committed(
    tmp_path: Path, topic: FakeTopic
) -> None:
    """Many small batches: every record in one place, ledger and group offsets at the end."""
    r = rig(tmp_path, topic)
    r.pipeline.run()
    r.warehouse.close()
    assert_exactly_once(r.path, expected_of(topic), "orders")
    assert ledger(r.path, "orders") == ends(topic)
    assert r.source.committed == ends(topic)
    assert r.source.closed and r.dead_letters.closed


def test_a_partition_revoked_with_a_batch_in_flight_is_committed_then_resumed_from_the_ledger(
    tmp_path: Path, topic: FakeTopic
) -> None:
    """Revocation drains and commits the batch in flight; re-assignment to the same member
    resumes from the ledger, so nothing is read twice or skipped."""
    r = rig(tmp_path, topic)
    seen: dict[str, int] = {}

    def act(poll: int) -> None:
        if poll == 3:
            r.source.revoke(1)
        if poll == 4:
            seen["revoked_at"] = len(r.source.commit_calls)
            seen["ledger"] = r.warehouse.ledger("orders")[1].next_offset
        if poll == 8:
            r.source.assign(1)

    r.source.before_poll = act
    r.pipeline.run()
    r.warehouse.close()
    # What was consumed of partition 1 before the revocation was committed at it.
    at_revoke = [c for c in r.source.commit_calls[: seen["revoked_at"]] if 1 in c]
    assert at_revoke and at_revoke[-1][1] == seen["ledger"] > 0
    assert_exactly_once(r.path, expected_of(topic), "orders")
    assert r.source.committed == ends(topic)


def test_a_lost_partition_is_not_committed_and_is_read_again_from_the_ledger(
    tmp_path: Path, topic: FakeTopic
) -> None:
    """A lost partition belongs to someone else: no commit for it until it comes back; its
    buffered records are dropped and re-read from the ledger."""
    r = rig(tmp_path, topic)
    marks: dict[str, int] = {}

    def act(poll: int) -> None:
        calls = len(r.source.commit_calls)
        if poll == 2:  # the loss is delivered inside this poll, with a batch in flight
            r.source.lose(2)
            marks["lost"] = calls
        elif "lost" in marks and "back" not in marks and calls >= marks["lost"] + 2:
            marks["back"] = calls
            r.source.assign(2)

    r.source.before_poll = act
    r.pipeline.run()
    r.warehouse.close()
    while_lost = r.source.commit_calls[marks["lost"] : marks["back"]]
    assert while_lost, "batches of the other partitions were committed meanwhile"
    assert all(2 not in call for call in while_lost)
    assert_exactly_once(r.path, expected_of(topic), "orders")
    assert r.source.committed == ends(topic)


def test_commits_skipped_by_a_rebalance_are_caught_up_by_the_next_batch(
    tmp_path: Path, topic: FakeTopic
) -> None:
    """A commit refused because the generation moved on is not lost: later commits cover
    every owned partition, so the group ends where the ledger is."""
    r = rig(tmp_path, topic)
    r.source.fail_next_commit(False)
    r.source.fail_next_commit(False)
    r.pipeline.run()
    r.warehouse.close()
    assert r.source.committed == ends(topic) == ledger(r.path, "orders")


def test_a_restart_resumes_from_the_ledger_not_from_the_group(
    tmp_path: Path, topic: FakeTopic
) -> None:
    """A second run on the same file continues where the ledger stands, whatever the group
    committed; a new file under the same group reads the whole topic."""
    first = rig(tmp_path, topic)
    first.source.before_poll = lambda poll: first.pipeline.request_stop() if poll == 2 else None
    first.pipeline.run()
    first.warehouse.close()
    assert 0 < sum(ledger(first.path, "orders").values()) < sum(ends(topic).values())
    second = rig(tmp_path, topic)
    second.pipeline.run()
    second.warehouse.close()
    assert_exactly_once(second.path, expected_of(topic), "orders")
    fresh = rig(tmp_path, topic, db="fresh.duckdb")
    fresh.pipeline.run()
    fresh.warehouse.close()
    assert_exactly_once(fresh.path, expected_of(topic), "orders")


def test_a_terminal_write_failure_stops_and_commits_nothing_after_it(
    tmp_path: Path, topic: FakeTopic
) -> None:
    """Fail closed: a batch that cannot be written stops the loop; no later batch is written,
    and neither the ledger nor the group moves past the last batch written."""
    faults = FailAt("statement:fact_sales", 2, TerminalError("disk on fire"))
    r = rig(tmp_path, topic, faults=faults)
    with pytest.raises(TerminalError, match="disk on fire"):
        r.pipeline.run()
    r.warehouse.close()
    assert rows(r.path, "SELECT batch_id FROM load_batches") == [(1,)]
    first = ledger(r.path, "orders")
    assert r.source.committed == first
    # The failed batch's partial inserts were rolled back with it.
    count = rows(r.path, "SELECT count(*) FROM dim_order WHERE batch_id > 1")
    assert count == [(0,)]


def test_a_write_failing_after_partial_inserts_is_rolled_back_and_retried(
    tmp_path: Path, topic: FakeTopic
) -> None:
    """A transient failure between two statements of a batch: the retry writes the whole
    batch once, with no half of the first attempt left behind."""
    faults = FailAt("statement:fact_sales", 2, TransientError("I/O hiccup"))
    r = rig(tmp_path, topic, faults=faults)
    r.pipeline.run()
    r.warehouse.close()
    assert faults.fired
    assert_exactly_once(r.path, expected_of(topic), "orders")
    retried = r.metrics.retries.labels("warehouse_write")._value.get()
    assert retried == 1


def test_a_commit_that_raises_after_taking_effect_is_not_written_twice(
    tmp_path: Path, topic: FakeTopic
) -> None:
    """An ambiguous COMMIT: the retry finds the batch in the ledger and goes on."""
    r = rig(tmp_path, topic, faults=Faults.parse("fail_db_commit@2"))
    r.pipeline.run()
    r.warehouse.close()
    assert_exactly_once(r.path, expected_of(topic), "orders")
    assert r.source.committed == ends(topic)


def test_a_dead_letter_failure_is_retried_and_every_reject_has_its_dead_letter(
    tmp_path: Path, topic: FakeTopic
) -> None:
    """A failed dead-letter flush rolls the batch back and retries it; at the end every
    rejected_events row has a dead letter."""
    r = rig(tmp_path, topic)
    r.dead_letters.failures = 2
    r.pipeline.run()
    r.warehouse.close()
    assert_exactly_once(r.path, expected_of(topic), "orders")
    rejected = set(rows(r.path, 'SELECT "partition", "offset", reason FROM rejected_events'))
    assert rejected and rejected <= set(r.dead_letters.published)


def test_a_failing_kafka_commit_is_retried(tmp_path: Path, topic: FakeTopic) -> None:
    """A transient commit error is retried until the group holds the batch's offsets."""
    r = rig(tmp_path, topic)
    r.source.fail_next_commit(TransientError("coordinator moving"))
    r.pipeline.run()
    r.warehouse.close()
    assert r.source.committed == ends(topic)
    assert r.metrics.retries.labels("kafka_commit")._value.get() == 1


def test_sigterm_drains_writes_and_commits_what_was_consumed(
    tmp_path: Path, topic: FakeTopic
) -> None:
    """SIGTERM only sets a flag: the loop stops reading, writes and commits what it has, and
    returns normally. The records of the poll that SIGTERM interrupted were still buffered:
    everything read is in the ledger and the group's offsets, and the warehouse holds exactly
    those records, as the oracle says; nothing after them was read."""
    r = rig(tmp_path, topic, until_idle=None)

    def act(poll: int) -> None:
        if poll == 4:
            os.kill(os.getpid(), signal.SIGTERM)

    r.source.before_poll = act
    r.pipeline.run()
    r.warehouse.close()
    written = ledger(r.path, "orders")
    assert r.source.polls == 4, "the loop read on after SIGTERM"
    read_to = next_offsets(r.source.positions())
    assert written == read_to, "records read before the stop were not written"
    assert r.source.committed == written
    read = FakeTopic(topic.name, topic.partitions)
    for p, end in written.items():
        for key, value in topic.log[p][:end]:
            read.produce(value, key, p)
    assert_exactly_once(r.path, expected_of(read), "orders")
    assert sum(written.values()) < sum(ends(topic).values())
