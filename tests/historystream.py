"""An independent stream for the history acceptance tests (issue 25): orders in six currencies
over four weeks, users with several versions (some late, some out of order, some delivered
twice), products renamed and repriced, weekday rates (MXN has none), in two phases: the second
phase holds versions that arrive after the orders they apply to.

Written for the tests from the contract alone: it shares no code with ``producer_sim``."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

COUNTRIES = ("DE", "FR", "GB", "US", "CA", "BR", "MX", "IN", "JP", "ES")
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "BRL", "MXN")
RATED = {"EUR": 1.09, "GBP": 1.27, "CAD": 0.73, "BRL": 0.18}  # MXN: none at all
START = datetime(2025, 8, 1, tzinfo=UTC)
DAYS = 28

Record = tuple[bytes | None, bytes | None]  # (key, value)


@dataclass
class Phase:
    orders: list[Record] = field(default_factory=list)
    users: list[Record] = field(default_factory=list)
    products: list[Record] = field(default_factory=list)
    rates: list[Record] = field(default_factory=list)


def _stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(value: dict[str, object]) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def build(seed: int = 7, orders: int = 240, users: int = 20, products: int = 8) -> list[Phase]:
    """Two phases; every key's records land on one partition (keyed by the natural key)."""
    rng = random.Random(seed)
    first, second = Phase(), Phase()
    # Users: 1-3 versions each, the first before or inside the run; some late (phase 2).
    for n in range(1, users + 1):
        uid = f"hu-{n:03d}"
        times = sorted(START + timedelta(hours=rng.randrange(-24 * 20, 24 * DAYS))
                       for _ in range(rng.randint(1, 3)))  # fmt: skip
        for i, at in enumerate(times):
            value = _json({"user_id": uid, "name": f"User {n}", "email": f"u{n}@example.test",
                           "country": rng.choice(COUNTRIES), "signup_date": "2024-05-01",
                           "updated_at": _stamp(at)})  # fmt: skip
            late = rng.random() < (0.3 if i == 0 else 0.4)
            (second if late else first).users.append((uid.encode(), value))
            if rng.random() < 0.15:  # delivered twice, the second time in phase 2
                second.users.append((uid.encode(), value))
    second.users.reverse()  # the late versions out of order
    for n in range(1, products + 1):
        sku = f"hp-{n:02d}"
        price = rng.randrange(500, 9000)
        for i in range(rng.randint(1, 2)):
            at = START + timedelta(days=-10 if i == 0 else rng.randrange(3, DAYS))
            value = _json({"sku": sku, "name": f"Product {n}" + (" v2" if i else ""),
                           "category": "misc", "list_price": (price + 100 * i) / 100,
                           "updated_at": _stamp(at)})  # fmt: skip
            (second if i and rng.random() < 0.5 else first).products.append((sku.encode(), value))
    # Rates on weekdays; a week of them late (phase 2); a correction of one day.
    day = START.date() - timedelta(days=3)
    levels = dict(RATED)
    while day < START.date() + timedelta(days=DAYS):
        if day.weekday() < 5:
            for currency, level in levels.items():
                levels[currency] = round(level * (1 + rng.uniform(-0.01, 0.01)), 6)
                value = {"date": str(day), "currency": currency, "rate": levels[currency]}
                record = (f"{currency}:{day}".encode(), _json(value))
                late = date(2025, 8, 11) <= day <= date(2025, 8, 15)
                (second if late else first).rates.append(record)
        day += timedelta(days=1)
    second.rates.append((b"EUR:2025-08-05", _json({"date": "2025-08-05", "currency": "EUR",
                                                  "rate": 1.2345})))  # fmt: skip
    # Bad reference records: rejected as invalid_reference, once.
    first.users.append((b"hu-bad", _json({"user_id": "hu-bad", "updated_at": "soon"})))
    first.rates.append((b"XXX:bad", b"not json"))
    # Orders over the four weeks, in time order.
    for n in range(1, orders + 1):
        at = START + timedelta(seconds=rng.randrange(DAYS * 86400))
        doc: dict[str, object] = {
            "order_id": f"ho-{n:04d}",
            "user_id": f"hu-{rng.randint(1, users):03d}",
            "currency": rng.choice(CURRENCIES),
            "created_at": _stamp(at),
            "items": [{"sku": f"hp-{rng.randint(1, products):02d}", "quantity": rng.randint(1, 3),
                       "price": rng.randrange(100, 5000) / 100} for _ in range(rng.randint(1, 3))],
            "metadata": {"source": rng.choice(("web", "app", "store"))},
        }  # fmt: skip
        roll = rng.random()
        if roll < 0.04:
            del doc["currency"]
        elif roll < 0.08:
            del doc["created_at"]
        first.orders.append((str(doc["order_id"]).encode(), _json(doc)))
    return [first, second]
