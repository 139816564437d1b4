"""Test machinery for a DuckLake warehouse written by several consumers of one group: start,
kill, freeze and restart members; read the lake back read-only; compare it with the oracle;
read the dead letters back; count the retries in the members' logs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, Producer, TopicPartition

from consumer.runtime.reading import connect
from consumer.settings import WarehouseSettings
from producer_sim.reference import generate_reference, write_reference
from tests.harness import REPORT_NAMES, ROOT, consumer_env
from tests.oracle import Expected, Record, compute_expected, parse_order, read_topic, report
from tests.reliability.harness import events

Position = tuple[str, int, int]


@dataclass(frozen=True)
class Lake:
    """One DuckLake warehouse: its catalog (a libpq conninfo) and its data directory."""

    conninfo: str
    data_path: Path

    @property
    def catalog(self) -> str:
        return f"postgres:{self.conninfo}"

    def flags(self) -> tuple[str, ...]:
        return ("--catalog", self.catalog, "--data-path", str(self.data_path))

    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows of a query on a read-only attach of the lake, in one snapshot."""
        with self.reader() as rows:
            return rows(sql)

    @contextmanager
    def reader(self) -> Iterator[Callable[[str], list[tuple[Any, ...]]]]:
        """One read-only attach for several queries (an attach costs a second or more)."""
        with connect(WarehouseSettings(catalog=self.catalog)) as con:
            yield lambda sql: list(con.execute(sql).fetchall())


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python -m consumer ARGS`` to completion."""
    return subprocess.run(
        [sys.executable, "-m", "consumer", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=consumer_env(),
        cwd=ROOT,
        check=False,
    )


def query_lake(lake: Lake, name: str) -> list[dict[str, Any]]:
    """``query NAME --catalog ... --format json``, with exact decimals."""
    proc = cli("query", name, "--catalog", lake.catalog, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows: list[dict[str, Any]] = json.loads(proc.stdout, parse_float=Decimal)
    return rows


def audit_lake(lake: Lake, bootstrap: str, topic: str) -> subprocess.CompletedProcess[str]:
    return cli(
        "audit", "--bootstrap-servers", bootstrap, "--topic", topic, "--catalog", lake.catalog
    )


@dataclass
class Members:
    """N consumers of one group on one lake; every life of every member has its own log."""

    bootstrap: str
    topic: str
    group: str
    lake: Lake
    workdir: Path
    extra: tuple[str, ...] = ()
    procs: dict[int, subprocess.Popen[bytes]] = field(default_factory=dict)
    lives: dict[int, list[Path]] = field(default_factory=dict)

    def command(self, *extra: str) -> list[str]:
        return [
            sys.executable, "-m", "consumer", "run", "--bootstrap-servers", self.bootstrap,
            "--topic", self.topic, "--group-id", self.group, *self.lake.flags(),
            "--log-format", "json", *self.extra, *extra,
        ]  # fmt: skip

    def start(self, member: int, *extra: str) -> subprocess.Popen[bytes]:
        logs = self.lives.setdefault(member, [])
        log = self.workdir / f"member-{member}-life-{len(logs):02d}.log"
        logs.append(log)
        with open(log, "ab") as out, open(log.with_suffix(".err"), "ab") as err:
            proc = subprocess.Popen(
                self.command(*extra), stdout=out, stderr=err, env=consumer_env(), cwd=ROOT
            )
        self.procs[member] = proc
        return proc

    def log(self, member: int) -> Path:
        return self.lives[member][-1]

    def stderr(self, member: int) -> str:
        return self.log(member).with_suffix(".err").read_text(errors="replace")

    def kill(self, member: int) -> None:
        proc = self.procs[member]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)

    def stop_all(self, timeout: float = 120) -> dict[int, int]:
        """SIGTERM every running member (drain, commit, exit 0); their exit codes."""
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        return {m: proc.wait(timeout=timeout) for m, proc in self.procs.items()}

    def kill_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=30)

    def all_logs(self) -> list[Path]:
        return [log for logs in self.lives.values() for log in logs]

    def retries(self) -> Counter[str]:
        """``retrying`` events of every life, by operation and kind of error."""
        counts: Counter[str] = Counter()
        for log in self.all_logs():
            for event in events(log):
                if event.get("event") == "retrying":
                    error = str(event.get("error", ""))
                    kind = (
                        "conflict"
                        if "Transaction conflict" in error or "retry count" in error
                        else "other"
                    )
                    counts[f"{event.get('operation')}:{kind}"] += 1
        return counts

    def committed(self) -> int:
        return sum(
            int(e["records"])
            for log in self.all_logs()
            for e in events(log)
            if e.get("event") == "batch_committed"
        )


def wait_until(what: str, check: Any, timeout: float = 120, every: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout}s")
        time.sleep(every)


def wait_for(log: Path, name: str, timeout: float = 120, count: int = 1) -> list[dict[str, Any]]:
    """The first ``count`` events called ``name`` in ``log``, waiting for them."""
    found: list[dict[str, Any]] = []

    def seen() -> bool:
        found[:] = [e for e in events(log) if e.get("event") == name]
        return len(found) >= count

    wait_until(f"{count} {name} event(s) in {log.name}", seen, timeout)
    return found


def settled(expected: Expected, records: list[Record], loaded: dict[Position, str]) -> Expected:
    """The oracle's expectation with each ambiguous order (identical copies on several
    partitions) settled the way the lake did: the copy it loaded is the loaded one, the others
    are its duplicates. Any other choice (two copies loaded, a conflicting copy loaded) fails."""
    by_id: dict[str, set[Position]] = {}
    for record in records:
        outcome = parse_order(record.value)
        order_id = getattr(getattr(outcome, "order", None), "order_id", None)
        kept = record.position in expected.loaded or record.position in expected.duplicates
        if order_id in expected.ambiguous_order_ids and kept:
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


Placed = tuple[bytes | None, bytes | None, int]


def placed(records: list[tuple[bytes | None, bytes | None]], partitions: int) -> list[Placed]:
    """Each record with its partition: a keyed record by CRC32 of its key (every version of
    an order on one partition, its home), an unkeyed one on partition 0."""
    return [(k, v, 0 if k is None else zlib.crc32(k) % partitions) for k, v in records]


def with_misrouted_copies(stream: list[Placed], partitions: int, every: int) -> list[Placed]:
    """The stream with, right after every ``every``-th new valid order, an identical copy on
    another partition: alternately under a wrong key and under no key. Both copies are then
    in flight at once, in batches of different members."""
    out: list[Placed] = []
    seen: set[str] = set()
    for key, value, partition in stream:
        out.append((key, value, partition))
        outcome = parse_order(value)
        order_id = getattr(getattr(outcome, "order", None), "order_id", None)
        if order_id is None or order_id in seen:
            continue
        seen.add(order_id)
        if len(seen) % every == 0:
            n = len(seen) // every
            other = (partition + 1 + n % (partitions - 1)) % partitions
            out.append((None if n % 2 else f"wrong-{n}".encode(), value, other))
    return out


def produce(bootstrap: str, topic: str, stream: list[Placed], seconds: float = 0.0) -> None:
    """Produce the stream in order, to the given partitions, spread over ``seconds``."""
    producer = Producer(
        {"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 5}
    )
    started = time.monotonic()
    pace = seconds / max(len(stream), 1)
    for n, (key, value, partition) in enumerate(stream):
        delay = started + n * pace - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        while True:
            try:
                producer.produce(topic, value=value, key=key, partition=partition)
                break
            except BufferError:
                producer.poll(0.1)
        producer.poll(0)
    assert producer.flush(60) == 0, "records not delivered"


class Background(threading.Thread):
    """Run ``action`` on a thread; ``join_checked`` re-raises what it raised."""

    def __init__(self, action: Any) -> None:
        super().__init__(daemon=True)
        self._action = action
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._action()
        except BaseException as exc:
            self.error = exc

    def join_checked(self, timeout: float = 300) -> None:
        self.join(timeout)
        assert not self.is_alive(), "background work did not finish"
        if self.error is not None:
            raise self.error


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


def reference_files(workdir: Path, orders: int) -> tuple[Path, Path, tuple[str, ...]]:
    """The simulator's users.csv and products.csv, and the members' flags for them."""
    users, products = write_reference(generate_reference(orders), workdir / "ref")
    return users, products, ("--users-csv", str(users), "--products-csv", str(products))


def accounted(lake: Lake) -> int:
    """Records the lake accounts for (loaded, dropped as duplicates, rejected); 0 before its
    tables exist or while its catalog is down."""
    try:
        rows = lake.rows(
            "SELECT (SELECT count(*) FROM dim_order) + (SELECT count(*) FROM dropped_duplicates)"
            " + (SELECT count(*) FROM rejected_events)"
        )
    except Exception:
        return 0
    return int(rows[0][0])


def finish(members: Members, lake: Lake, total: int, timeout: float = 240) -> None:
    """Wait until the lake accounts for every record of the topic, then stop every member
    (SIGTERM: drain and exit 0)."""
    try:
        wait_until("the lake holds the whole topic", lambda: accounted(lake) >= total, timeout, 1)
        time.sleep(1.0)  # anything doubled after the last record would show now
        codes = members.stop_all()
    finally:
        members.kill_all()
    assert set(codes.values()) == {0}, {m: members.stderr(m)[-2000:] for m in codes}


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
    return expected
