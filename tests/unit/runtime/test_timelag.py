"""The time lag (CONTRACT §7 pipeline_consumer_lag_seconds): per owned partition, the age of the
oldest record read and not yet committed, from the records' timestamps; 0 when none waits."""

from __future__ import annotations

from consumer.runtime.timelag import TimeLag


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_the_oldest_waiting_record_of_each_partition_counts_until_it_is_committed() -> None:
    clock = Clock(1_000.0)
    lag = TimeLag(clock)
    lag.owned([0, 1, 2])
    # Two polls: partition 0 from offset 10 (stamped 990 s) then 20 (995 s); partition 1 at 5.
    lag.seen({0: (10, 990_000), 1: (5, 998_500)})
    lag.seen({0: (20, 995_000)})
    assert lag.seconds() == {0: 10.0, 1: 1.5, 2: 0.0}
    clock.now = 1_004.0  # the wall clock moves on, the same records wait
    assert lag.seconds() == {0: 14.0, 1: 5.5, 2: 0.0}
    lag.committed({0: 20, 1: 5})  # the first poll of 0 is in; nothing of 1 (offset 5 is next)
    assert lag.seconds() == {0: 9.0, 1: 5.5, 2: 0.0}
    lag.committed({0: 30, 1: 9})
    assert lag.seconds() == {0: 0.0, 1: 0.0, 2: 0.0}


def test_a_partition_given_away_is_forgotten_and_a_future_stamp_is_no_negative_age() -> None:
    clock = Clock(1_000.0)
    lag = TimeLag(clock)
    lag.owned([0, 1])
    lag.seen({0: (0, 900_000), 1: (0, 1_005_000)})  # a producer's clock ahead of ours
    assert lag.seconds() == {0: 100.0, 1: 0.0}
    lag.owned([1])
    assert lag.seconds() == {1: 0.0}
    lag.owned([0, 1])  # taken back: what it had waiting is another member's business now
    assert lag.seconds() == {0: 0.0, 1: 0.0}
