"""KafkaSource over a fake confluent Consumer: the client settings, the cluster check, what a
poll keeps and drops, how commit failures are classified, and the watermark reads."""

from __future__ import annotations

from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from consumer.core.positions import LedgerRow, Position, Start
from consumer.errors import (
    BrokerUnavailableError,
    ConfigError,
    FencedError,
    TerminalError,
    TransientError,
)
from consumer.kafka.source import KafkaSource
from consumer.settings import KafkaSettings
from tests.fakes.confluent import (
    FakeClusterAdmin,
    FakeConsumer,
    failed_partition,
    message,
    topic_metadata,
)

TOPIC = "orders"


class Listener:
    """Records what the source tells the loop; answers ``claim`` from a dict of next offsets."""

    def __init__(self, ledger: dict[int, int] | None = None) -> None:
        self.stored = dict(ledger or {})
        self.calls: list[tuple[Any, ...]] = []

    def claim(self, partitions: list[int]) -> dict[int, LedgerRow]:
        return {p: LedgerRow(o, "topic-id-1", 0) for p, o in self.stored.items() if p in partitions}

    def partitions_assigned(self, partitions: list[int], starts: dict[int, Start]) -> None:
        offsets = {p: start.offset for p, start in starts.items()}
        self.calls.append(("assigned", sorted(partitions), offsets))

    def partitions_revoking(self, partitions: list[int]) -> None:
        self.calls.append(("revoking", sorted(partitions)))

    def partitions_lost(self, partitions: list[int]) -> None:
        self.calls.append(("lost", sorted(partitions)))


def make(
    instance_id: str | None = "orders-consumer-abc", **settings: Any
) -> tuple[KafkaSource, FakeConsumer]:
    made: list[FakeConsumer] = []

    def client(config: dict[str, Any]) -> FakeConsumer:
        made.append(FakeConsumer(config))
        return made[0]

    kafka = KafkaSettings("127.0.0.1:9", "g", topic=TOPIC, **settings)
    return KafkaSource(kafka, instance_id, client=client, admin=FakeClusterAdmin), made[0]


def subscribed(
    *partitions: int, ledger: dict[int, int] | None = None
) -> tuple[KafkaSource, FakeConsumer, Listener]:
    source, consumer = make()
    listener = Listener(ledger)
    source.subscribe(listener)
    if partitions:
        consumer.assign(TOPIC, *partitions)
    return source, consumer, listener


def positions_of(records: Any) -> list[tuple[int, int]]:
    return list(zip(records.partitions, records.offsets, strict=True))


def test_the_client_is_configured_for_manual_commits_and_static_membership() -> None:
    """Auto-commit and offset auto-store are off, the group and instance id are the settings',
    and the user's extra options reach the client."""
    _, consumer = make(options={"security.protocol": "SSL"})
    config = consumer.config
    assert config["enable.auto.commit"] is False
    assert config["enable.auto.offset.store"] is False
    assert config["group.id"] == "g"
    assert config["group.instance.id"] == "orders-consumer-abc"
    assert config["bootstrap.servers"] == "127.0.0.1:9"
    assert config["security.protocol"] == "SSL"
    assert callable(config["error_cb"])


def test_without_an_instance_id_the_member_is_dynamic() -> None:
    """No instance id: the client gets no group.instance.id at all."""
    _, consumer = make(instance_id=None)
    assert "group.instance.id" not in consumer.config


def test_a_setting_the_client_refuses_is_a_configuration_error() -> None:
    """A KafkaException from building the client is ConfigError (exit 2), one line."""

    def client(config: dict[str, Any]) -> Any:
        raise KafkaException(KafkaError(KafkaError._INVALID_ARG, "No such configuration property"))

    with pytest.raises(ConfigError, match="No such configuration property") as caught:
        KafkaSource(KafkaSettings("127.0.0.1:9", "g"), None, client=client)
    assert caught.value.exit_code == 2


