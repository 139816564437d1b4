"""The reference feed (runtime.reference_feed): who writes the reference data, what goes into
a batch, and where each change topic's ledger stands after it. The change topics are a small
fake here (the real reader is tests/integration, test_history and the lake scenarios)."""

from __future__ import annotations

import json
from pathlib import Path

from consumer.core.positions import LedgerRow, Start
from consumer.core.records import Records
from consumer.runtime.reference import ReferenceFiles
from consumer.runtime.reference_feed import ReferenceFeed


def user(uid: str, at: str) -> bytes:
    return json.dumps({"user_id": uid, "updated_at": at}).encode()


class FakeTopics:
    """Two partitions of one users topic; ``queued`` is what the next poll returns."""

    def __init__(self) -> None:
        self.kinds = {"users-cdc": "users"}
        self.topic_ids = {"users-cdc": "id-1"}
        self.starts: dict[str, dict[int, Start]] = {}
        self.queued: dict[str, Records] = {}
        self.reading: dict[str, dict[int, int]] = {}
        self.started_from: dict[int, LedgerRow] | None = None

    def start(self, ledger: object) -> None:
        self.started_from = ledger("users-cdc")  # type: ignore[operator]
        self.starts = {"users-cdc": {0: Start(5, 0, "ledger"), 1: Start(0, 0, "new")}}

    def stop(self) -> None:
        self.starts = {}

    def poll(self, max_records: int, timeout: float = 0.0) -> dict[str, Records]:
        queued, self.queued = self.queued, {}
        return queued

    def positions(self) -> dict[str, dict[int, int]]:
        return self.reading

    def ends(self) -> dict[str, dict[int, int]]:
        return {"users-cdc": {0: 8, 1: 1}}

    def close(self) -> None:
        pass


def feed_with(tmp_path: Path, topics: FakeTopics) -> ReferenceFeed:
    users = tmp_path / "users.csv"
    users.write_text("user_id,name,email,country,signup_date\nu-1,Ada,,FR,\n")
    ledger = {0: LedgerRow(5, "id-1", 0)}
    return ReferenceFeed(ReferenceFiles(users, None, 30), topics, lambda _topic: ledger)  # type: ignore[arg-type]


def test_only_the_writer_feeds_batches_and_the_files_go_once(tmp_path: Path) -> None:
    topics = FakeTopics()
    feed = feed_with(tmp_path, topics)
    feed.start()
    topics.queued = {
        "users-cdc": Records([user("u-2", "2025-08-01T00:00:00Z")], [b"u-2"], [0], [5])
    }
    feed.collect()
    assert not feed.ready() and feed.take() is None  # not the writer: nothing read, nothing given
    feed.take_over()
    assert topics.started_from == {0: LedgerRow(5, "id-1", 0)}  # read from the ledger
    feed.collect()
    batch = feed.take()
    assert batch is not None
    assert batch.rows["users"].select("user_id", "file", "offset").rows() == [
        ("u-1", "users.csv", None),
        ("u-2", None, 5),
    ]
    assert feed.take() is None  # the files' rows went once


def test_each_topics_stand_is_past_its_last_record_and_past_markers(tmp_path: Path) -> None:
    topics = FakeTopics()
    feed = feed_with(tmp_path, topics)
    feed.start()
    feed.take_over()
    feed.take()  # the file's rows
    topics.queued = {
        "users-cdc": Records(
            [user("u-3", "2025-08-02T00:00:00Z"), user("u-4", "2025-08-02T00:00:00Z")],
            [None, None], [0, 1], [5, 0],
        )
    }  # fmt: skip
    topics.reading = {"users-cdc": {0: 8, 1: 1}}  # partition 0: a transaction marker at 6, 7
    feed.collect()
    assert not feed.caught_up()  # records read and not handed over yet
    batch = feed.take()
    assert batch is not None
    stand = batch.stands["users-cdc"]
    assert (stand.topic_id, stand.next_offsets, stand.from_offsets) == (
        "id-1", {0: 8, 1: 1}, {0: 5, 1: 0},
    )  # fmt: skip
    assert feed.caught_up()


def test_giving_up_drops_what_was_read_and_stops_reading(tmp_path: Path) -> None:
    topics = FakeTopics()
    feed = feed_with(tmp_path, topics)
    feed.start()
    feed.take_over()
    feed.take()
    topics.queued = {"users-cdc": Records([user("u-5", "2025-08-03T00:00:00Z")], [None], [0], [5])}
    feed.collect()
    feed.give_up()
    assert topics.starts == {} and feed.take() is None and feed.caught_up()
