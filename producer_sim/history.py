"""Users and products over time: every version of every key, the same in every run and seed.

A key's first version is its catalog row (``reference.Reference``), dated before the stream
starts (a user's sign-up, a product's listing). Later versions come at random instants from
the stream's start on, as a Poisson process per key: users move country (and so currency) or
change their email, products are renamed or repriced, and now and then a row is touched with
no change at all (an update of a column the warehouse does not keep, as CDC tools emit them).

Each key draws from a small generator of its own seeded by the key alone, so its history does
not depend on the seed, on the run's length, or on which other keys were looked at; histories
are built lazily, version by version, as far as someone asks.
"""

from __future__ import annotations

import bisect
import datetime as dt
import hashlib
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, NamedTuple, TypeVar

from producer_sim import vocab
from producer_sim.config import MAX_PRODUCTS

if TYPE_CHECKING:
    from producer_sim.reference import Product, Reference, User

START = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)  # the first order's day
START_US = int(START.timestamp()) * 1_000_000
DAY_US = 86_400_000_000
FIRST_LISTING = dt.date(2019, 1, 1)
LAST_LISTING = dt.date(2025, 7, 31)
# Changes per key and day. Over four weeks about one user in nine moves and one product in
# four is repriced: far more than a real shop, so that reports as was and as is differ.
USER_MOVES, USER_EMAILS, USER_TOUCHES = 1 / 240, 1 / 500, 1 / 400
PRODUCT_RENAMES, PRODUCT_REPRICES, PRODUCT_TOUCHES = 1 / 250, 1 / 90, 1 / 400
_MASK = (1 << 64) - 1


class UserVersion(NamedTuple):
    updated_at: int  # microseconds since the epoch (whole seconds), UTC
    user_id: str
    name: str
    email: str
    country: str
    signup_date: str


class ProductVersion(NamedTuple):
    updated_at: int
    sku: str
    name: str
    category: str
    list_price_cents: int


Version = UserVersion | ProductVersion
V = TypeVar("V", UserVersion, ProductVersion)


class KeyRandom:
    """SplitMix64 seeded by a name: cheap to create (one per key), the same on every platform."""

    __slots__ = ("_state",)

    def __init__(self, name: str) -> None:
        digest = hashlib.blake2b(name.encode(), digest_size=8).digest()
        self._state = int.from_bytes(digest, "big")

    def random(self) -> float:
        self._state = z = (self._state + 0x9E3779B97F4A7C15) & _MASK
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK
        return ((z ^ (z >> 31)) >> 11) / 9007199254740992.0

    def below(self, n: int) -> int:
        return min(int(self.random() * n), n - 1)

    def pick(self, options: tuple[str, ...]) -> str:
        return options[self.below(len(options))]


class KeyHistory(Generic[V]):
    """The versions of one key in ``updated_at`` order, made as far as asked for."""

    __slots__ = ("_change", "_next", "_per_us", "_rng", "stream", "times", "versions")

    def __init__(
        self,
        stream: str,
        first: V,
        rng: KeyRandom,
        per_day: float,
        change: Callable[[KeyRandom, V, int], V],
    ) -> None:
        self.stream = stream  # "users" or "products"
        self.versions: list[V] = [first]
        self.times = [first.updated_at]
        self._rng = rng
        self._per_us = per_day / DAY_US
        self._change: Callable[[KeyRandom, V, int], V] = change
        self._next = START_US + self._wait()

    def _wait(self) -> int:
        seconds = -math.log(1.0 - self._rng.random()) / (self._per_us * 1_000_000)
        return max(round(seconds), 1) * 1_000_000

    def _grow(self) -> None:
        version = self._change(self._rng, self.versions[-1], self._next)
        self.versions.append(version)
        self.times.append(self._next)
        self._next += self._wait()

    def index_at(self, instant: int) -> int:
        """The number of the version in effect at ``instant`` (µs; never before the first)."""
        while self._next <= instant:
            self._grow()
        return max(bisect.bisect_right(self.times, instant) - 1, 0)

    def version(self, number: int) -> V:
        while len(self.versions) <= number:
            self._grow()
        return self.versions[number]

    def time(self, number: int) -> int:
        return self.version(number).updated_at


# What an order relies on: (a key's history, a version number) or (a currency, a rate day).
Need = tuple["KeyHistory[Any] | str", int]


def shelf_price(draw: Callable[[], float], price: float) -> int:
    """Cents, mostly with the usual shop endings (.99, .49, .00)."""
    whole = max(int(price), 1)
    ending = draw()
    if ending < 0.6:
        return whole * 100 + 99
    if ending < 0.75:
        return whole * 100 + 49
    if ending < 0.9:
        return whole * 100
    return max(round(price * 100), 1)


_EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()


def _first_instant(rng: KeyRandom, day: dt.date) -> int:
    return ((day.toordinal() - _EPOCH_ORDINAL) * 86_400 + rng.below(86_400)) * 1_000_000


