"""The change topics, interleaved with the orders the way a CDC tool would publish them.

Every version of every user and product, and every rate, goes out once at the point of the order
stream where it is due: a key's first version just before the first order that can reach the
key (the shop grows with its orders, ``config.reference_sizes``); a later version as soon as the
orders' clock passes its ``updated_at``; a rate in the six hours before its day begins. Then:
- some are held back until an order has needed them (late): a share of versions and rates, and
  every version of a late-arriving user or product until the first order that uses it;
- some versions whose key has a newer one soon are held back until that one is out (out of
  order);
- some go out twice (repeat), at once or later, as the same bytes or spelled otherwise.

A record's kind is ``<stream>:<fate>``, judged on the facts when it goes out: ``out_of_order`` if
a newer version of its key went out before it, else ``late`` if an order needed it before, else
``on_time``; ``repeat`` for a second delivery; ``snapshot`` for the state a run that continues
another stream starts with (``ReferenceFeed.snapshot``). An order needs the versions of its
user and products in effect at its ``created_at``, and the rate of its currency then (none
without a ``created_at``). The feed draws from an RNG of its own: the orders are the same with
or without it, and each topic is the same whichever other topics are published.
"""

from __future__ import annotations

import datetime as dt
import heapq
import itertools
import random
from collections.abc import Iterable
from typing import Any, cast

from producer_sim.config import reference_sizes
from producer_sim.fx import Rates, weekday
from producer_sim.history import DAY_US, History, KeyHistory, Need
from producer_sim.records import SimRecord
from producer_sim.refcodec import (
    Record,
    encode,
    product_record,
    rate_record,
    respelled,
    user_record,
)

P_LATE = 0.03  # versions held until an order needs them
P_RATE_LATE = 0.08
P_OUT_OF_ORDER = 0.3  # of the versions whose key has a newer one within the window
OUT_OF_ORDER_WINDOW_US = 3 * DAY_US
P_REPEAT = 0.03
REPEAT_AT_ONCE = 0.4  # the rest come 1 to 500 base orders later
REPEAT_LATER = (1, 500)
RELEASE_AFTER = (1, 40)  # base orders after the one that needed a held record, or its successor
HOLD_LIMIT_US = 14 * DAY_US  # a held record that no order needs goes out after this
LATE_KEY_LIMIT_US = 28 * DAY_US  # the same for the late-arriving keys
RATE_LEAD_US = 6 * 3_600_000_000
_VERSION, _RATE, _RELEASE, _REPEAT = range(4)
Owner = KeyHistory[Any] | str  # a key's history, or a currency


class _Hold:
    __slots__ = ("done", "late", "needed", "number", "owner", "stream")

    def __init__(self, stream: str, owner: Owner, number: int, late: bool) -> None:
        self.stream, self.owner, self.number, self.late = stream, owner, number, late
        self.needed = self.done = False


def _midnight(date: dt.date) -> int:
    return (date - dt.date(1970, 1, 1)).days * DAY_US


