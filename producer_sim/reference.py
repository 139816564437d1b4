"""Reference data: the catalog of users and products, and the CSV files of its history.

The catalog holds each key's first version; ``producer_sim.history`` makes the later ones and
``producer_sim.fx`` the exchange rates. The CSVs hold each key's version in effect at the end of
the run's span (``--days``), with the instant it took effect, and every rate of the span.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import itertools
import math
import os
import random
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

from producer_sim import vocab
from producer_sim.clock import span_us
from producer_sim.config import MAX_USERS, reference_sizes
from producer_sim.fx import Rates
from producer_sim.history import (
    START_US,
    History,
    KeyHistory,
    ProductVersion,
    UserVersion,
    shelf_price,
)

USERS_HEADER = ("user_id", "name", "email", "country", "signup_date", "updated_at")
PRODUCTS_HEADER = ("sku", "name", "category", "list_price", "updated_at")
FX_HEADER = ("date", "currency", "rate")
FIRST_SIGNUP = dt.date(2018, 1, 1)
LAST_SIGNUP = dt.date(2025, 7, 31)  # the day before the first order: every first version is older


class User(NamedTuple):
    user_id: str
    name: str
    email: str
    country: str
    signup_date: str  # YYYY-MM-DD


class Product(NamedTuple):
    sku: str
    name: str
    category: str
    list_price_cents: int


@dataclass(frozen=True)
class Reference:
    """The users and products the CSVs hold, plus the late ones the CSVs deliberately lack.

    One catalog serves every seed and every run length: user ``n`` and product ``n`` are the
    same rows whatever the seed and the size, and a run of N orders holds the first rows of the
    catalog. CSVs written by any runs into one place therefore agree row by row, and a longer
    run's CSV is a superset of a shorter one's. Late users and products are a small fixed pool
    with the highest ids, like accounts and products created after the last reference export.
    """

    users: tuple[User, ...]
    products: tuple[Product, ...]
    late_users: tuple[User, ...]
    late_products: tuple[Product, ...]


LATE_USERS = 10
LATE_PRODUCTS = 4
LATE_USER_BASE = 900_000  # u-900001...: above any regular user (at most MAX_USERS)
LATE_PRODUCT_BASE = 90_000  # p-90001...: above any regular product (at most MAX_PRODUCTS)


def user_id(number: int) -> str:
    return f"u-{number:06d}"


def sku(number: int) -> str:
    return f"p-{number:05d}"


def format_cents(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    return f"{sign}{abs(cents) // 100}.{abs(cents) % 100:02d}"


@functools.lru_cache(maxsize=4)  # immutable; the endless catalog takes about 3 s to build
def generate_reference(orders: int) -> Reference:
    """Users and products for a run of ``orders`` base orders (0: an endless run, all of them).

    The seed plays no part: the catalog is shared by all seeds (see ``Reference``).
    """
    n_users, n_products = reference_sizes(orders)
    return Reference(
        users=_users(random.Random("orders-sim:reference:users"), n_users, 1, FIRST_SIGNUP),
        products=_products(random.Random("orders-sim:reference:products"), n_products, 1),
        late_users=_users(
            random.Random("orders-sim:reference:late-users"),
            LATE_USERS,
            LATE_USER_BASE + 1,
            LAST_SIGNUP - dt.timedelta(days=30),
        ),
        late_products=_products(
            random.Random("orders-sim:reference:late-products"),
            LATE_PRODUCTS,
            LATE_PRODUCT_BASE + 1,
        ),
    )


def _signup_day(index: int, span: int) -> int:
    # Ids grow with sign-up time, as in a real accounts table; the day depends on the id alone
    # (never on the catalog size), and the growth slows down like a real shop's.
    return int(span * math.log1p(index) / math.log1p(MAX_USERS))


def _users(rng: random.Random, count: int, first_number: int, since: dt.date) -> tuple[User, ...]:
    cum_weights = list(itertools.accumulate(locale.weight for locale in vocab.LOCALES))
    span = (LAST_SIGNUP - since).days
    taken: set[str] = set()  # membership only: never iterated, so order cannot leak into output
    users = []
    for index in range(count):
        number = first_number + index
        locale = rng.choices(vocab.LOCALES, cum_weights=cum_weights)[0]
        first, first_ascii = rng.choice(locale.first)
        last, last_ascii = rng.choice(locale.last)
        name = f"{last}{first}" if locale.family_first else f"{first} {last}"
        local = _email_local(rng, first_ascii, last_ascii)
        if local in taken or first_number > 1:  # late users: unique beside any regular user
            local = f"{local}.{number}"
        taken.add(local)
        email = f"{local}@{rng.choice(vocab.EMAIL_DOMAINS)}"
        day = _signup_day(index, span) + rng.randint(0, 30)
        signup = since + dt.timedelta(days=min(max(day, 0), span))
        country = rng.choice(locale.countries)
        users.append(User(user_id(number), name, email, country, signup.isoformat()))
    return tuple(users)


def _email_local(rng: random.Random, first: str, last: str) -> str:
    pattern = rng.randrange(6)
    if pattern == 0:
        return f"{first}.{last}"
    if pattern == 1:
        return f"{first}{last}"
    if pattern == 2:
        return f"{first[0]}{last}"
    if pattern == 3:
        return f"{first}.{last}{rng.randrange(1, 100)}"
    if pattern == 4:
        return f"{last}.{first}"
    return f"{first}_{last}{rng.randrange(70, 100)}"


def _products(rng: random.Random, count: int, first_number: int) -> tuple[Product, ...]:
    products = []
    for index in range(count):
        category = rng.choice(vocab.CATEGORIES)
        name = (
            f"{rng.choice(vocab.BRANDS)} {rng.choice(category.nouns)}{rng.choice(vocab.VARIANTS)}"
        )
        price = math.exp(rng.uniform(math.log(category.min_price), math.log(category.max_price)))
        products.append(
            Product(sku(first_number + index), name, category.name, shelf_price(rng.random, price))
        )
    return tuple(products)


@functools.lru_cache(maxsize=4096)
def _day_text(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def timestamp_text(instant: int) -> str:
    """``2025-08-13T09:41:07Z`` for an instant in µs (versions take effect on whole seconds)."""
    day, second = divmod(instant // 1_000_000, 86_400)
    hour, second = divmod(second, 3_600)
    minute, second = divmod(second, 60)
    return f"{_day_text(day)}T{hour:02d}:{minute:02d}:{second:02d}Z"


def span_end_text(days: float) -> str:
    """The instant the CSVs of a run of ``days`` show, e.g. ``2025-08-29T00:00:00Z``."""
    return timestamp_text(START_US + span_us(days))


def user_row(version: UserVersion) -> tuple[str, ...]:
    return (*version[1:], timestamp_text(version.updated_at))


def product_row(version: ProductVersion) -> tuple[str, ...]:
    return (
        version.sku,
        version.name,
        version.category,
        format_cents(version.list_price_cents),
        timestamp_text(version.updated_at),
    )


def latest(history: KeyHistory[UserVersion] | KeyHistory[ProductVersion], end: int) -> int:
    """The number of the key's last version that took effect before ``end`` (µs)."""
    return history.index_at(end - 1)