def test_check_cluster_counts_the_topics_partitions() -> None:
    """An existing topic gives its partition count."""
    source, consumer = make()
    consumer.topics[TOPIC] = topic_metadata(4)
    assert source.check_cluster(1.0) == 4


@pytest.mark.parametrize(
    "topics",
    [{}, {TOPIC: topic_metadata(0, KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART))}],
    ids=["absent", "error"],
)
def test_check_cluster_reports_a_missing_topic_as_none(topics: dict[str, Any]) -> None:
    """A topic absent from the metadata, or listed with an error, is None (not a crash)."""
    source, consumer = make()
    consumer.topics = topics
    assert source.check_cluster(1.0) is None


def test_an_unreachable_cluster_is_broker_unavailable() -> None:
    """A metadata request that fails is BrokerUnavailableError naming the wait (exit 1)."""
    source, consumer = make()
    consumer.metadata_error = KafkaException(KafkaError(KafkaError._TRANSPORT, "refused"))
    with pytest.raises(BrokerUnavailableError, match="within 7s") as caught:
        source.check_cluster(7.0)
    assert caught.value.exit_code == 1


def test_subscribe_joins_only_the_configured_topic() -> None:
    """The source subscribes to its one topic."""
    _, consumer, _ = subscribed()
    assert consumer.subscribed == [TOPIC]


def test_assignment_is_reported_and_a_ledger_row_sets_the_start() -> None:
    """Assigned partitions become owned and are reported to the loop; one with a ledger row is
    assigned at the ledger's offset."""
    source, consumer, listener = subscribed(ledger={1: 42})
    tps = consumer.assign(TOPIC, 0, 1)
    assert source.assigned == {0, 1}
    assert consumer.owned == {0, 1}
    assert {tp.partition: tp.offset for tp in tps}[1] == 42
    kind, partitions, starts = listener.calls[-1]
    assert (kind, partitions, starts[1]) == ("assigned", [0, 1], 42)


