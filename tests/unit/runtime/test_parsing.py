"""Parsing beside the polling thread: batches parsed in worker processes land exactly as
inline ones do, a failure stops every batch handed over after it, and workers die with the
consumer."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from consumer.errors import TerminalError
from consumer.faults import Faults
from consumer.runtime.parsing import InlineParser, Pending, ProcessParser
from tests.fakes.kafka import FakeTopic
from tests.unit.runtime.loopkit import assert_exactly_once, ends, expected_of, ledger, rig, rows
from tools.localkafka import descendant_pids, pid_alive

ROOT = Path(__file__).resolve().parents[3]


class ReadAhead(InlineParser):
    """Parses inline but lets four batches be in flight, and says when it has seen ``wanted``."""

    depth = 4

    def __init__(self, wanted: int) -> None:
        self.submitted = 0
        self.wanted = wanted
        self.reached = threading.Event()

    def submit(self, values: Sequence[bytes | None]) -> Pending:
        self.submitted += 1
        if self.submitted >= self.wanted:
            self.reached.set()
        return super().submit(values)


class FailOnceReached(Faults):
    """At batch 2's fact_sales insert, wait until later batches were handed over, then fail."""

    def __init__(self, parser: ReadAhead) -> None:
        super().__init__()
        self.parser = parser

    def hit(self, point: str, batch_number: int) -> None:
        if (point, batch_number) == ("statement:fact_sales", 2):
            assert self.parser.reached.wait(10), "the loop never handed over later batches"
            raise TerminalError("disk on fire")


def test_a_stream_parsed_in_a_worker_process_lands_exactly_once(
    tmp_path: Path, topic: FakeTopic
) -> None:
    """With a real worker process and read-ahead, the file equals the oracle and every offset
    is committed."""
    parser = ProcessParser(1)
    r = rig(tmp_path, topic, parser=parser)
    r.pipeline.run()
    r.warehouse.close()
    assert_exactly_once(r.path, expected_of(topic), "orders")
    assert ledger(r.path, "orders") == ends(topic)
    assert r.source.committed == ends(topic)
    assert rows(r.path, "SELECT count(*) > 3 FROM load_batches") == [(True,)]


def test_batches_handed_over_after_a_failed_one_are_never_written(
    tmp_path: Path, topic: FakeTopic
) -> None:
    """Fail closed with batches read ahead: batches 3 and 4 were queued behind the failing
    batch 2, and neither they nor the ledger nor the group's offsets get past batch 1."""
    parser = ReadAhead(wanted=4)
    r = rig(tmp_path, topic, faults=FailOnceReached(parser), parser=parser)
    with pytest.raises(TerminalError, match="disk on fire"):
        r.pipeline.run()
    r.warehouse.close()
    assert parser.submitted >= 4
    assert rows(r.path, "SELECT batch_id FROM load_batches") == [(1,)]
    assert rows(r.path, "SELECT count(*) FROM dim_order WHERE batch_id > 1") == [(0,)]
    assert r.source.committed == ledger(r.path, "orders")


class KillWorkerAt(Faults):
    """Kills the parsing worker during batch ``batch``'s write."""

    def __init__(self, parser: ProcessParser, batch: int) -> None:
        super().__init__()
        self.parser = parser
        self.batch = batch

    def hit(self, point: str, batch_number: int) -> None:
        if (point, batch_number) == ("statement:dim_order", self.batch):
            for pid in self.parser.worker_pids():
                os.kill(pid, signal.SIGKILL)


def test_a_dead_worker_stops_the_loop_and_a_restart_loads_the_rest_exactly_once(
    tmp_path: Path, topic: FakeTopic
) -> None:
    """A worker killed mid-run: the loop stops with one line naming it, commits nothing the
    ledger does not hold, and a restart completes the stream exactly once. (Killed during
    batch 1, whose write then completes; a batch parsed before the kill may be written too.)"""
    parser = ProcessParser(1)
    r = rig(tmp_path, topic, faults=KillWorkerAt(parser, 1), parser=parser)
    with pytest.raises(TerminalError, match="a parsing worker process died"):
        r.pipeline.run()
    r.warehouse.close()
    held = ledger(r.path, "orders")
    assert all(offset <= held[p] for p, offset in r.source.committed.items()), held
    again = rig(tmp_path, topic)
    again.pipeline.run()
    again.warehouse.close()
    assert_exactly_once(again.path, expected_of(topic), "orders")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_consumer_killed_with_sigkill_takes_its_parsing_worker_with_it(tmp_path: Path) -> None:
    """SIGKILL the consumer while it waits for a broker: its worker does not outlive it."""
    consumer = subprocess.Popen(
        [
            sys.executable, "-m", "consumer", "run", "--bootstrap-servers", "127.0.0.1:9",
            "--topic", "t", "--group-id", "g", "--db", str(tmp_path / "w.duckdb"),
            "--startup-timeout", "60", "--log-format", "json",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        workers: list[int] = []
        while not workers and time.monotonic() < deadline and consumer.poll() is None:
            # The resource tracker is a child too; the worker is the one running spawn_main.
            workers = [
                pid
                for pid in descendant_pids(consumer.pid)[1:]
                if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes()
            ]
            time.sleep(0.1)
        assert workers, "the consumer started no parsing worker"
        consumer.send_signal(signal.SIGKILL)
        consumer.wait(10)
        deadline = time.monotonic() + 10
        while any(pid_alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(pid_alive(pid) for pid in workers), "a worker outlived its consumer"
    finally:
        if consumer.poll() is None:
            consumer.kill()
            consumer.wait(10)