def write_reference(
    reference: Reference, directory: Path, *, late: bool = False, days: float = 28.0
) -> list[Path]:
    """Write ``users.csv`` and ``products.csv`` into ``directory``: each key's version in effect
    at the end of a run of ``days``; ``late``: the late-arriving users and products instead."""
    history = History(reference)
    end = START_US + span_us(days)
    if late:
        users = history.late_users
        products = history.late_products
    else:
        users = [history.user(n) for n in range(len(reference.users))]
        products = [history.product(n) for n in range(len(reference.products))]
    return [
        _write_csv(
            directory / "users.csv",
            USERS_HEADER,
            (user_row(u.versions[latest(u, end)]) for u in users),
        ),
        _write_csv(
            directory / "products.csv",
            PRODUCTS_HEADER,
            (product_row(p.versions[latest(p, end)]) for p in products),
        ),
    ]


def write_rates(directory: Path, *, days: float = 28.0) -> Path:
    """Write ``fx_rates.csv`` into ``directory``: every rate up to the end of a run of ``days``
    (the same for every seed and run length)."""
    end = START_US + span_us(days)
    last = dt.datetime.fromtimestamp((end - 1) // 1_000_000, dt.UTC).date()
    rows = ((r.date.isoformat(), r.currency, r.text) for r in Rates().through(last))
    return _write_csv(directory / "fx_rates.csv", FX_HEADER, rows)


def _write_csv(path: Path, header: Sequence[str], rows: Iterable[Sequence[str]]) -> Path:
    """RFC 4180 (CRLF, minimal quoting), UTF-8; replaced atomically so readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out, lineterminator="\r\n")
            writer.writerow(header)
            writer.writerows(rows)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; the consumer may run as another user
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
