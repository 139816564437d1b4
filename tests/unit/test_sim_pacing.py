"""--rate pacing on a fake clock: a steady trickle without drift, and bounded catch-up."""

from __future__ import annotations

import pytest

from producer_sim.pacing import Pacer


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_000.0
        self.waits: list[float] = []

    def __call__(self) -> float:
        return self.now

    def wait(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds


def test_records_leave_on_a_fixed_grid_without_drift() -> None:
    """At 7/s, the 70,001st record leaves exactly 10,000 s after the first, waits included."""
    clock = FakeClock()
    pacer = Pacer(7.0, clock.wait, clock)
    start = clock.now
    for _ in range(70_001):
        clock.now += 0.0001  # the work of sending takes a little time, which must not add up
        pacer.pace()
    assert clock.now == pytest.approx(start + 0.0001 + 10_000.0, abs=1e-6)
    assert all(w > 0 for w in clock.waits)


def test_after_a_stall_only_one_bucket_goes_out_at_once() -> None:
    """After a 60 s stall at 100/s, about one second's worth goes out at once, then pacing."""
    clock = FakeClock()
    pacer = Pacer(100.0, clock.wait, clock, burst_seconds=1.0)
    for _ in range(10):
        pacer.pace()
    clock.now += 60
    waits_before = len(clock.waits)
    sent_without_wait = 0
    while len(clock.waits) == waits_before:
        pacer.pace()
        sent_without_wait += 1
    assert 99 <= sent_without_wait <= 102


def test_a_stop_that_cuts_the_wait_short_does_not_raise() -> None:
    """A wait that returns early (the stop flag) lets the caller notice and end the run."""
    clock = FakeClock()
    pacer = Pacer(1.0, lambda seconds: None, clock)
    pacer.pace()
    pacer.pace()
    assert clock.now == 1_000.0


def test_rate_must_be_positive() -> None:
    """A Pacer is only made for a real rate (0 means unpaced and needs none)."""
    with pytest.raises(ValueError, match="positive"):
        Pacer(0.0, lambda seconds: None)
