"""Test machinery for a DuckLake warehouse written by several consumers of one group: start,
kill, freeze and restart members; produce streams with misrouted copies; read the lake back;
count the retries in the members' logs (the checks of what they wrote: ``lakecheck``)."""

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

from confluent_kafka import Producer

from consumer.commands.reading import connect
from consumer.settings import WarehouseSettings
from producer_sim.reference import generate_reference, write_reference
from tests.harness import ROOT, consumer_env, log_events
from tests.oracle import parse_order
from tests.reliability.harness import events

Position = tuple[str, int, int]


@dataclass(frozen=True)
class Lake:
    """One DuckLake warehouse: its catalog (a libpq conninfo) and its data path (a directory,
    or an ``s3://`` URL whose settings are in the environment)."""

    conninfo: str
    data_path: Path | str

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

    def start(self, member: int, *extra: str, faults: str = "") -> subprocess.Popen[bytes]:
        """Start a life of ``member`` (``faults``: ORDERS_FAULTS, see consumer/faults.py)."""
        logs = self.lives.setdefault(member, [])
        log = self.workdir / f"member-{member}-life-{len(logs):02d}.log"
        logs.append(log)
        with open(log, "ab") as out, open(log.with_suffix(".err"), "ab") as err:
            proc = subprocess.Popen(
                self.command(*extra), stdout=out, stderr=err, env=consumer_env(faults), cwd=ROOT
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
    for m in codes:  # stdout is an interface: JSON lines only (no progress bar, no stray text)
        log_events(members.log(m).read_text(), strict=True)


def killed_at_end() -> Iterator[list[Members]]:
    """For a fixture: every ``Members`` a test appends is killed at its end, pass or fail (a
    failed wait would otherwise leave its members running)."""
    made: list[Members] = []
    yield made
    for members in made:
        members.kill_all()