def test_an_assignment_waits_out_a_partition_without_a_leader_yet(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A topic created a moment ago: the first watermark reads fail with
    NOT_LEADER_FOR_PARTITION; the assignment is made once the leader answers."""
    monkeypatch.setattr("consumer.kafka.offsets.time.sleep", lambda _s: None)
    source, consumer, listener = subscribed()
    consumer.watermarks = {0: (0, 7)}
    consumer.watermark_error = KafkaException(KafkaError(KafkaError.NOT_LEADER_FOR_PARTITION))
    consumer.watermark_failures = 3
    consumer.assign(TOPIC, 0)
    source.poll(10, 0.0, {})  # raises what the callback could not
    assert source.assigned == {0}
    assert listener.calls[-1] == ("assigned", [0], {0: 0})


def test_log_bounds_that_never_come_are_a_broker_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    """A leader that never answers within the patience, or an error that waiting cannot cure,
    stops the assignment with one line naming the partition."""
    clock = iter(range(0, 10_000, 5))
    monkeypatch.setattr("consumer.kafka.offsets.time.sleep", lambda _s: None)
    monkeypatch.setattr("consumer.kafka.offsets.time.monotonic", lambda: float(next(clock)))
    for code in (KafkaError.NOT_LEADER_FOR_PARTITION, KafkaError.TOPIC_AUTHORIZATION_FAILED):
        source, consumer, _ = subscribed()
        consumer.watermark_error = KafkaException(KafkaError(code))
        consumer.assign(TOPIC, 1)
        with pytest.raises(BrokerUnavailableError, match=r"orders \[1\] starts and ends"):
            source.poll(10, 0.0, {})
        assert source.assigned == frozenset()


def test_poll_drops_records_below_the_ledger_and_of_partitions_not_owned() -> None:
    """Records below skip_below or of an unowned partition are dropped; the rest keep their
    value, key and position, in order."""
    source, consumer, _ = subscribed(0, 1)
    consumer.messages.append(
        [
            message(0, 4, b"a"),
            message(0, 5, b"b", b"kb"),
            message(2, 0, b"unowned"),
            message(1, 9, b"c"),
            message(1, 10, b"d"),
        ]
    )
    records = source.poll(100, 0.1, {0: Position(5), 1: Position(10)})
    assert positions_of(records) == [(0, 5), (1, 10)]
    assert records.values == [b"b", b"d"]
    assert records.keys == [b"kb", None]


def test_poll_drops_errors_and_keeps_the_records_around_them() -> None:
    """A non-fatal message error (e.g. a partition EOF) is not a record and not a failure."""
    source, consumer, _ = subscribed(0)
    eof = KafkaError(KafkaError._PARTITION_EOF)
    consumer.messages.append([message(0, 0, b"a"), message(0, 1, None, error=eof), message(0, 1)])
    records = source.poll(100, 0.1, {})
    assert positions_of(records) == [(0, 0), (0, 1)]
    assert source.poll(100, 0.1, {}).values == []  # and the next poll does not raise


def test_a_fatal_message_error_stops_the_source() -> None:
    """A fatal error carried by a message makes polling raise TerminalError (by the next poll)."""
    source, consumer, _ = subscribed(0)
    fatal = KafkaError(KafkaError._FENCED, "fenced", fatal=True)
    consumer.messages.append([message(0, 0, error=fatal)])
    with pytest.raises(TerminalError, match="fenced"):
        for _ in range(2):
            source.poll(100, 0.1, {})


def test_a_fatal_client_error_stops_the_next_poll() -> None:
    """A fatal error reported through error_cb makes the next poll raise TerminalError; a
    non-fatal one does not."""
    source, consumer, _ = subscribed(0)
    consumer.config["error_cb"](KafkaError(KafkaError._TRANSPORT, "broker down"))
    consumer.config["error_cb"](KafkaError(KafkaError._TRANSPORT, "broker down"))
    assert len(source.poll(10, 0.1, {})) == 0
    consumer.config["error_cb"](KafkaError(KafkaError.FENCED_INSTANCE_ID, "fenced", fatal=True))
    with pytest.raises(TerminalError, match="fatal Kafka error"):
        source.poll(10, 0.1, {})


def test_revoked_and_lost_partitions_are_reported_and_no_longer_read() -> None:
    """Revocation and loss are told to the loop, unassigned, and their records dropped."""
    source, consumer, listener = subscribed(0, 1, 2)
    consumer.revoke(TOPIC, 1)
    consumer.lose(TOPIC, 2)
    assert listener.calls[-2:] == [("revoking", [1]), ("lost", [2])]
    assert source.assigned == {0}
    assert consumer.owned == {0}
    consumer.messages.append([message(1, 0), message(2, 0), message(0, 0)])
    assert positions_of(source.poll(10, 0.1, {})) == [(0, 0)]


def test_commit_sends_each_partitions_next_offset_synchronously() -> None:
    """A successful commit returns True after sending exactly the given next offsets."""
    source, consumer, _ = subscribed(0, 1)
    assert source.commit({0: 7, 1: 3}) is True
    assert sorted(consumer.commits[-1]) == [(TOPIC, 0, 7), (TOPIC, 1, 3)]


COMMIT_OUTCOMES = [
    (KafkaError(KafkaError.FENCED_INSTANCE_ID), FencedError),
    (KafkaError(KafkaError.REBALANCE_IN_PROGRESS), False),
    (KafkaError(KafkaError.ILLEGAL_GENERATION), False),
    (KafkaError(KafkaError.UNKNOWN_MEMBER_ID), False),
    (KafkaError(KafkaError._ASSIGNMENT_LOST), False),
    (KafkaError(KafkaError._FATAL, "fatal", fatal=True), TerminalError),
    (KafkaError(KafkaError.REQUEST_TIMED_OUT), TransientError),
    (KafkaError(KafkaError._TRANSPORT), TransientError),
]


@pytest.mark.parametrize(("error", "outcome"), COMMIT_OUTCOMES, ids=lambda v: str(v)[:40])
@pytest.mark.parametrize("how", ["raised", "per-partition"])
def test_commit_failures_are_classified(error: KafkaError, outcome: Any, how: str) -> None:
    """Fenced stops, a moved-on generation is False (data is safe in the ledger), fatal is
    terminal, anything else is retried -- whether raised or reported per partition."""
    source, consumer, _ = subscribed(0)
    if how == "raised":
        consumer.commit_raises = KafkaException(error)
    else:
        consumer.commit_results = [failed_partition(None), failed_partition(error)]
    if outcome is False:
        assert source.commit({0: 1}) is False
    else:
        with pytest.raises(outcome):
            source.commit({0: 1})


def test_end_offsets_asks_the_broker_for_every_owned_partition() -> None:
    """end_offsets reads uncached watermarks of exactly the owned partitions."""
    source, consumer, _ = subscribed(0, 2)
    consumer.watermarks = {0: (0, 10), 1: (0, 99), 2: (5, 8)}
    consumer.watermark_calls.clear()  # those of the assignment
    assert source.end_offsets() == {0: (0, 10), 2: (5, 8)}
    assert sorted(consumer.watermark_calls) == [(0, False), (2, False)]


def test_end_offsets_that_cannot_be_read_are_a_transient_error() -> None:
    """A failing watermark request is TransientError (retried), not a crash."""
    source, consumer, _ = subscribed(0)
    consumer.watermark_error = KafkaException(KafkaError(KafkaError._TIMED_OUT))
    with pytest.raises(TransientError, match="end offsets"):
        source.end_offsets()


def test_cached_watermarks_skip_unknown_partitions_and_clamp_the_low_mark() -> None:
    """Cached marks are read without a request; a partition not fetched yet is left out, and
    an unknown low mark is reported as 0."""
    source, consumer, _ = subscribed(0, 1, 2)
    consumer.watermark_calls.clear()  # those of the assignment
    consumer.cached = {0: (3, 10), 1: (-1001, 4)}
    assert source.cached_watermarks() == {0: (3, 10), 1: (0, 4)}
    assert {cached for _, cached in consumer.watermark_calls} == {True}


def test_positions_leave_out_partitions_without_one() -> None:
    """Only partitions with a known fetch position are reported."""
    source, consumer, _ = subscribed(0, 1)
    consumer.next_positions = {0: 12}
    assert source.positions() == {0: Position(12)}


def test_positions_that_cannot_be_read_are_a_transient_error() -> None:
    """A failing position request is TransientError."""
    source, consumer, _ = subscribed(0)
    consumer.position_error = KafkaException(KafkaError(KafkaError._STATE))
    with pytest.raises(TransientError, match="positions"):
        source.positions()


def test_close_closes_the_client() -> None:
    """close() leaves the group by closing the client."""
    source, consumer, _ = subscribed(0)
    source.close()
    assert consumer.closed


def test_an_assignment_starts_where_the_ledger_says_or_at_the_log_start() -> None:
    """The ledger is the only authority: a partition with a row starts there; one without
    starts at its log start (asked from the broker), whatever the group committed."""
    source, consumer = make()
    listener = Listener({0: 7})
    source.subscribe(listener)
    consumer.watermarks = {0: (0, 20), 1: (4, 9)}
    consumer.topics = {TOPIC: topic_metadata(2)}
    consumer.assign(TOPIC, 0, 1)
    assert listener.calls == [("assigned", [0, 1], {0: 7, 1: 4})]
    assert source.topic_id == "topic-id-1" and source.partition_count == 2


def test_a_file_consumer_holds_partitions_until_released() -> None:
    """hold pauses fetching of the partitions; release resumes all of them."""
    source, consumer, _ = subscribed(0, 1)
    source.hold([0, 1])
    source.release()
    assert [e for e in consumer.events if e.startswith(("pause", "resume"))] == [
        "pause:0,1",
        "resume:0,1",
    ]
