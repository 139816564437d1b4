"""Checks of a DuckLake warehouse after (and while) several members wrote it: every table and
report equal to the oracle's, with orders that arrived on two partitions settled the way the
lake did; the dead letters read back; a reader's snapshots consistent."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from tests.harness import REPORT_NAMES
from tests.lakeharness import Lake, Position, audit_lake, cli, query_lake
from tests.oracle import Expected, Record, compute_expected, parse_order, read_topic, report


def settled(expected: Expected, records: list[Record], loaded: dict[Position, str]) -> Expected:
    """The oracle's expectation with each ambiguous order (identical copies on several
    partitions) settled the way the lake did: the copy it loaded is the loaded one, the others
    are its duplicates. Any other choice (two copies loaded, a conflicting copy loaded) fails."""
    by_id: dict[str, set[Position]] = {}
    # Identical copies on several partitions (the oracle's spread_copies); orders with
    # different versions on several partitions stay refused by the comparison.
    spread = set(expected.spread_copies) | set(expected.ambiguous_order_ids)
    for record in records:
        outcome = parse_order(record.value)
        order_id = getattr(getattr(outcome, "order", None), "order_id", None)
        kept = record.position in expected.loaded or record.position in expected.duplicates
        if order_id in spread and kept:
            by_id.setdefault(order_id, set()).add(record.position)
    for order_id, copies in by_id.items():
        chosen = [p for p, oid in loaded.items() if oid == order_id]
        assert len(chosen) == 1, f"{order_id} loaded {len(chosen)} times: {chosen}"
        assert chosen[0] in copies, f"{order_id} loaded from {chosen[0]}, not an identical copy"
        for position in copies:
            expected.loaded.pop(position, None)
            expected.duplicates.add(position)
        expected.duplicates.discard(chosen[0])
        expected.loaded[chosen[0]] = order_id
    return expected


def assert_lake_matches(lake: Lake, expected: Expected, records: list[Record]) -> None:
    """Every table and all four reports (through ``query --catalog``) equal the oracle's."""
    with lake.reader() as rows:
        _assert_tables(rows, expected, records)
    for name in REPORT_NAMES:
        assert query_lake(lake, name) == report(expected, name), name


def _assert_tables(
    rows: Callable[[str], list[tuple[Any, ...]]], expected: Expected, records: list[Record]
) -> None:
    loaded = {
        (t, p, o): oid
        for t, p, o, oid in rows(
            "SELECT kafka_topic, kafka_partition, kafka_offset, order_id FROM dim_order"
        )
    }
    expected = settled(expected, records, loaded)
    assert len(loaded) == len(expected.loaded), "dim_order has missing or doubled rows"
    assert loaded == expected.loaded
    orders = rows(
        "SELECT order_id, user_id, amount, currency, source, promo, created_at FROM dim_order"
    )
    assert {row[0]: row for row in orders} == {
        o.order_id: (o.order_id, o.user_id, o.amount, o.currency, o.source, o.promo, o.created_at)
        for o in expected.orders.values()
    }
    lines = rows(
        "SELECT order_id, line_number, sku, user_id, quantity, unit_price, created_at "
        "FROM fact_sales"
    )
    assert len(lines) == len(expected.lines), "fact_sales has missing or doubled lines"
    assert {(r[0], r[1]): r for r in lines} == {
        key: (ln.order_id, ln.line_number, ln.sku, ln.user_id, ln.quantity, ln.unit_price,
              ln.created_at)
        for key, ln in expected.lines.items()
    }  # fmt: skip
    rejected = rows('SELECT topic, "partition", "offset", reason FROM rejected_events')
    assert len(rejected) == len(expected.rejected), "rejected_events has missing or doubled rows"
    assert {(t, p, o): r for t, p, o, r in rejected} == expected.rejected
    duplicates = rows('SELECT topic, "partition", "offset" FROM dropped_duplicates')
    assert sorted(duplicates) == sorted(expected.duplicates)
    processed = rows("SELECT order_id FROM processed_orders")
    assert sorted(r[0] for r in processed) == sorted(expected.orders)
    users = rows("SELECT user_id, name, email, country, signup_date, is_inferred FROM dim_user")
    assert len(users) == len({r[0] for r in users}), "a user was inserted twice"
    assert {r[0]: r for r in users} == {
        u.user_id: (u.user_id, u.name, u.email, u.country, u.signup_date, u.is_inferred)
        for u in expected.users.values()
    }
    products = rows("SELECT sku, name, category, list_price, is_inferred FROM dim_product")
    assert len(products) == len({r[0] for r in products}), "a product was inserted twice"
    assert {r[0]: r for r in products} == {
        p.sku: (p.sku, p.name, p.category, p.list_price, p.is_inferred)
        for p in expected.products.values()
    }


