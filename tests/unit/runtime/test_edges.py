"""The guarantee at its edges, in-process: transaction markers, retention, a re-created topic,
a shared group and lag before the first batch."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.errors import GroupConflictError
from tests.fakes.kafka import FakeSource, FakeTopic
from tests.unit.runtime.loopkit import (
    assert_exactly_once,
    expected_of,
    fill,
    ledger,
    rig,
    rows,
    stream,
)


def test_ledger_and_commits_reach_the_true_end_past_transaction_markers(tmp_path: Path) -> None:
    """A topic whose partitions end with commit markers: the ledger and the group's offsets
    reach the end offset, so lag is 0, and every record is still in one place."""
    topic = FakeTopic("orders", partitions=2)
    records = stream(120)
    fill(topic, records[:60])
    for p in (0, 1):
        topic.marker(p)
    fill(topic, records[60:])
    r = rig(tmp_path, topic)

    def commit_transaction_late(poll: int) -> None:
        # The closing markers come after their records were read, as a transaction's do.
        if poll == 6:
            for p in (0, 1):
                topic.marker(p)

    r.source.before_poll = commit_transaction_late
    r.pipeline.run()
    r.warehouse.close()
    ends = {p: topic.end(p) for p in (0, 1)}
    assert ledger(r.path, "orders") == ends == r.source.committed
    assert_exactly_once(r.path, expected_of(topic), "orders")
    assert all(v == 0 for v in r.metrics_lag().values())


def test_a_partition_never_seen_starts_at_its_log_start_and_reports_what_retention_deleted(
    tmp_path: Path,
) -> None:
    """Records deleted before the warehouse read them are counted in a metric, and reading
    begins at the log start, which the ledger keeps as where reading began."""
    topic = FakeTopic("orders", partitions=1)
    fill(topic, stream(80))
    topic.log_start[0] = 25
    r = rig(tmp_path, topic)
    r.pipeline.run()
    r.warehouse.close()
    assert r.metrics.deleted_before_read.labels("0")._value.get() == 25
    assert rows(r.path, "SELECT first_offset FROM kafka_offsets") == [(25,)]
    assert_exactly_once(r.path, expected_of(topic), "orders")


def test_a_recreated_topic_is_read_from_its_start(tmp_path: Path) -> None:
    """The same name with another topic id is another topic: all of it is read, although the
    ledger of the old one is further on."""
    old = FakeTopic("orders", partitions=1)
    fill(old, stream(60, seed=1))
    first = rig(tmp_path, old, source=FakeSource(old, topic_id="old-id"))
    first.pipeline.run()
    first.warehouse.close()
    new = FakeTopic("orders", partitions=1)
    renamed = [
        (k and k.replace(b"o-", b"n-"), v and v.replace(b'"o-', b'"n-'))
        for k, v in stream(30, seed=2)
    ]
    fill(new, renamed)
    assert new.end(0) < old.end(0)
    second = rig(tmp_path, new, source=FakeSource(new, topic_id="new-id"))
    second.pipeline.run()
    second.warehouse.close()
    assert ledger(second.path, "orders") == {0: new.end(0)}
    ids = rows(second.path, "SELECT DISTINCT kafka_topic_id FROM dim_order ORDER BY 1")
    assert ids == [("new-id",), ("old-id",)]
    loaded_new = rows(second.path, "SELECT count(*) FROM dim_order WHERE kafka_topic_id='new-id'")
    assert loaded_new[0][0] > 0


def test_a_file_consumer_that_never_gets_the_whole_topic_stops_naming_the_other_member(
    tmp_path: Path,
) -> None:
    """One writer per file: with only part of the topic assigned, nothing is read or written,
    and after the grace the consumer stops with one line naming the conflict."""
    topic = FakeTopic("orders", partitions=3)
    fill(topic, stream(60))
    source = FakeSource(topic, auto_assign=False)
    source.others = ["orders-consumer@10.0.0.7"]
    source.assign(0)
    r = rig(tmp_path, topic, source=source, grace=10.5, until_idle=None)
    r.pipeline._coverage._grace = 0.3  # the rule, not the wait, is under test
    with pytest.raises(GroupConflictError, match=r"shared with orders-consumer@10\.0\.0\.7"):
        r.pipeline.run()
    r.warehouse.close()
    assert rows(r.path, "SELECT count(*) FROM load_batches") == [(0,)]
    assert r.source.committed == {}


def test_a_file_consumer_that_had_the_whole_topic_keeps_writing_when_another_member_joins(
    tmp_path: Path,
) -> None:
    """The earlier member is not the one that stops: losing partitions to a newcomer is only
    reported, and what it reads stays exactly-once."""
    topic = FakeTopic("orders", partitions=3)
    fill(topic, stream(200))
    r = rig(tmp_path, topic)
    r.source.before_poll = lambda poll: r.source.revoke(2) if poll == 3 else None
    r.pipeline.run()
    r.warehouse.close()
    held = rows(r.path, "SELECT DISTINCT kafka_partition FROM dim_order ORDER BY 1")
    assert (0,) in held and (1,) in held
    assert ledger(r.path, "orders")[0] == topic.end(0)


def test_lag_is_published_as_soon_as_partitions_are_assigned(tmp_path: Path) -> None:
    """Before any batch commits, every assigned partition already has its lag."""
    topic = FakeTopic("orders", partitions=3)
    fill(topic, stream(60))
    r = rig(tmp_path, topic, until_idle=None)
    seen: dict[str, float] = {}

    def act(poll: int) -> None:
        if poll == 2:
            seen.update(r.metrics_lag())
            r.pipeline.request_stop()

    r.source.before_poll = act
    r.pipeline.run()
    r.warehouse.close()
    assert seen == {str(p): float(topic.end(p)) for p in range(3)}
