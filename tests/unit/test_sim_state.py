"""Runs that continue, re-send or replay, through the Kafka-free runner and a state directory."""

from __future__ import annotations

import io
import itertools
import json
import threading
from pathlib import Path
from typing import Any

import pytest

from producer_sim.api import ScriptedFaults
from producer_sim.config import MessRates, Settings
from producer_sim.events import SimRecord, generate_records
from producer_sim.report import RunReport
from producer_sim.runner import publish
from producer_sim.state import StateError, StateFile

BASE = ("resend", "malformed")


class ListSink:
    """Keeps what it is sent; raises the stop flag after ``stop_after`` records."""

    topic_key = "id-1"

    def __init__(self, stop: threading.Event | None = None, stop_after: int = 0) -> None:
        self.records: list[SimRecord] = []
        self.failed = 0
        self.first_error: str | None = None
        self._stop, self._stop_after = stop, stop_after

    def send(self, record: SimRecord) -> None:
        self.records.append(record)
        if self._stop is not None and len(self.records) == self._stop_after:
            self._stop.set()

    def poll(self) -> None:
        pass

    def flush(self) -> None:
        pass

    def close(self) -> int:
        return self.failed


def settings(state: Path, **changes: Any) -> Settings:
    values: dict[str, Any] = {
        "seed": 5,
        "orders": 0,
        "page_size": 50,
        "retry_base_delay": 0,
        "state_dir": state,
        "topic": "t",
        **changes,
    }
    return Settings(**values)


def run(config: Settings, stop_after: int = 0) -> tuple[list[SimRecord], RunReport]:
    stop = threading.Event()
    sink = ListSink(stop if stop_after else None, stop_after)
    report = publish(
        config,
        stop=stop,
        faults=ScriptedFaults({}),
        sink_factory=lambda _: sink,
        progress_stream=io.StringIO(),
    )
    return sink.records, report


def base_ids(records: list[SimRecord]) -> list[str]:
    return [json.loads(r.value or b"")["order_id"] for r in records if not r.kind.startswith(BASE)]


def test_an_endless_run_started_again_continues_the_stream_exactly(tmp_path: Path) -> None:
    """Stopped after 3,000 and 2,000 records, two runs equal one uninterrupted run, no overlap."""
    first, report1 = run(settings(tmp_path), stop_after=3_000)
    second, report2 = run(settings(tmp_path), stop_after=2_000)
    whole = list(itertools.islice(generate_records(settings(tmp_path)), 5_000))
    assert first + second == whole
    assert not set(base_ids(first)) & set(base_ids(second))
    assert report2.new_orders == len(base_ids(second)) and report2.replayed_orders == 0
    assert report1.new_orders == len(base_ids(first)) > 2_000
    assert f"{report2.new_orders:,} new order ids, 0 orders re-sent" in report2.summary()


def test_replay_starts_over_and_the_next_run_continues_after_the_first(tmp_path: Path) -> None:
    """--replay re-sends from the first record (counted as re-sent); then runs continue on."""
    first, _ = run(settings(tmp_path), stop_after=2_000)
    replayed, report = run(settings(tmp_path, replay=True), stop_after=1_000)
    assert replayed == first[:1_000]
    assert report.new_orders == 0 and report.replayed_orders == len(base_ids(replayed)) > 0
    after, _ = run(settings(tmp_path), stop_after=500)
    whole = list(itertools.islice(generate_records(settings(tmp_path)), 2_500))
    assert after == whole[2_000:]


def test_a_bounded_run_again_resends_everything_and_says_so(tmp_path: Path) -> None:
    """The same seed and size twice: identical records; the second run has no new id."""
    first, report1 = run(settings(tmp_path, orders=800))
    second, report2 = run(settings(tmp_path, orders=800))
    assert first == second
    assert (report1.new_orders, report1.replayed_orders) == (800, 0)
    assert (report2.new_orders, report2.replayed_orders) == (0, 800)
    longer, report3 = run(settings(tmp_path, orders=1_000, days=35))  # at the same pace
    assert (report3.new_orders, report3.replayed_orders) == (200, 800)
    assert set(first) <= set(longer)


def test_endless_after_a_bounded_run_starts_with_the_next_order(tmp_path: Path) -> None:
    """After 1,000 orders, an endless run's first base order is the 1,001st; no id repeats."""
    bounded, _ = run(settings(tmp_path, orders=1_000))
    endless, report = run(settings(tmp_path), stop_after=1_500)
    assert base_ids(endless)[0] == "o-s5-0001001"
    keys_before = {r.key for r in bounded if r.key is not None}
    assert not keys_before & {r.key for r in endless if r.key is not None}
    assert report.replayed_orders == 0 and report.new_orders == len(base_ids(endless))


def test_other_rates_continue_after_the_last_order(tmp_path: Path) -> None:
    """Changed mess rates make another stream: the run continues after the last order sent."""
    first, _ = run(settings(tmp_path), stop_after=1_000)
    top = max(int(oid.rsplit("-", 1)[1]) for oid in base_ids(first))
    tidy = settings(tmp_path, rates=MessRates.none())
    second, _ = run(tidy, stop_after=300)
    assert all(r.kind == "clean" for r in second)
    assert base_ids(second)[0] == f"o-s5-{top + 1:07d}"


def test_a_state_file_that_is_not_ours_is_refused(tmp_path: Path) -> None:
    """A state file with other content raises StateError naming the file."""
    state = StateFile(tmp_path, "t", "id-1", 5)
    state.path.write_text('{"hello": 1}')
    with pytest.raises(StateError, match=str(state.path.name)):
        state.load()