class ReferenceFeed:
    """``before(n, t)``: the records due before base order n (at instant t); ``note``: what
    the order needed; ``finish``: the rest, at the end of a bounded run of span ``end``."""

    def __init__(self, seed: int, history: History, end: int | None, streams: Iterable[str]):
        self._rng = random.Random(f"orders-sim:{seed}:reference-feed")
        self._history = history
        self._rates = Rates()
        self._end = end  # µs; None: endless
        self._streams = frozenset(streams)
        self._seq = itertools.count()
        self._times: list[tuple[int, int, int, object]] = []  # (instant, seq, action, what)
        self._slots: list[tuple[int, int, int, object]] = []  # (base order, seq, action, what)
        self._holds: dict[tuple[Owner, int], _Hold] = {}
        self._newest: dict[Owner, int] = {}  # the newest version out, per key
        self._current: dict[Owner, int] = {}  # the newest version due, per key or currency
        self._unused: set[Owner] = set()  # late-arriving keys no order has used yet
        self._out: list[SimRecord] = []
        self._users = self._products = self._rate_day = 0
        self._number = 0
        self._now = 0
        self._started = False

    def before(self, number: int, now: int) -> list[SimRecord]:
        self._number, self._now = number, now
        history = self._history
        if not self._started:
            self._started = True
            late: list[KeyHistory[Any]] = [*history.late_users, *history.late_products]
            self._unused.update(late)
            for key in late:
                self._due(key.stream, key, 0)
        users, products = reference_sizes(number)
        for index in range(self._users, min(users, len(history.reference.users))):
            self._due("users", history.user(index), 0)
        for index in range(self._products, min(products, len(history.reference.products))):
            self._due("products", history.product(index), 0)
        self._users = max(self._users, min(users, len(history.reference.users)))
        self._products = max(self._products, min(products, len(history.reference.products)))
        self._schedule_rates(now + RATE_LEAD_US)
        self._run(now, number)
        out, self._out = self._out, []
        return out

    def note(self, needs: list[Need]) -> None:
        """The order just out needed these versions and rate: release held ones soon after.
        A late-arriving key's first use releases every version of it held so far."""
        for need in needs:
            owner = need[0]
            if owner in self._unused:
                self._unused.discard(owner)
                for (key, _), held in list(self._holds.items()):
                    if key is owner:
                        self._slot(self._number + self._rng.randint(*RELEASE_AFTER), _RELEASE, held)
            hold = self._holds.get(need)
            if hold is not None and not hold.needed:
                hold.needed = True
                if hold.late:
                    self._slot(self._number + self._rng.randint(*RELEASE_AFTER), _RELEASE, hold)

    def finish(self) -> list[SimRecord]:
        """Everything left of a bounded run: due before its end, held, or to be repeated."""
        assert self._end is not None
        self._now = self._end
        self._schedule_rates(self._end - 1, ignore_lead=True)
        while True:
            self._run(None, None)
            if self._slots:
                self._act(*heapq.heappop(self._slots)[2:])
            elif self._holds:
                self._release(next(iter(self._holds.values())))
            else:
                break
        out, self._out = self._out, []
        return out

    def snapshot(self) -> list[SimRecord]:
        """A run that continues another stream starts with every key's version and every rate
        due so far (the CDC tool's snapshot); what the other stream held back is dropped."""
        self._holds.clear()
        self._slots.clear()
        self._unused.clear()
        self._times = [entry for entry in self._times if entry[2] != _RELEASE]
        heapq.heapify(self._times)
        self._newest.clear()
        for owner, number in self._current.items():
            if isinstance(owner, str):
                for day in range(number + 1):
                    self._emit("fx", rate_record(self._rates.rate(owner, day)), "snapshot")
            else:
                self._emit(owner.stream, _record(owner, number), "snapshot")
                self._newest[owner] = number
        out, self._out = self._out, []
        return out

    def _schedule_rates(self, until: int, ignore_lead: bool = False) -> None:
        """Put the rates of every day beginning by ``until`` on the clock, each due at a random
        moment of the six hours before its day begins."""
        while True:
            midnight = _midnight(weekday(self._rate_day))
            if midnight > until or (self._end is not None and midnight >= self._end):
                return
            for rate in self._rates.day(self._rate_day):
                lead = 0 if ignore_lead else self._rng.randrange(RATE_LEAD_US)
                self._time(midnight - lead, _RATE, (rate.currency, rate.day))
            self._rate_day += 1

    def _run(self, now: int | None, number: int | None) -> None:
        """Act on the clock's entries up to ``now`` and the slots up to base order ``number``
        (None: all of them)."""
        times, slots = self._times, self._slots
        while times and (now is None or times[0][0] <= now):
            self._act(*heapq.heappop(times)[2:])
        while slots and number is not None and slots[0][0] <= number:
            self._act(*heapq.heappop(slots)[2:])

    def _act(self, action: int, what: object) -> None:
        if action == _VERSION:
            owner, number = cast(tuple[KeyHistory[Any], int], what)
            self._due(owner.stream, owner, number)
        elif action == _RATE:
            currency, day = cast(tuple[str, int], what)
            self._due("fx", currency, day)
        elif action == _RELEASE:
            self._release(cast(_Hold, what))
        else:
            stream, record = cast(tuple[str, SimRecord], what)
            if stream in self._streams:
                self._out.append(record)

    def _time(self, instant: int, action: int, what: object) -> None:
        heapq.heappush(self._times, (instant, next(self._seq), action, what))

    def _slot(self, number: int, action: int, what: object) -> None:
        heapq.heappush(self._slots, (number, next(self._seq), action, what))

    def _due(self, stream: str, owner: Owner, number: int) -> None:
        """Version or rate ``number`` of ``owner`` is due: out now, or held back (every version
        of a late-arriving key until an order uses it)."""
        self._current[owner] = max(self._current.get(owner, -1), number)
        draw = self._rng.random()
        forced = owner in self._unused
        out_of_order = late = forced
        if isinstance(owner, KeyHistory):
            successor = owner.time(number + 1)
            if self._end is None or successor < self._end:
                self._time(max(successor, self._now), _VERSION, (owner, number + 1))
                soon = successor <= self._now + OUT_OF_ORDER_WINDOW_US
                out_of_order = not forced and soon and draw < P_OUT_OF_ORDER
            late = late or (not out_of_order and draw >= 1 - P_LATE)
        else:
            late = late or draw < P_RATE_LATE
        if not (late or out_of_order):
            self._publish(stream, owner, number, None)
            return
        hold = _Hold(stream, owner, number, late)
        self._holds[(owner, number)] = hold
        if late:
            limit = LATE_KEY_LIMIT_US if forced else HOLD_LIMIT_US
            self._time(self._now + limit, _RELEASE, hold)

    def _release(self, hold: _Hold) -> None:
        if not hold.done:
            hold.done = True
            del self._holds[(hold.owner, hold.number)]
            self._publish(hold.stream, hold.owner, hold.number, hold)

    def _publish(self, stream: str, owner: Owner, number: int, hold: _Hold | None) -> None:
        if isinstance(owner, KeyHistory):
            record = _record(owner, number)
            newest = self._newest.get(owner, -1)
            needed = hold is not None and hold.needed
            fate = "out_of_order" if newest > number else "late" if needed else "on_time"
            self._newest[owner] = max(newest, number)
            for older in range(number):  # held back until this newer version was out
                waiting = self._holds.get((owner, older))
                if waiting is not None and not waiting.late:
                    self._slot(self._number + self._rng.randint(*RELEASE_AFTER), _RELEASE, waiting)
        else:
            record = rate_record(self._rates.rate(owner, number))
            fate = "late" if hold and hold.needed else "on_time"
        self._emit(stream, record, fate)
        rng = self._rng
        if rng.random() < P_REPEAT:
            again = encode(record.fields) if rng.random() < 0.5 else respelled(record.fields, rng)
            copy = (stream, SimRecord(record.key, again, f"{stream}:repeat"))
            if rng.random() < REPEAT_AT_ONCE:
                self._act(_REPEAT, copy)
            else:
                self._slot(self._number + rng.randint(*REPEAT_LATER), _REPEAT, copy)

    def _emit(self, stream: str, record: Record, fate: str) -> None:
        if stream in self._streams:
            self._out.append(SimRecord(record.key, encode(record.fields), f"{stream}:{fate}"))


def _record(owner: KeyHistory[Any], number: int) -> Record:
    version = owner.version(number)
    return user_record(version) if owner.stream == "users" else product_record(version)
