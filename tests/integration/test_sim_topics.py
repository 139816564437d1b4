"""`orders-sim publish` with change topics on a real broker (issue 25): every version and rate
reaches its topic, keyed by its natural key, and transactions never take one away."""

from __future__ import annotations

import csv
import io
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from producer_sim.config import Settings, reference_stream
from producer_sim.events import generate_records
from tests.integration.simcli import publish_cli
from tests.integration.test_sim_publish import by_key, read_topic
from tests.integration.test_sim_transactional import read_all
from tests.unit.refstream import instant, parse, stamp_text

pytestmark = pytest.mark.integration
STREAMS = ("users", "products", "fx")


@pytest.fixture
def change_topics(kafka_admin: AdminClient) -> Iterator[dict[str, str]]:
    """Names for the three change topics, left for the simulator to create; deleted after."""
    names = {stream: f"{stream}-{uuid.uuid4().hex[:12]}" for stream in STREAMS}
    yield names
    existing = set(kafka_admin.list_topics(timeout=10).topics)
    gone = [name for name in names.values() if name in existing]
    if gone:
        for future in kafka_admin.delete_topics(gone).values():
            future.result(timeout=30)


def flags(topics: dict[str, str]) -> list[str]:
    return [arg for s in STREAMS for arg in (f"--{s}-topic", topics[s])]


def expected(settings: Settings) -> dict[str, list[tuple[bytes | None, bytes | None]]]:
    """The records each change topic should hold, in stream order, from the same settings."""
    records: dict[str, list[tuple[bytes | None, bytes | None]]] = defaultdict(list)
    for record in generate_records(settings):
        stream = reference_stream(record.kind)
        if stream is not None:
            records[stream].append((record.key, record.value))
    return records


def test_publish_fills_each_change_topic_with_every_version_and_rate(
    kafka_bootstrap: str, topic: str, change_topics: dict[str, str], tmp_path: Path
) -> None:
    """3,000 orders with --users-topic, --products-topic and --fx-topic: the topics are created
    with --partitions, hold exactly the stream's reference records (each key in one partition,
    in order), the CSVs' rows are the newest version each users topic key has, and the summary
    counts what went out."""
    ref = tmp_path / "ref"
    summary = publish_cli(
        kafka_bootstrap, topic, tmp_path, "--orders", "3000", "--seed", "5", "--partitions",
        "2", "--reference-dir", str(ref), *flags(change_topics),
    )  # fmt: skip
    settings = Settings(seed=5, orders=3000, **{f"{s}_topic": n for s, n in change_topics.items()})
    want = expected(settings)
    kinds = Counter(r.kind for r in generate_records(settings) if reference_stream(r.kind))
    assert summary["reference_by_kind"] == dict(kinds)
    assert summary["reference_topics"] == change_topics
    newest: dict[str, tuple[str, dict[str, Any]]] = {}
    for stream, name in change_topics.items():
        partitions = read_topic(kafka_bootstrap, name)
        assert len(partitions) == 2, stream  # created with --partitions
        in_topic = [record for part in partitions.values() for record in part]
        assert by_key(in_topic) == by_key(want[stream])  # every record, in order per key
        homes: dict[bytes | None, set[int]] = defaultdict(set)
        for partition, records in partitions.items():
            for key, _ in records:
                homes[key].add(partition)
        assert all(len(home) == 1 for home in homes.values())
        if stream == "users":
            for key, value in in_topic:
                doc = parse(value or b"")
                assert key == doc["user_id"].encode()
                held = newest.get(doc["user_id"])
                if held is None or instant(doc["updated_at"]) > instant(held[0]):
                    newest[doc["user_id"]] = (doc["updated_at"], doc)
        if stream == "fx":
            assert {parse(v or b"")["currency"] for _, v in in_topic} == {
                "EUR",
                "GBP",
                "CAD",
                "BRL",
            }
    rows = list(csv.DictReader(io.StringIO((ref / "users.csv").read_text("utf-8"), newline="")))
    assert rows and len(newest) > len(rows)  # the late-arriving users are in the topic only
    for row in rows:
        stamp, doc = newest[row["user_id"]]
        assert row["updated_at"] == stamp_text(instant(stamp))
        assert (row["country"], row["email"], row["name"]) == (
            doc["country"], doc["email"], doc["name"],
        )  # fmt: skip


def test_transactions_cover_the_orders_topic_only(
    kafka_bootstrap: str, topic: str, change_topics: dict[str, str], tmp_path: Path
) -> None:
    """--transactional with 30% of transactions aborted: orders are lost with them, but a
    read_committed reader gets every record of the change topics."""
    summary = publish_cli(
        kafka_bootstrap, topic, tmp_path, "--orders", "1500", "--seed", "4", "--transactional",
        "--transaction-size", "40", "--abort-rate", "0.3", "--state-dir", str(tmp_path / "s"),
        *flags(change_topics),
    )  # fmt: skip
    assert summary["aborted_transactions"] > 0
    settings = Settings(seed=4, orders=1500, **{f"{s}_topic": n for s, n in change_topics.items()})
    want = expected(settings)
    for stream, name in change_topics.items():
        committed = Counter(read_all(kafka_bootstrap, name, "read_committed"))
        assert committed == Counter(want[stream]), stream
    orders = Counter(read_all(kafka_bootstrap, topic, "read_committed"))
    assert (
        orders.total()
        == summary["records"]
        < sum(1 for r in generate_records(settings) if reference_stream(r.kind) is None)
    )
