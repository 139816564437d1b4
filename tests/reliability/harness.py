"""Crash machinery: a seeded hostile stream, a consumer process that is killed and restarted,
and the figures every scenario reports (records, kills, lost, duplicated, rejected, recovery).

The expected warehouse always comes from ``tests/oracle.py`` applied to what is really in the
topic, never from the consumer's own code.
"""

from __future__ import annotations

import os
import random
import signal
import statistics
import subprocess
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from tests.harness import assert_warehouse_matches, log_events, start_consumer
from tests.oracle import Expected, compute_expected, read_topic
from tests.reliability.deadletters import assert_dead_letters_complete


@dataclass(frozen=True)
class Scale:
    orders: int
    kills: int
    batch_records: int

    @classmethod
    def from_env(cls) -> Scale:
        soak = os.environ.get("RELIABILITY_SCALE") == "soak"
        return cls(
            orders=int(os.environ.get("RELIABILITY_ORDERS", "200000" if soak else "12000")),
            kills=int(os.environ.get("RELIABILITY_KILLS", "100" if soak else "20")),
            batch_records=int(os.environ.get("RELIABILITY_BATCH", "2000" if soak else "300")),
        )


SESSION_TIMEOUT_S = 60
# The targeted scenarios count batches (fault at batch 2, ...): their streams are sized for
# this batch size, whatever the scale of the random-kill scenario.
SMALL_BATCH = 300


def small_batches(records: int = SMALL_BATCH) -> tuple[str, ...]:
    return (
        "--batch-max-records",
        str(records),
        "--batch-max-seconds",
        "0.2",
        "--kafka-option",
        f"session.timeout.ms={SESSION_TIMEOUT_S * 1000}",
    )


FIGURES: pytest.StashKey[list[Figures]] = pytest.StashKey()


@dataclass
class Figures:
    """What one scenario did and found; printed in the session's reliability table."""

    scenario: str
    records: int = 0
    kills: Counter[str] = field(default_factory=Counter)
    lost: int = 0
    duplicated: int = 0
    rejected_expected: int = 0
    rejected_actual: int = 0
    recovery_seconds: list[float] = field(default_factory=list)
    dead_letter_repeats: int = 0

    def recovery(self, share: float) -> float | None:
        if not self.recovery_seconds:
            return None
        ordered = sorted(self.recovery_seconds)
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def events(log: Path) -> list[dict[str, Any]]:
    """The JSON events of a consumer's log file (librdkafka's own lines go to the same file)."""
    return log_events(log.read_text(errors="replace"), strict=False) if log.exists() else []


