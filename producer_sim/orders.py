"""Realistic order documents: who buys what, at which price, when, and through which channel."""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random

from producer_sim import vocab
from producer_sim.config import reference_sizes
from producer_sim.encoding import Json
from producer_sim.reference import Reference

START = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)
MEAN_GAP_SECONDS = 2.5
MAX_ITEMS = 8


def seed_scope(seed: int) -> str:
    """The part of every id that names the seed: ``s42``, or ``sm7`` for seed -7."""
    return f"s{seed}" if seed >= 0 else f"sm{-seed}"


def order_id(seed: int, number: int) -> str:
    """``o-s42-0000001``: the seed is part of the id, so streams of two seeds never share one."""
    return f"o-{seed_scope(seed)}-{number:07d}"


def order_number(key: bytes) -> int:
    """The base order number in a key made by ``order_id``."""
    return int(key.rpartition(b"-")[2])


def cents(amount: float) -> int:
    return round(amount * 100)


class OrderFactory:
    """Builds order documents as plain dicts; money is exact cents turned into floats.

    Order ``n`` buys from the users and products that exist by then (``reference_sizes(n)``):
    the shop grows with its orders, so order ``n`` is the same whatever the length of the run,
    and a run of N orders is the start of any longer run of the same seed.
    """

    def __init__(self, reference: Reference, rng: random.Random) -> None:
        self._rng = rng
        self._user_ids = [u.user_id for u in reference.users]
        self._currencies = [_currency(u.country) for u in reference.users]
        self._late_user_ids = [u.user_id for u in reference.late_users]
        self._skus = [p.sku for p in reference.products]
        self._prices = [p.list_price_cents for p in reference.products]
        self._late_products = [(p.sku, p.list_price_cents) for p in reference.late_products]
        weights = list(itertools.accumulate(vocab.SOURCE_WEIGHTS))
        self._source_thresholds = [w / weights[-1] for w in weights[:-1]]
        self._clock = START.timestamp()
        self._start_day = START.date().toordinal() - int(START.timestamp()) // 86400
        self._dates: dict[int, str] = {}
        self._users_now = self._products_now = 1
        self._at(1)

    def _at(self, number: int) -> None:
        users, products = reference_sizes(number)
        self._users_now = min(users, len(self._user_ids))
        self._products_now = min(products, len(self._skus))

    def order(
        self, oid: str, variation: str = "clean", number: int | None = None
    ) -> dict[str, Json]:
        """A valid order (interface §1) with at most one tolerated ``variation`` applied.

        ``number`` is the base order's number; without it, the last one given.
        """
        if number is not None:
            self._at(number)
        rng = self._rng
        draw = rng.random
        user = int(self._users_now * draw() ** 1.6)  # a few users buy a lot
        promo, discount = rng.choice(vocab.PROMOS) if draw() < 0.3 else (None, 0)
        n_items = 1
        while n_items < MAX_ITEMS and draw() < 0.45:
            n_items += 1
        if variation == "duplicate_sku":
            n_items = max(n_items, 2) - 1  # one more line comes below, repeating a sku
        items, total = self._items(n_items, discount)
        if variation == "late_sku":
            sku, price = rng.choice(self._late_products)
            line = rng.randrange(len(items))
            total -= cents(items[line]["price"]) * items[line]["quantity"]
            items[line] = {"sku": sku, "quantity": items[line]["quantity"], "price": price / 100}
            total += price * items[line]["quantity"]
        elif variation == "duplicate_sku":
            again = rng.choice(items)
            items.append({"sku": again["sku"], "quantity": 1, "price": again["price"]})
            total += cents(again["price"])
        elif variation == "amount_mismatch":
            total += rng.choice(vocab.SHIPPING_FEES)  # the shop added shipping to the total
        source = vocab.SOURCES[bisect.bisect_right(self._source_thresholds, draw())]
        metadata: dict[str, Json] = {"source": source, "promo": promo}
        if source == "store":
            metadata["store"] = rng.choice(vocab.STORES)
        order: dict[str, Json] = {
            "order_id": oid,
            "user_id": self._user_ids[user],
            "amount": total / 100,
            "currency": self._currencies[user],
            "created_at": self.timestamp(),
            "items": items,
            "metadata": metadata,
        }
        if variation != "clean":
            self._vary(order, variation)
        return order

    def _items(self, count: int, discount: int) -> tuple[list[dict[str, Json]], int]:
        draw = self._rng.random
        n_products = self._products_now
        chosen: list[int] = []
        while len(chosen) < count:
            product = int(n_products * draw() ** 1.4)  # popular products sell more
            if product not in chosen or len(chosen) >= n_products:
                chosen.append(product)
        items: list[dict[str, Json]] = []
        total = 0
        for product in chosen:
            quantity = 1
            while quantity < 10 and draw() < 0.3:
                quantity += 1
            price = self._prices[product] * (100 - discount) // 100
            if draw() < 0.1:  # dynamic pricing: a few percent off the list now and then
                price = max(price + round(price * (draw() - 0.5) * 0.1), 1)
            items.append({"sku": self._skus[product], "quantity": quantity, "price": price / 100})
            total += price * quantity
        return items, total

    def _vary(self, order: dict[str, Json], variation: str) -> None:
        rng = self._rng
        field, _, how = variation.rpartition("_")
        if how == "missing":
            del order[field]
        elif how == "null":
            order[field] = None
        elif how == "empty":
            order[field] = [] if field == "items" else {}
        elif variation == "late_user":
            order["user_id"] = rng.choice(self._late_user_ids)
        elif variation == "extra_fields":
            order["shipping"] = {
                "method": rng.choice(vocab.SHIPPING_METHODS),
                "city": rng.choice(vocab.CITIES),
                "fee": rng.choice(vocab.SHIPPING_FEES) / 100,
            }
            order["api_version"] = rng.choice((2, 3))
            order["items"][0]["gift_wrap"] = rng.random() < 0.5

    def timestamp(self) -> str:
        """The next ``created_at``: always later, in a mix of ISO-8601 spellings."""
        rng = self._rng
        draw = rng.random
        self._clock += rng.expovariate(1 / MEAN_GAP_SECONDS)
        zone_draw = draw()
        if zone_draw < 0.55:
            zone, offset = "Z", 0
        elif zone_draw < 0.85:
            zone, offset = rng.choice(vocab.OFFSETS)
        else:
            zone, offset = "", 0  # no zone at all: the contract reads it as UTC
        local = self._clock + offset * 60
        whole = int(local)
        micros = int((local - whole) * 1_000_000)
        day, second = divmod(whole, 86400)
        date = self._dates.get(day)
        if date is None:
            date = dt.date.fromordinal(self._start_day + day).isoformat()
            self._dates[day] = date
        hour, rest = divmod(second, 3600)
        minute, second = divmod(rest, 60)
        fraction_draw = draw()
        if fraction_draw < 0.7:
            fraction = ""
        elif fraction_draw < 0.88:
            fraction = f".{micros // 1000:03d}"
        elif fraction_draw < 0.96:
            fraction = f".{micros:06d}"
        else:
            digits = rng.choice((1, 2, 4, 5))
            fraction = f".{micros // 10 ** (6 - digits):0{digits}d}"
        return f"{date}T{hour:02d}:{minute:02d}:{second:02d}{fraction}{zone}"


def _currency(country: str) -> str:
    if country in vocab.EURO_COUNTRIES:
        return "EUR"
    return vocab.COUNTRY_CURRENCY.get(country, "USD")