def dead_letters(bootstrap: str, topic: str, timeout: float = 60) -> Counter[Position]:
    """Every record of the dead-letter topic, as (source topic, partition, offset) from its
    headers, counted (dead letters are at-least-once: a redone batch may repeat some)."""
    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": "dlq-reader", "enable.auto.commit": False}
    )
    found: Counter[Position] = Counter()
    try:
        partitions = consumer.list_topics(topic, timeout=timeout).topics[topic].partitions
        ends = {}
        for p in partitions:
            low, high = consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            if high > low:
                ends[p] = high
        consumer.assign([TopicPartition(topic, p, 0) for p in ends])
        deadline = time.monotonic() + timeout
        while ends and time.monotonic() < deadline:
            for message in consumer.consume(500, timeout=1.0):
                if message.error() is not None:
                    continue
                headers = {k: v.decode() for k, v in message.headers() or []}
                found[
                    (
                        headers["__connect.errors.topic"],
                        int(headers["__connect.errors.partition"]),
                        int(headers["__connect.errors.offset"]),
                    )
                ] += 1
                if message.offset() >= ends[message.partition()] - 1:
                    ends.pop(message.partition(), None)
        assert not ends, f"dead-letter partitions {sorted(ends)} not read to their end"
    finally:
        consumer.close()
    return found


# One statement, so one snapshot: what a consistent reader must see at any instant.
SNAPSHOT_SQL = (
    "SELECT (SELECT count(*) FROM dim_order) AS orders, "
    "(SELECT count(*) FROM processed_orders) AS processed, "
    "(SELECT coalesce(sum(line_count), 0) FROM dim_order) AS lines_said, "
    "(SELECT count(*) FROM fact_sales) AS lines, "
    "(SELECT count(DISTINCT order_id) FROM dim_order) AS distinct_orders"
)


class Reader(threading.Thread):
    """``sql`` and ``query`` against the lake in a loop while members write; keeps every
    answer (exit code, stderr, parsed output)."""

    def __init__(self, lake: Lake) -> None:
        super().__init__(daemon=True, name="lake-reader")
        self._lake = lake
        self._done = threading.Event()
        self.snapshots: list[dict[str, int]] = []
        self.reports: list[list[dict[str, Any]]] = []
        self.failures: list[str] = []

    def run(self) -> None:
        while not self._done.is_set():
            proc = cli("sql", SNAPSHOT_SQL, "--catalog", self._lake.catalog, "--format", "json")
            if proc.returncode != 0:
                self.failures.append(f"sql exit {proc.returncode}: {proc.stderr.strip()}")
            else:
                self.snapshots.extend(json.loads(proc.stdout))
            proc = cli("query", "top-users", "--catalog", self._lake.catalog, "--format", "json")
            if proc.returncode != 0:
                self.failures.append(f"query exit {proc.returncode}: {proc.stderr.strip()}")
            else:
                self.reports.append(json.loads(proc.stdout, parse_float=Decimal))
            self._done.wait(1.0)  # each read is a process of its own: leave the cores to members

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=120)

    def check(self) -> None:
        """Every read answered; each snapshot is consistent; snapshots only grow."""
        assert not self.failures, self.failures[:3]
        assert len(self.snapshots) >= 2 and self.reports, "the reader did not get to read"
        for snap in self.snapshots:
            assert snap["orders"] == snap["processed"] == snap["distinct_orders"], snap
            assert snap["lines_said"] == snap["lines"], snap
        counts = [snap["orders"] for snap in self.snapshots]
        assert counts == sorted(counts), f"a later snapshot saw fewer orders: {counts}"


def assert_complete(
    lake: Lake, bootstrap: str, topic: str, users: Path | None, products: Path | None
) -> Expected:
    """The lake equals the oracle on every table and report; ``audit --catalog`` finds it
    complete; every rejected record has its dead letter."""
    records = read_topic(bootstrap, topic)
    expected = compute_expected(records, users, products)
    assert_lake_matches(lake, expected, records)
    audit = audit_lake(lake, bootstrap, topic)
    assert audit.returncode == 0, audit.stdout + audit.stderr
    letters = dead_letters(bootstrap, f"{topic}.dlq")
    assert set(letters) == set(expected.rejected), "a rejected record has no dead letter"
    repeated = sum(n - 1 for n in letters.values())
    print(f"dead letters: {sum(letters.values())} for {len(letters)} rejects ({repeated} repeats)")
    return expected