def _neighbours() -> dict[str, tuple[str, ...]]:
    """Per country, the other countries of the locales that list it (where people move)."""
    near: dict[str, list[str]] = {}
    for locale in vocab.LOCALES:
        for country in locale.countries:
            near.setdefault(country, [])
            near[country] += [c for c in locale.countries if c != country and c not in near]
    return {country: tuple(dict.fromkeys(others)) for country, others in near.items()}


_NEAR = _neighbours()


def _move(rng: KeyRandom, country: str) -> str:
    near = _NEAR.get(country, ())
    while True:
        destination = rng.pick(near) if near and rng.random() < 0.5 else rng.pick(vocab.MOVES_TO)
        if destination != country:
            return destination


def _user_change(rng: KeyRandom, before: UserVersion, at: int) -> UserVersion:
    draw = rng.random() * (USER_MOVES + USER_EMAILS + USER_TOUCHES)
    if draw < USER_MOVES:
        return before._replace(updated_at=at, country=_move(rng, before.country))
    if draw < USER_MOVES + USER_EMAILS:
        local, _, domain = before.email.partition("@")
        local = local.rstrip("0123456789.")
        others = tuple(d for d in vocab.EMAIL_DOMAINS if d != domain)
        email = f"{local}.{10 + rng.below(90)}@{rng.pick(others)}"
        return before._replace(updated_at=at, email=email)
    return before._replace(updated_at=at)  # touched: nothing the warehouse keeps changed


def _product_change(rng: KeyRandom, before: ProductVersion, at: int) -> ProductVersion:
    draw = rng.random() * (PRODUCT_RENAMES + PRODUCT_REPRICES + PRODUCT_TOUCHES)
    if draw < PRODUCT_RENAMES:
        brand, _, rest = before.name.partition(" ")
        others = tuple(b for b in vocab.BRANDS if b != brand)
        return before._replace(updated_at=at, name=f"{rng.pick(others)} {rest}")
    if draw < PRODUCT_RENAMES + PRODUCT_REPRICES:
        old = before.list_price_cents
        while True:
            factor = math.exp((rng.random() - 0.5) * 0.5)  # within about ±25%
            price = shelf_price(rng.random, old / 100 * factor)
            if price != old:
                return before._replace(updated_at=at, list_price_cents=price)
    return before._replace(updated_at=at)


def user_history(user: User) -> KeyHistory[UserVersion]:
    rng = KeyRandom(f"orders-sim:history:{user.user_id}")
    first = UserVersion(_first_instant(rng, dt.date.fromisoformat(user.signup_date)), *user)
    return KeyHistory("users", first, rng, USER_MOVES + USER_EMAILS + USER_TOUCHES, _user_change)


def product_history(product: Product, number: int, late: bool) -> KeyHistory[ProductVersion]:
    """``number``: 0 for the first product of its pool; listings grow slower with time."""
    rng = KeyRandom(f"orders-sim:history:{product.sku}")
    span = (LAST_LISTING - FIRST_LISTING).days
    if late:  # listed during the month before the stream, after the last reference export
        day = LAST_LISTING - dt.timedelta(days=rng.below(30))
    else:
        offset = int(span * math.log1p(number) / math.log1p(MAX_PRODUCTS)) + rng.below(30)
        day = FIRST_LISTING + dt.timedelta(days=min(offset, span))
    first = ProductVersion(_first_instant(rng, day), *product)
    rate = PRODUCT_RENAMES + PRODUCT_REPRICES + PRODUCT_TOUCHES
    return KeyHistory("products", first, rng, rate, _product_change)


class History:
    """Every key's history, built on first use; one object serves one stream or one export."""

    def __init__(self, reference: Reference) -> None:
        self.reference = reference
        self._users: dict[int, KeyHistory[UserVersion]] = {}
        self._products: dict[int, KeyHistory[ProductVersion]] = {}
        self._late_users = [user_history(u) for u in reference.late_users]
        self._late_products = [
            product_history(p, n, True) for n, p in enumerate(reference.late_products)
        ]

    def user(self, index: int) -> KeyHistory[UserVersion]:
        """The history of catalog user ``index`` (0-based)."""
        found = self._users.get(index)
        if found is None:
            found = self._users[index] = user_history(self.reference.users[index])
        return found

    def product(self, index: int) -> KeyHistory[ProductVersion]:
        found = self._products.get(index)
        if found is None:
            found = product_history(self.reference.products[index], index, False)
            self._products[index] = found
        return found

    def late_user(self, index: int) -> KeyHistory[UserVersion]:
        return self._late_users[index]

    def late_product(self, index: int) -> KeyHistory[ProductVersion]:
        return self._late_products[index]

    @property
    def late_users(self) -> list[KeyHistory[UserVersion]]:
        return self._late_users

    @property
    def late_products(self) -> list[KeyHistory[ProductVersion]]:
        return self._late_products