def epoch(event: dict[str, object]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()


def wait_for_event(log: Path, name: str, timeout: float = 60.0) -> dict[str, object]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [e for e in events(log) if e.get("event") == name]
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no {name} event in {log} within {timeout}s:\n{log.read_text()[-3000:]}")


def committed_records(log: Path) -> int:
    return sum(int(e["records"]) for e in events(log) if e.get("event") == "batch_committed")


@dataclass
class ConsumerLives:
    """Start, kill and restart one consumer (one database) and keep every life's log."""

    bootstrap: str
    topic: str
    group: str
    db: Path
    workdir: Path
    extra: tuple[str, ...] = ()
    lives: list[Path] = field(default_factory=list)

    def start(self, faults: str = "") -> subprocess.Popen[bytes]:
        log = self.workdir / f"life-{len(self.lives):03d}.log"
        self.lives.append(log)
        return start_consumer(
            self.bootstrap, self.topic, self.group, self.db, *self.extra, faults=faults, log=log
        )

    def kill_randomly(self, kills: int, rng: random.Random, figures: Figures) -> None:
        """SIGKILL the consumer ``kills`` times at random moments, restarting it each time.

        Recovery is the time from a kill to the restarted process getting its partitions back.
        """
        killed_at: float | None = None
        for _ in range(kills):
            proc = self.start()
            if killed_at is not None:
                assigned = wait_for_event(self.lives[-1], "partitions_assigned")
                figures.recovery_seconds.append(epoch(assigned) - killed_at)
            time.sleep(rng.uniform(0.3, 2.5))
            proc.send_signal(signal.SIGKILL)
            killed_at = time.time()
            proc.wait(timeout=30)
            figures.kills["random SIGKILL"] += 1

    def finish(self, faults: str = "", idle: float = 1.0) -> subprocess.CompletedProcess[str]:
        """Run to the end of the topic with --until-idle and return the finished process."""
        log = self.workdir / f"life-{len(self.lives):03d}.log"
        self.lives.append(log)
        proc = start_consumer(
            self.bootstrap,
            self.topic,
            self.group,
            self.db,
            *self.extra,
            "--until-idle",
            str(idle),
            faults=faults,
            log=log,
        )
        code = proc.wait(timeout=600)
        return subprocess.CompletedProcess(proc.args, code, log.read_text(), "")


def lives_for(
    bootstrap: str, topic: str, tmp_path: Path, batch_records: int = SMALL_BATCH
) -> ConsumerLives:
    return ConsumerLives(
        bootstrap,
        topic,
        f"g-{uuid.uuid4().hex[:10]}",
        tmp_path / "warehouse.duckdb",
        tmp_path,
        small_batches(batch_records),
    )


def settle(
    figures: Figures,
    db: Path,
    bootstrap: str,
    topic: str,
    *,
    users: Path | None = None,
    products: Path | None = None,
    reports: bool = False,
) -> Expected:
    """Compare the warehouse with the oracle: count what was lost or duplicated, then require
    exact equality, check the database file reopens read-write after the crashes, and read
    the dead-letter topic back: every rejected record has its dead letter.

    The four reports are asked only with ``reports``: they are functions of the tables
    compared here (tested as such in tests/integration), and each is a CLI process (~2 s on
    this machine under load, 8 s a scenario)."""
    records = read_topic(bootstrap, topic)
    expected = compute_expected(records, users, products)
    with duckdb.connect(str(db)) as con:
        con.execute("CHECKPOINT")
        lines = Counter(con.execute("SELECT order_id, line_number FROM fact_sales").fetchall())
        rejected = con.execute("SELECT count(*) FROM rejected_events").fetchone()
    figures.records = len(expected.loaded) + len(expected.duplicates) + len(expected.rejected)
    figures.lost = sum(1 for key in expected.lines if key not in lines)
    figures.duplicated = sum(n - 1 for n in lines.values() if n > 1) + sum(
        n for key, n in lines.items() if key not in expected.lines
    )
    figures.rejected_expected = len(expected.rejected)
    figures.rejected_actual = int(rejected[0]) if rejected else 0
    assert_warehouse_matches(db, expected, topic, reports=reports)
    figures.dead_letter_repeats = assert_dead_letters_complete(bootstrap, topic, db, records)
    return expected


def format_table(all_figures: list[Figures]) -> str:
    header = (
        "scenario",
        "records",
        "kills",
        "lost",
        "duplicated",
        "rejected exp/act",
        "DLQ repeats",
        "recovery p50",
        "recovery p99",
    )
    rows = [header]
    for f in all_figures:
        p50, p99 = f.recovery(0.5), f.recovery(0.99)
        rows.append(
            (
                f.scenario,
                f"{f.records:,}",
                ", ".join(f"{n} {kind}" for kind, n in sorted(f.kills.items())) or "-",
                str(f.lost),
                str(f.duplicated),
                f"{f.rejected_expected:,}/{f.rejected_actual:,}",
                str(f.dead_letter_repeats),
                "-" if p50 is None else f"{p50:.2f}s",
                "-" if p99 is None else f"{p99:.2f}s",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [
        "| " + " | ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)) + " |"
        for row in rows
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    total_kills = sum(sum(f.kills.values()) for f in all_figures)
    recoveries = [r for f in all_figures for r in f.recovery_seconds]
    summary = f"\n{total_kills} kills in all"
    if recoveries:
        summary += f"; recovery median {statistics.median(recoveries):.2f}s"
    return "\n".join(lines) + summary
