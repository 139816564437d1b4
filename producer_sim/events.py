"""The simulated order stream: base orders, their re-sends and the malformed records in between.

``--orders N`` counts base orders: every one of them is valid per interface §1 (a few with a
tolerated oddity), so a consumer should load exactly N orders. Re-sends (identical or
conflicting) and malformed records come on top of them; re-sends still pending when the last base
order is out close the stream.
"""

from __future__ import annotations

import base64
import bisect
import heapq
import itertools
import json
import random
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping
from typing import IO, NamedTuple

from producer_sim.clock import Clock, span_us
from producer_sim.config import CLEAN, ORDER_VARIATIONS, Settings, reference_stream
from producer_sim.encoding import COMPACT, RESEND_STYLES, Json, encode, shuffled_keys
from producer_sim.feed import ReferenceFeed
from producer_sim.history import START_US, History
from producer_sim.malformed import MalformedFactory
from producer_sim.orders import OrderFactory, cents, order_id
from producer_sim.records import SimRecord
from producer_sim.reference import Reference, generate_reference

__all__ = ["Resume", "SimRecord", "generate_records", "write_lines"]

RESEND_NOW = 0.35  # share of re-sends that follow their original at once
RESEND_SOON = 0.15  # within 50 orders; the rest come 1,000 to 5,000 orders later
LATE_RESEND_RANGE = (1_000, 5_000)


class Resume(NamedTuple):
    """Where a run starts in its seed's stream, instead of at the first record.

    ``after_order``: start after base order N and the records drawn with it, and drop the
    re-sends of earlier orders still pending (an earlier bounded run sent them at its end, or
    was another stream); the change topics then start with a snapshot of what is due so far
    (``ReferenceFeed.snapshot``). Then skip ``records`` records: where an earlier run of the
    same settings, started at the same ``after_order``, stopped (its pending re-sends still
    come).
    """

    after_order: int = 0
    records: int = 0


def generate_records(
    settings: Settings, reference: Reference | None = None, resume: Resume | None = None
) -> Iterator[SimRecord]:
    """The whole stream for ``settings`` (endless if ``settings.orders`` is 0), deterministic.

    The same seed, ``--orders`` and ``--days`` give the same records; the records of the change
    topics in ``settings.reference_streams`` come in between. ``resume`` starts the stream part
    way (skipped records are generated, not yielded).
    """
    if reference is None:
        reference = generate_reference(settings.orders)
    records = _Stream(settings, reference).records(resume.after_order if resume else 0)
    if resume is not None and resume.records:
        return itertools.islice(records, resume.records, None)
    return records


