"""An independent reading of a simulated stream with its change topics, from the bytes alone.

It knows the record formats of the contract (§1, §2) and the decisions of issue 25, nothing of
the simulator's code: which version of a user or product, and which rate, each order relies on,
and whether each reference record came late, out of order, or again.
"""

from __future__ import annotations

import datetime as dt
import json
from bisect import bisect_right
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from tests.unit.test_sim_stream import reject_reason

EURO = {"ES", "DE", "AT", "FR", "BE", "LU", "IT", "SM", "PT", "FI", "GR", "CY", "NL", "IE", "SK"}
OTHER = {"GB": "GBP", "MX": "MXN", "BR": "BRL", "CA": "CAD"}
RATED = ("EUR", "GBP", "CAD", "BRL")
STREAMS = ("users", "products", "fx")
CONTENT = {
    "users": ("name", "email", "country", "signup_date"),
    "products": ("name", "category", "list_price"),
}
KEY_FIELD = {"users": "user_id", "products": "sku"}
Identity = tuple[str, str, str]  # (stream, key, updated_at or date)


def currency_of(country: str) -> str:
    return "EUR" if country in EURO else OTHER.get(country, "USD")


def instant(text: str) -> dt.datetime:
    """An ISO-8601 timestamp as an aware UTC datetime (no zone means UTC)."""
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def parse(value: bytes) -> Any:
    return json.loads(value.decode("utf-8"), parse_float=Decimal, parse_int=Decimal)


@dataclass
class Reading:
    """Every version, rate and base order of a stream, and each reference record's fate."""

    versions: dict[tuple[str, str], list[tuple[dt.datetime, tuple[Any, ...]]]] = field(
        default_factory=lambda: defaultdict(list)
    )  # (stream, key) -> [(updated_at, content)], sorted
    rates: dict[tuple[str, dt.date], Decimal] = field(default_factory=dict)
    orders: list[dict[str, Any]] = field(default_factory=list)  # first-seen loadable orders
    fates: list[str] = field(default_factory=list)  # per reference record, in stream order
    records: dict[Identity, list[bytes]] = field(default_factory=lambda: defaultdict(list))

    def version_at(self, stream: str, key: str, at: dt.datetime | None) -> tuple[Any, ...]:
        """(updated_at, content) of the version in effect at ``at`` (the first one before it)."""
        history = self.versions[(stream, key)]
        if at is None:
            return history[-1]
        where = bisect_right([t for t, _ in history], at) - 1
        return history[max(where, 0)]

    def rate_day(self, currency: str, day: dt.date) -> dt.date | None:
        days = [d for c, d in self.rates if c == currency and d <= day]
        return max(days) if days else None


def identity_of(stream: str, doc: dict[str, Any]) -> tuple[Identity, tuple[Any, ...]]:
    if stream == "fx":
        return (stream, doc["currency"], doc["date"]), (doc["rate"],)
    key = doc[KEY_FIELD[stream]]
    return (stream, key, doc["updated_at"]), tuple(doc[name] for name in CONTENT[stream])


def read(lines: Iterable[tuple[str | None, bytes | None, bytes | None]]) -> Reading:
    """``lines``: (stream or None for the orders topic, key, value), in publication order."""
    stream_records = list(lines)
    reading = Reading()
    contents: dict[Identity, tuple[Any, ...]] = {}
    for stream, _, value in stream_records:
        if stream is None or value is None:
            continue
        ident, content = identity_of(stream, parse(value))
        assert contents.setdefault(ident, content) == content, ident  # a repeat has one content
        if stream == "fx":
            reading.rates[(ident[1], dt.date.fromisoformat(ident[2]))] = content[0]
    for (stream, key, stamp), content in contents.items():
        if stream != "fx":
            reading.versions[(stream, key)].append((instant(stamp), content))
    for history in reading.versions.values():
        history.sort()
    published: set[Identity] = set()
    needed: set[Identity] = set()
    newest: dict[tuple[str, str], dt.datetime] = {}
    seen_orders: set[str] = set()
    for stream, _, value in stream_records:
        if stream is not None:
            assert value is not None
            ident, _ = identity_of(stream, parse(value))
            reading.records[ident].append(value)
            reading.fates.append(_fate(ident, published, needed, newest))
            published.add(ident)
            if stream != "fx":
                at = instant(ident[2])
                newest[(stream, ident[1])] = max(newest.get((stream, ident[1]), at), at)
            continue
        if reject_reason(value) is not None:
            continue
        assert value is not None
        order = parse(value)
        if order["order_id"] in seen_orders:
            continue
        seen_orders.add(order["order_id"])
        reading.orders.append(order)
        needed |= _needs(reading, order) - published
    return reading


def _fate(
    ident: Identity,
    published: set[Identity],
    needed: set[Identity],
    newest: dict[tuple[str, str], dt.datetime],
) -> str:
    if ident in published:
        return "repeat"
    stream, key, stamp = ident
    if stream != "fx" and (stream, key) in newest and newest[(stream, key)] > instant(stamp):
        return "out_of_order"
    return "late" if ident in needed else "on_time"


def stamp_text(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _needs(reading: Reading, order: dict[str, Any]) -> set[Identity]:
    """The versions and rate an order with a created_at relies on."""
    if order.get("created_at") is None:
        return set()
    at = instant(order["created_at"])
    needs: set[Identity] = set()
    keys = [("users", order["user_id"])] if "user_id" in order else []
    keys += [("products", line["sku"]) for line in order.get("items") or []]
    for stream, key in keys:
        if (stream, key) in reading.versions:
            needs.add((stream, key, stamp_text(reading.version_at(stream, key, at)[0])))
    currency = order.get("currency")
    if currency in RATED:
        day = reading.rate_day(currency, at.date())
        if day is not None:
            needs.add(("fx", currency, day.isoformat()))
    return needs
