"""Shared test machinery: run the consumer as a real process, publish records, and compare the
warehouse with the independent oracle (``tests/oracle.py``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from tests.oracle import REPORT_KEYS, Expected, Position, report

ROOT = Path(__file__).resolve().parent.parent
REPORT_NAMES = tuple(REPORT_KEYS)


def create_topic(admin: AdminClient, partitions: int = 3, prefix: str = "t") -> str:
    """A new topic with a uuid name."""
    name = f"{prefix}-{uuid.uuid4().hex[:12]}"
    admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])[
        name
    ].result(timeout=30)
    return name


def consumer_command(bootstrap: str, topic: str, group: str, db: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "consumer",
        "run",
        "--bootstrap-servers",
        bootstrap,
        "--topic",
        topic,
        "--group-id",
        group,
        "--db",
        str(db),
        "--log-format",
        "json",
        *extra,
    ]


def consumer_env(faults: str = "", **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), **extra}
    env.pop("ORDERS_FAULTS", None)
    if faults:
        env["ORDERS_FAULTS"] = faults
    return env


def run_consumer(
    bootstrap: str,
    topic: str,
    group: str,
    db: Path,
    *extra: str,
    until_idle: float = 0.5,
    faults: str = "",
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    """Run ``consumer run --until-idle`` to completion; return the finished process."""
    return subprocess.run(
        consumer_command(bootstrap, topic, group, db, "--until-idle", str(until_idle), *extra),
        capture_output=True,
        text=True,
        timeout=timeout,
        env=consumer_env(faults),
        cwd=ROOT,
        check=False,
    )


def start_consumer(
    bootstrap: str,
    topic: str,
    group: str,
    db: Path,
    *extra: str,
    faults: str = "",
    log: Path | None = None,
) -> subprocess.Popen[bytes]:
    """Start a long-running consumer; its stdout (JSON logs) goes to ``log``."""
    out = open(log, "ab") if log else subprocess.DEVNULL  # noqa: SIM115 - handed to the child
    return subprocess.Popen(
        consumer_command(bootstrap, topic, group, db, *extra),
        stdout=out,
        stderr=subprocess.STDOUT,
        env=consumer_env(faults),
        cwd=ROOT,
    )


def log_events(stdout: str, *, strict: bool = True) -> list[dict[str, Any]]:
    """Parse JSON log lines; fail on any line that is not JSON, unless not ``strict``."""
    events = []
    for line in stdout.splitlines():
        if line.startswith("{") or (strict and line.strip()):
            events.append(json.loads(line))
    return events


def publish(
    bootstrap: str, topic: str, records: Iterable[tuple[bytes | None, bytes | None]]
) -> int:
    """Produce (key, value) pairs in order with an idempotent producer; return the count.

    Unkeyed records go to partition 0, so that publishing a stream twice places them alike.
    """
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 10}
    )
    count = 0
    for key, value in records:
        while True:
            try:
                if key is None:
                    producer.produce(topic, value=value, partition=0)
                else:
                    producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.1)
        count += 1
        producer.poll(0)
    remaining = producer.flush(60)
    assert remaining == 0, f"{remaining} records not delivered"
    return count


def query_json(db: Path, name: str, limit: int | None = None) -> list[dict[str, Any]]:
    """Run ``consumer query NAME --format json`` and parse it with exact decimals."""
    args = [sys.executable, "-m", "consumer", "query", name, "--db", str(db), "--format", "json"]
    if limit is not None:
        args += ["--limit", str(limit)]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=60, cwd=ROOT, check=False)
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout, parse_float=Decimal)
    return rows


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def assert_warehouse_matches(
    db: Path, expected: Expected, topic: str, *, reports: bool = True
) -> None:
    """Every table and (unless not ``reports``) all four reports equal the oracle's
    expectation exactly."""
    assert not expected.ambiguous_order_ids, (
        "test stream must keep differing versions of an order in one partition: "
        f"{sorted(expected.ambiguous_order_ids)[:5]}"
    )
    orders = _rows(
        db, "SELECT order_id, user_id, amount, currency, source, promo, created_at FROM dim_order"
    )
    assert len(orders) == len({row[0] for row in orders}), "an order was loaded twice"
    assert {row[0]: row for row in orders} == {
        o.order_id: (o.order_id, o.user_id, o.amount, o.currency, o.source, o.promo, o.created_at)
        for o in expected.orders.values()
    }
    lines = _rows(
        db,
        "SELECT order_id, line_number, sku, user_id, quantity, unit_price, "
        "created_at FROM fact_sales",
    )
    assert len(lines) == len(expected.lines), "fact_sales has missing or duplicated lines"
    assert {(row[0], row[1]): row for row in lines} == {
        key: (
            ln.order_id,
            ln.line_number,
            ln.sku,
            ln.user_id,
            ln.quantity,
            ln.unit_price,
            ln.created_at,
        )
        for key, ln in expected.lines.items()
    }
    rejected = _rows(db, 'SELECT topic, "partition", "offset", reason FROM rejected_events')
    assert {(t, p, o): r for t, p, o, r in rejected} == expected.rejected
    assert len(rejected) == len(expected.rejected)
    loaded = {
        (t, p, o): oid
        for t, p, o, oid in _rows(
            db, "SELECT kafka_topic, kafka_partition, kafka_offset, order_id FROM dim_order"
        )
    }
    want_loaded, want_duplicates = copies_as_loaded(expected, loaded)
    duplicates = _rows(db, 'SELECT topic, "partition", "offset" FROM dropped_duplicates')
    assert sorted(duplicates) == sorted(want_duplicates)
    assert loaded == want_loaded
    processed = _rows(db, "SELECT order_id FROM processed_orders")
    assert sorted(r[0] for r in processed) == sorted(expected.orders)
    assert_dimensions_match(db, expected)
    for name in REPORT_NAMES if reports else ():
        assert query_json(db, name) == report(expected, name), name


def copies_as_loaded(
    expected: Expected, loaded: dict[Position, str]
) -> tuple[dict[Position, str], set[Position]]:
    """The oracle's loaded and duplicate positions, where an order re-sent identically to
    other partitions counts as loaded from whichever one copy the warehouse loaded (its batch
    order decides; the content is the same) and the other copies as duplicates. An order
    loaded from no copy or from several stays as the oracle has it, so the comparison fails."""
    want_loaded, want_duplicates = dict(expected.loaded), set(expected.duplicates)
    for order_id, copies in expected.spread_copies.items():
        chosen = [position for position, oid in loaded.items() if oid == order_id]
        if len(chosen) == 1 and chosen[0] in copies:
            for position in copies:
                want_loaded.pop(position, None)
            want_loaded[chosen[0]] = order_id
            want_duplicates = (want_duplicates - copies) | (copies - {chosen[0]})
    return want_loaded, want_duplicates


def assert_audit_complete(bootstrap: str, topic: str, db: Path) -> None:
    """``consumer audit`` finds every offset the warehouse read accounted for exactly once
    (exit 0)."""
    args = [sys.executable, "-m", "consumer", "audit", "--bootstrap-servers", bootstrap]
    proc = subprocess.run(
        [*args, "--topic", topic, "--db", str(db)],
        capture_output=True,
        text=True,
        timeout=120,
        env=consumer_env(),
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, (
        f"audit exited {proc.returncode}\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}"
    )


def assert_dimensions_match(db: Path, expected: Expected) -> None:
    users = _rows(
        db, "SELECT user_id, name, email, country, signup_date, is_inferred FROM dim_user"
    )
    assert {row[0]: row for row in users} == {
        u.user_id: (u.user_id, u.name, u.email, u.country, u.signup_date, u.is_inferred)
        for u in expected.users.values()
    }
    products = _rows(db, "SELECT sku, name, category, list_price, is_inferred FROM dim_product")
    assert {row[0]: row for row in products} == {
        p.sku: (p.sku, p.name, p.category, p.list_price, p.is_inferred)
        for p in expected.products.values()
    }


def table_counts(db: Path, tables: Sequence[str]) -> dict[str, int]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}
