"""Steady pacing for ``--rate`` and a plain progress bar for bulk runs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO


class Pacer:
    """Token bucket without drift: the n-th record is due at ``start + n / rate``.

    Due times are computed from the start, never by adding intervals, so rounding cannot pile
    up. After a stall (an API retry, a slow broker) at most ``burst_seconds`` worth of records
    go out at once; the rest of the backlog is forgotten rather than rushed.
    """

    def __init__(
        self,
        rate: float,
        wait: Callable[[float], object],
        clock: Callable[[], float] = time.monotonic,
        burst_seconds: float = 1.0,
    ) -> None:
        if rate <= 0:
            raise ValueError("a Pacer needs a positive rate")
        self._rate = rate
        self._wait = wait
        self._clock = clock
        self._burst = max(burst_seconds, 1.0 / rate)
        self._start: float | None = None
        self._sent = 0

    def pace(self) -> None:
        """Return when the next record may go (``wait`` may return early to cut a run short)."""
        now = self._clock()
        if self._start is None:
            self._start = now
        due = self._start + self._sent / self._rate
        if due > now:
            self._wait(due - now)
        elif now - due > self._burst:
            self._start, self._sent = now - self._burst, 0
        self._sent += 1


class Progress:
    """``[#####-----]  45.0%  450,000/1,000,000 orders  463,512 records  98,311 rec/s`` on a TTY."""

    WIDTH = 30

    def __init__(
        self,
        total_orders: int,
        stream: TextIO,
        enabled: bool,
        clock: Callable[[], float] = time.monotonic,
        every: float = 0.2,
    ) -> None:
        self._total = total_orders
        self._stream = stream
        self.enabled = enabled
        self._clock = clock
        self._every = every
        self._start = clock()
        self._last_draw = float("-inf")
        self._drawn = False

    def update(self, orders: int, records: int, force: bool = False) -> None:
        if not self.enabled:
            return
        now = self._clock()
        if not force and now - self._last_draw < self._every:
            return
        self._last_draw = now
        share = min(orders / self._total, 1.0) if self._total else 0.0
        filled = int(share * self.WIDTH)
        rate = records / max(now - self._start, 1e-9)
        bar = "#" * filled + "-" * (self.WIDTH - filled)
        self._stream.write(
            f"\r[{bar}] {share * 100:5.1f}%  {orders:,}/{self._total:,} orders  "
            f"{records:,} records  {rate:,.0f} rec/s "
        )
        self._stream.flush()
        self._drawn = True

    def finish(self, orders: int, records: int) -> None:
        if self._drawn:
            self.update(orders, records, force=True)
            self._stream.write("\n")
            self._stream.flush()
