"""When orders are placed: the instants of base orders, and how a ``created_at`` is written.

A bounded run spreads its N base orders over ``--days``: order n falls at a random point of the
n-th of N equal slices of the span, so instants only grow and the last order is inside the
span. An endless run has no span: its slices are a fixed nominal gap wide. Instants come from an
RNG of their own, so they depend on the seed and the gap (``--days`` / ``--orders``) alone.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import NamedTuple

from producer_sim import vocab
from producer_sim.history import DAY_US, START, START_US

NOMINAL_GAP_US = 2_500_000  # endless runs: 2.5 s between orders on average


def span_us(days: float) -> int:
    return round(days * DAY_US)


class Clock:
    """The true instant (µs since the epoch, UTC) of each base order, asked in order."""

    def __init__(self, seed: int, orders: int, days: float) -> None:
        self._rng = random.Random(f"orders-sim:{seed}:clock")
        self._span, self._slices = (span_us(days), orders) if orders else (NOMINAL_GAP_US, 1)
        # Runs with one gap (days / orders) place order n at the same instant.
        self._gap = self._span / self._slices

    def instant(self, number: int) -> int:
        """Base order ``number``'s instant; call it once per number, in increasing order."""
        start = self._span * (number - 1) // self._slices
        return START_US + start + int(self._rng.random() * self._gap)


class Stamp(NamedTuple):
    text: str  # the created_at as written
    instant: int  # what a reader makes of it: the instant cut to the digits written (µs)


class Stamper:
    """Writes instants in a mix of ISO-8601 spellings: Z, an offset or no zone, 0-6 decimals."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._start_day = START.date().toordinal() - START_US // DAY_US
        self._dates: dict[int, str] = {}

    def stamp(self, instant: int) -> Stamp:
        rng = self._rng
        draw = rng.random
        zone_draw = draw()
        if zone_draw < 0.55:
            zone, offset = "Z", 0
        elif zone_draw < 0.85:
            zone, offset = rng.choice(vocab.OFFSETS)
        else:
            zone, offset = "", 0  # no zone at all: the contract reads it as UTC
        whole, micros = divmod(instant + offset * 60_000_000, 1_000_000)
        day, second = divmod(whole, 86400)
        date = self._dates.get(day)
        if date is None:
            date = dt.date.fromordinal(self._start_day + day).isoformat()
            self._dates[day] = date
        hour, rest = divmod(second, 3600)
        minute, second = divmod(rest, 60)
        fraction_draw = draw()
        if fraction_draw < 0.7:
            digits = 0
        elif fraction_draw < 0.88:
            digits = 3
        elif fraction_draw < 0.96:
            digits = 6
        else:
            digits = rng.choice((1, 2, 4, 5))
        cut = 10 ** (6 - digits)
        fraction = f".{micros // cut:0{digits}d}" if digits else ""
        text = f"{date}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{zone}"
        return Stamp(text, instant - micros % cut)
