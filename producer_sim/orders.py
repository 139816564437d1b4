"""Realistic order documents: who buys what, at which price, when, and through which channel."""

from __future__ import annotations

import bisect
import datetime as dt
import itertools
import random

from producer_sim import vocab
from producer_sim.clock import Stamper
from producer_sim.config import reference_sizes
from producer_sim.encoding import Json
from producer_sim.fx import FX_CURRENCIES, currency_of, day_on_or_before
from producer_sim.history import DAY_US, START_US, History, Need

MAX_ITEMS = 8
_ORDINAL = dt.date(1970, 1, 1).toordinal()


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
    the shop grows with its orders. It is placed at the instant it is given, and its currency
    and prices are those of the user's and products' versions in effect then (``history``).
    With ``track_needs``, ``needs`` says which versions and rate the last order relies on.
    """

    def __init__(self, history: History, rng: random.Random, track_needs: bool = False) -> None:
        self._rng = rng
        self._history = history
        reference = history.reference
        self._user_ids = [u.user_id for u in reference.users]
        self._n_late_users = len(reference.late_users)
        self._n_late_products = len(reference.late_products)
        self._n_users, self._n_products = len(reference.users), len(reference.products)
        weights = list(itertools.accumulate(vocab.SOURCE_WEIGHTS))
        self._source_thresholds = [w / weights[-1] for w in weights[:-1]]
        self._stamper = Stamper(rng)
        self._instant = START_US
        self._track = track_needs
        self.needs: list[Need] = []
        self._users_now = self._products_now = 1
        self._at(1)

    def _at(self, number: int) -> None:
        users, products = reference_sizes(number)
        self._users_now = min(users, self._n_users)
        self._products_now = min(products, self._n_products)

    def order(
        self,
        oid: str,
        variation: str = "clean",
        number: int | None = None,
        instant: int | None = None,
    ) -> dict[str, Json]:
        """A valid order (interface §1) with at most one tolerated ``variation`` applied.

        ``number`` is the base order's number and ``instant`` its time (µs); without them, the
        last ones given.
        """
        if number is not None:
            self._at(number)
        if instant is not None:
            self._instant = instant
        rng = self._rng
        draw = rng.random
        stamp = self._stamper.stamp(self._instant)
        when = stamp.instant
        if variation == "late_user":
            user = self._history.late_user(rng.randrange(self._n_late_users))
        else:
            user = self._history.user(int(self._users_now * draw() ** 1.6))  # a few buy a lot
        user_version = user.index_at(when)
        promo, discount = rng.choice(vocab.PROMOS) if draw() < 0.3 else (None, 0)
        n_items = 1
        while n_items < MAX_ITEMS and draw() < 0.45:
            n_items += 1
        if variation == "duplicate_sku":
            n_items = max(n_items, 2) - 1  # one more line comes below, repeating a sku
        items, total, lines = self._items(n_items, discount, when)
        if variation == "late_sku":
            product = self._history.late_product(rng.randrange(self._n_late_products))
            late_version = product.index_at(when)
            price = product.versions[late_version].list_price_cents
            line = rng.randrange(len(items))
            total -= cents(items[line]["price"]) * items[line]["quantity"]
            items[line] = {
                "sku": product.versions[0].sku,
                "quantity": items[line]["quantity"],
                "price": price / 100,
            }
            lines[line] = (product, late_version)
            total += price * items[line]["quantity"]
        elif variation == "duplicate_sku":
            again = rng.randrange(len(items))
            price = items[again]["price"]
            items.append({"sku": items[again]["sku"], "quantity": 1, "price": price})
            lines.append(lines[again])
            total += cents(price)
        elif variation == "amount_mismatch":
            total += rng.choice(vocab.SHIPPING_FEES)  # the shop added shipping to the total
        source = vocab.SOURCES[bisect.bisect_right(self._source_thresholds, draw())]
        metadata: dict[str, Json] = {"source": source, "promo": promo}
        if source == "store":
            metadata["store"] = rng.choice(vocab.STORES)
        buyer = user.versions[user_version]
        order: dict[str, Json] = {
            "order_id": oid,
            "user_id": buyer.user_id,
            "amount": total / 100,
            "currency": currency_of(buyer.country),
            "created_at": stamp.text,
            "items": items,
            "metadata": metadata,
        }
        if variation != "clean":
            self._vary(order, variation)
        if self._track:
            self.needs = self._needs(order, when, (user, user_version), lines)
        return order

    @staticmethod
    def _needs(order: dict[str, Json], when: int, user: Need, lines: list[Need]) -> list[Need]:
        """What a reader needs to place this order in time: none without a created_at."""
        if order.get("created_at") is None:
            return []
        needs: list[Need] = [user] if "user_id" in order else []
        if order.get("items"):
            needs += lines
        currency = order.get("currency")
        if currency in FX_CURRENCIES:
            day = day_on_or_before(_date(when))
            if day >= 0:
                needs.append((currency, day))
        return needs

    def _items(
        self, count: int, discount: int, when: int
    ) -> tuple[list[dict[str, Json]], int, list[Need]]:
        draw = self._rng.random
        n_products = self._products_now
        chosen: list[int] = []
        while len(chosen) < count:
            pick = int(n_products * draw() ** 1.4)  # popular products sell more
            if pick not in chosen or len(chosen) >= n_products:
                chosen.append(pick)
        items: list[dict[str, Json]] = []
        lines: list[Need] = []
        total = 0
        for index in chosen:
            product = self._history.product(index)
            version = product.index_at(when)
            list_price = product.versions[version].list_price_cents
            lines.append((product, version))
            quantity = 1
            while quantity < 10 and draw() < 0.3:
                quantity += 1
            price = list_price * (100 - discount) // 100
            if draw() < 0.1:  # dynamic pricing: a few percent off the list now and then
                price = max(price + round(price * (draw() - 0.5) * 0.1), 1)
            sku = product.versions[0].sku
            items.append({"sku": sku, "quantity": quantity, "price": price / 100})
            total += price * quantity
        return items, total, lines

    def _vary(self, order: dict[str, Json], variation: str) -> None:
        rng = self._rng
        field, _, how = variation.rpartition("_")
        if how == "missing":
            del order[field]
        elif how == "null":
            order[field] = None
        elif how == "empty":
            order[field] = [] if field == "items" else {}
        elif variation == "extra_fields":
            order["shipping"] = {
                "method": rng.choice(vocab.SHIPPING_METHODS),
                "city": rng.choice(vocab.CITIES),
                "fee": rng.choice(vocab.SHIPPING_FEES) / 100,
            }
            order["api_version"] = rng.choice((2, 3))
            order["items"][0]["gift_wrap"] = rng.random() < 0.5


def _date(instant: int) -> dt.date:
    return dt.date.fromordinal(_ORDINAL + instant // DAY_US)