class _Stream:
    def __init__(self, settings: Settings, reference: Reference) -> None:
        self._settings = settings
        self._rng = random.Random(f"orders-sim:{settings.seed}:events")
        history = History(reference)
        self._clock = Clock(settings.seed, settings.orders, settings.days)
        self._feed: ReferenceFeed | None = None
        if settings.reference_streams:
            end = START_US + span_us(settings.days) if settings.orders else None
            self._feed = ReferenceFeed(settings.seed, history, end, settings.reference_streams)
        self._orders = OrderFactory(history, self._rng, track_needs=self._feed is not None)
        self._malformed = MalformedFactory(self._orders, self._rng, settings.seed)
        self._pending: list[tuple[int, int, SimRecord]] = []  # (due order number, seq, record)
        self._seq = itertools.count()

    def records(self, after_order: int = 0) -> Iterator[SimRecord]:
        """The records; none is yielded until base order ``after_order`` and its extras are out."""
        rates = self._settings.rates
        limit = self._settings.orders
        draw = self._rng.random
        thresholds = list(itertools.accumulate(getattr(rates, v) for v in ORDER_VARIATIONS))
        kinds = (*ORDER_VARIATIONS, CLEAN)
        identical = rates.resend_identical
        resend = identical + rates.resend_conflicting
        malformed = rates.malformed
        pending = self._pending
        seed = self._settings.seed
        feed, clock = self._feed, self._clock
        for number in itertools.count(1):
            if limit and number > limit:
                break
            live = number > after_order
            if number == after_order + 1:
                pending.clear()
                if feed is not None and after_order:
                    yield from feed.snapshot()
            instant = clock.instant(number)
            if feed is not None:
                due_records = feed.before(number, instant)
                if live:
                    yield from due_records
            while pending and pending[0][0] <= number:
                due = heapq.heappop(pending)[2]
                if live:
                    yield due
            kind = kinds[bisect.bisect_right(thresholds, draw())]
            oid = order_id(seed, number)
            order = self._orders.order(oid, kind, number, instant)
            value = encode(order)
            key = oid.encode()
            if live:
                yield SimRecord(key, value, kind)
            if feed is not None:
                feed.note(self._orders.needs)
            resend_draw = draw()
            if resend_draw < resend:
                if resend_draw < identical:
                    again = self._identical(key, order, value)
                else:
                    again = self._conflicting(key, order)
                delay = self._resend_delay()
                if delay:
                    heapq.heappush(pending, (number + delay, next(self._seq), again))
                elif live:
                    yield again
            if draw() < malformed:
                reason, bad_key, bad_value = self._malformed.record()
                if live:
                    yield SimRecord(bad_key, bad_value, f"malformed:{reason}")
        if limit and after_order >= limit:
            return  # nothing of this run is left, not even its pending re-sends
        if feed is not None:
            yield from feed.finish()
        while pending:
            yield heapq.heappop(pending)[2]

    def _resend_delay(self) -> int:
        where = self._rng.random()
        if where < RESEND_NOW:
            return 0
        if where < RESEND_NOW + RESEND_SOON:
            return self._rng.randint(1, 50)
        return self._rng.randint(*LATE_RESEND_RANGE)

    def _identical(self, key: bytes, order: dict[str, Json], value: bytes) -> SimRecord:
        """The same content; most of the time spelled differently (blanks, key order, escapes)."""
        rng = self._rng
        if rng.random() < 0.3:
            return SimRecord(key, value, "resend_identical")
        style = rng.choice(RESEND_STYLES)
        document = shuffled_keys(order, rng) if rng.random() < 0.5 else order
        return SimRecord(key, encode(document, style), "resend_identical")

    def _conflicting(self, key: bytes, order: dict[str, Json]) -> SimRecord:
        """Same order_id, different content: a changed quantity, a dropped line, or a new total."""
        rng = self._rng
        changed = dict(order)
        items = order.get("items")
        total = cents(order["amount"])
        how = rng.random()
        if isinstance(items, list) and items and how < 0.4:
            line = rng.randrange(len(items))
            new_items = [dict(item) for item in items]
            new_items[line]["quantity"] += 1
            changed["items"] = new_items
            total += cents(new_items[line]["price"])
        elif isinstance(items, list) and len(items) > 1 and how < 0.6:
            dropped = items[-1]
            changed["items"] = items[:-1]
            total -= cents(dropped["price"]) * dropped["quantity"]
        else:
            total += rng.randint(1, 2_000)
        changed["amount"] = total / 100
        return SimRecord(key, encode(changed, COMPACT), "resend_conflicting")


def write_lines(
    records: Iterable[SimRecord], out: IO[str], topics: Mapping[str, str] | None = None
) -> Counter[str]:
    """The stream as JSON lines ``{"kind", "key", "value"}`` (``value_base64`` if not UTF-8);
    records of a change topic start with ``"topic"``, its name in ``topics`` (by stream)."""
    counts: Counter[str] = Counter()
    for record in records:
        line: dict[str, str | None] = {}
        stream = reference_stream(record.kind)
        if stream is not None:
            line["topic"] = (topics or {}).get(stream, stream)
        line["kind"] = record.kind
        line["key"] = record.key.decode() if record.key is not None else None
        try:
            line["value"] = record.value.decode() if record.value is not None else None
        except UnicodeDecodeError:
            line["value_base64"] = base64.b64encode(record.value or b"").decode()
        out.write(json.dumps(line, ensure_ascii=False) + "\n")
        counts[record.kind] += 1
    return counts
