"""Reference data with history, exchange rates and the calendar, from the contract alone
(contract §2, §3; the binding decisions of issue 25 where the contract leaves room).

:func:`parse_reference` classifies one change-topic record; :func:`read_users_csv`,
:func:`read_products_csv` and :func:`read_fx_csv` read the CSV files; a :class:`ReferenceBook`
is fed every delivery in the order the warehouse sees it and holds what the warehouse holds;
:func:`user_history`, :func:`product_history` and :func:`date_rows` derive the tables. Stdlib
only; nothing from ``consumer/`` or ``producer_sim/``.
"""

from __future__ import annotations

import csv
import os
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, Literal, TypeAlias

from tests.oracle_base import (
    MONEY_LIMIT,
    MONEY_SCALE,
    canonical,
    fixed_point,
    json_number,
    loads_json,
    non_blank_string,
    parse_created_at,
    parse_date,
    stored_money,
)

StrPath: TypeAlias = str | os.PathLike[str]
Kind: TypeAlias = Literal["users", "products", "fx"]
UserContent: TypeAlias = tuple[str | None, str | None, str | None, date | None]
"""name, email, country, signup_date."""
ProductContent: TypeAlias = tuple[str | None, str | None, Decimal | None]
"""name, category, list_price."""

INVALID_REFERENCE: Final = "invalid_reference"
#: Outcomes of one delivery: held as a version (or rate), or dropped as adding nothing.
STORED: Final = "version"
REDELIVERY: Final = "duplicate"

#: ``valid_from`` of a key's first version: TIMESTAMP '-infinity', which DuckDB's Python client
#: returns as ``datetime.min``. (A version whose ``updated_at`` is 0001-01-01T00:00 exactly
#: would be indistinguishable; no test uses one.)
MINUS_INFINITY: Final = datetime.min
#: Exchange rates: DECIMAL with 10 decimals, magnitude below 10**8.
RATE_SCALE: Final = 10
RATE_LIMIT: Final = 10**8
USD: Final = "USD"

_COUNTRY = re.compile(r"[A-Z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_PLAIN_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")


@dataclass(frozen=True)
class Version:
    """One validated user or product version as delivered. ``updated_at`` None: a CSV row
    without one, in effect from when its file is first loaded."""

    kind: Literal["users", "products"]
    key: str
    updated_at: datetime | None
    content: UserContent | ProductContent


@dataclass(frozen=True)
class Rate:
    """One validated exchange rate: on ``day`` one ``currency`` is worth ``rate`` USD."""

    day: date
    currency: str
    rate: Decimal


@dataclass(frozen=True)
class InvalidReference:
    """A change-topic record that is not valid reference data; ``detail`` names the field."""

    detail: str
    reason: str = INVALID_REFERENCE


@dataclass(frozen=True)
class UserVersion:
    """One ``dim_user_history`` row."""

    user_id: str
    name: str | None
    email: str | None
    country: str | None
    signup_date: date | None
    valid_from: datetime  # MINUS_INFINITY for the first version
    valid_to: datetime | None
    is_current: bool


@dataclass(frozen=True)
class ProductVersion:
    """One ``dim_product_history`` row."""

    sku: str
    name: str | None
    category: str | None
    list_price: Decimal | None
    valid_from: datetime  # MINUS_INFINITY for the first version
    valid_to: datetime | None
    is_current: bool


@dataclass(frozen=True)
class DateRow:
    """One ``dim_date`` row."""

    date_key: int
    date: date
    year: int
    quarter: int
    month: int
    iso_week: int
    day_of_week: int  # ISO: 1 = Monday ... 7 = Sunday
    is_weekend: bool


class _InvalidError(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Field rules (decisions: "Reference records")
# --------------------------------------------------------------------------------------------


def _text(document: dict[str, Any], name: str) -> str | None:
    """name, email, category: a string or null; missing is NULL, "" is NULL."""
    value = document.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise _InvalidError(f"{name} is not a string")
    return value


def _key(document: dict[str, Any], name: str) -> str:
    value = document.get(name)
    if not non_blank_string(value):
        raise _InvalidError(f"{name} is not a non-blank string")
    return value


def _country(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _COUNTRY.fullmatch(value):
        raise _InvalidError("country is not two ASCII capital letters")
    return value


def _day(value: Any, name: str) -> date | None:
    day = parse_date(value) if isinstance(value, str) else None
    if day is None:
        raise _InvalidError(f"{name} is not a real YYYY-MM-DD date")
    return day


def _updated_at(value: Any) -> datetime:
    at = parse_created_at(value) if isinstance(value, str) else None
    if at is None:
        raise _InvalidError("updated_at is not an ISO-8601 timestamp")
    return at


def _list_price(value: Any) -> Decimal | None:
    if value is None:
        return None
    number = json_number(value)
    stored = stored_money(value)
    if number is None or number < 0 or stored is None:  # >= 0 as written: -0.0 is fine
        raise _InvalidError("list_price is not a number >= 0 below 10**14")
    return stored


def _rate(number: Decimal | None, currency: str) -> Decimal:
    rate = None
    if number is not None and number > 0:
        rate = fixed_point(number, RATE_SCALE, RATE_LIMIT)
    if rate is None or rate == 0:
        raise _InvalidError("rate is not a number > 0 below 10**8 (10 decimals)")
    if currency == USD and rate != 1:
        raise _InvalidError("a USD rate must be 1")
    return rate


def _user(document: dict[str, Any]) -> Version:
    user_id = _key(document, "user_id")
    name, email = _text(document, "name"), _text(document, "email")
    country = _country(document.get("country"))
    raw_signup = document.get("signup_date")
    signup = None if raw_signup is None else _day(raw_signup, "signup_date")
    at = _updated_at(document.get("updated_at"))
    return Version("users", user_id, at, (name, email, country, signup))


def _product(document: dict[str, Any]) -> Version:
    sku = _key(document, "sku")
    name, category = _text(document, "name"), _text(document, "category")
    list_price = _list_price(document.get("list_price"))
    at = _updated_at(document.get("updated_at"))
    return Version("products", sku, at, (name, category, list_price))


def _fx(document: dict[str, Any]) -> Rate:
    day = _day(document.get("date"), "date")
    assert day is not None
    currency = document.get("currency")
    if not isinstance(currency, str) or not _CURRENCY.fullmatch(currency):
        raise _InvalidError("currency is not three ASCII capital letters")
    return Rate(day, currency, _rate(json_number(document.get("rate")), currency))


def parse_reference(kind: Kind, value: bytes | None) -> Version | Rate | InvalidReference:
    """One change-topic record's value: a version, a rate, or ``invalid_reference`` (a
    tombstone, empty, non-UTF-8, non-JSON or non-object value included). The record key is
    not trusted: everything is read from the value; unknown fields are ignored."""
    try:
        if value is None:
            raise _InvalidError("tombstone (deletes are not supported)")
        try:
            document = loads_json(value.decode("utf-8"))
            canonical(document)  # refuses a lone surrogate escape
        except (UnicodeDecodeError, ValueError, RecursionError, ArithmeticError) as error:
            raise _InvalidError(f"not UTF-8 JSON: {type(error).__name__}") from error
        if not isinstance(document, dict):
            raise _InvalidError("not a JSON object")
        if kind == "users":
            return _user(document)
        if kind == "products":
            return _product(document)
        return _fx(document)
    except _InvalidError as invalid:
        return InvalidReference(str(invalid))


# --------------------------------------------------------------------------------------------
# CSV files (contract §2; a bad file is an error, like the consumer's exit 2 at start)
# --------------------------------------------------------------------------------------------

USER_COLUMNS: Final = ("user_id", "name", "email", "country", "signup_date")
PRODUCT_COLUMNS: Final = ("sku", "name", "category", "list_price")
FX_COLUMNS: Final = ("date", "currency", "rate")


def _read_csv(
    path: StrPath, columns: tuple[str, ...], optional: tuple[str, ...] = ()
) -> list[tuple[int, dict[str, str | None]]]:
    """Rows as ``(line number, {column: value or None for an empty field})``."""
    rows: list[tuple[int, dict[str, str | None]]] = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: header lacks {', '.join(missing)}")
        for row in reader:
            values = {c: (row.get(c) or None) for c in (*columns, *optional)}
            rows.append((reader.line_num, values))
    return rows


def _csv_field(path: StrPath, line: int, parse: Any, text: str | None) -> Any:
    if text is None:
        return None
    try:
        return parse(text)
    except _InvalidError as invalid:
        raise ValueError(f"{path}:{line}: {invalid}") from invalid


def _csv_price(text: str) -> Decimal:
    """A CSV list_price: plain decimal text >= 0 that DECIMAL(18,4) holds exactly (no
    rounding: the contract's rounding rule is for JSON numbers)."""
    price = Decimal(text) if _PLAIN_DECIMAL.fullmatch(text) else None
    if price is None or fixed_point(price, MONEY_SCALE, MONEY_LIMIT) != price:
        raise _InvalidError(f"list_price {text!r} is not a DECIMAL(18,4) >= 0")
    return price


def read_users_csv(path: StrPath) -> list[tuple[int, Version]]:
    """``users.csv`` rows as versions, with their line numbers; ``updated_at`` optional."""
    versions = []
    for line, row in _read_csv(path, USER_COLUMNS, ("updated_at",)):
        if row["user_id"] is None:
            raise ValueError(f"{path}:{line}: empty user_id")
        country = _csv_field(path, line, _country, row["country"])
        signup = _csv_field(path, line, lambda t: _day(t, "signup_date"), row["signup_date"])
        at = _csv_field(path, line, _updated_at, row["updated_at"])
        content = (row["name"], row["email"], country, signup)
        versions.append((line, Version("users", row["user_id"], at, content)))
    return versions


def read_products_csv(path: StrPath) -> list[tuple[int, Version]]:
    """``products.csv`` rows as versions, with their line numbers; ``updated_at`` optional."""
    versions = []
    for line, row in _read_csv(path, PRODUCT_COLUMNS, ("updated_at",)):
        if row["sku"] is None:
            raise ValueError(f"{path}:{line}: empty sku")
        price = _csv_field(path, line, _csv_price, row["list_price"])
        at = _csv_field(path, line, _updated_at, row["updated_at"])
        content = (row["name"], row["category"], price)
        versions.append((line, Version("products", row["sku"], at, content)))
    return versions


def read_fx_csv(path: StrPath) -> list[tuple[int, Rate]]:
    """``fx_rates.csv`` rows (``date,currency,rate``, rate as plain decimal text) as rates."""
    rates = []
    for line, row in _read_csv(path, FX_COLUMNS):
        text = row["rate"] or ""
        number = Decimal(text) if _PLAIN_DECIMAL.fullmatch(text) else None
        try:
            rates.append((line, _fx({**row, "rate": number})))
        except _InvalidError as invalid:
            raise ValueError(f"{path}:{line}: {invalid}") from invalid
    return rates


# --------------------------------------------------------------------------------------------
# What the warehouse holds (decisions: "History rules", "Exchange rates")
# --------------------------------------------------------------------------------------------

Stream: TypeAlias = tuple[str, int]
"""Where deliveries keep their order: a (topic, partition), or (CSV path, 0)."""


class ReferenceBook:
    """Every version and rate the warehouse holds, fed deliveries in arrival order.

    - a version is (key, ``updated_at``, content); the same key and ``updated_at`` again with
      the same content is an identical re-delivery, with other content a correction that
      replaces it (the later arrival wins);
    - a CSV row without ``updated_at`` takes effect at its load time, and adds nothing when its
      content equals the key's current version;
    - ``fx_rates`` holds one rate per (date, currency), the later arrival winning; a USD row
      (rate 1, checked on parsing) is held like any other: rate(USD) is 1 whatever it holds.

    ``ambiguous`` names the (kind, key) whose result depends on how the warehouse interleaves
    streams: differing content for one (key, ``updated_at``) or (date, currency) from two
    streams (two partitions, or a CSV and a topic).
    """

    def __init__(self) -> None:
        self.versions: dict[str, dict[str, dict[datetime, Any]]] = {"users": {}, "products": {}}
        self.rates: dict[tuple[date, str], Decimal] = {}
        self.ambiguous: set[tuple[str, str]] = set()
        self._seen: defaultdict[tuple[str, str, Any], dict[Any, set[Stream]]] = defaultdict(dict)

    def _note(self, kind: str, key: str, slot: Any, content: Any, stream: Stream) -> None:
        seen = self._seen[(kind, key, slot)]
        seen.setdefault(content, set()).add(stream)
        if len(seen) > 1 and len(set().union(*seen.values())) > 1:
            self.ambiguous.add((kind, key))

    def add_version(self, version: Version, loaded_at: datetime, stream: Stream) -> str:
        held = self.versions[version.kind].setdefault(version.key, {})
        at = version.updated_at
        if at is None:
            if held and held[max(held)] == version.content:
                return REDELIVERY
            at = loaded_at
        self._note(version.kind, version.key, at, version.content, stream)
        if at in held and held[at] == version.content:
            return REDELIVERY
        held[at] = version.content
        return STORED

    def add_rate(self, rate: Rate, stream: Stream) -> str:
        slot = (rate.day, rate.currency)
        self._note("fx", f"{rate.currency}:{rate.day.isoformat()}", slot, rate.rate, stream)
        if self.rates.get(slot) == rate.rate:
            return REDELIVERY
        self.rates[slot] = rate.rate
        return STORED


def _history(held: dict[datetime, Any]) -> list[tuple[datetime, datetime | None, bool, Any]]:
    """(valid_from, valid_to, is_current, content) of a key's versions: ordered by
    ``updated_at``, each version equal to the one just before it dropped, the first from the
    start of time."""
    kept: list[tuple[datetime, Any]] = []
    for at, content in sorted(held.items()):
        if not kept or kept[-1][1] != content:
            kept.append((at, content))
    starts = [MINUS_INFINITY, *(at for at, _ in kept[1:])]
    ends: list[datetime | None] = [*starts[1:], None]
    return [
        (start, end, end is None, content)
        for start, end, (_, content) in zip(starts, ends, kept, strict=True)
    ]


def user_history(book: ReferenceBook) -> dict[tuple[str, datetime], UserVersion]:
    """``dim_user_history`` keyed by (user_id, valid_from)."""
    rows = {}
    for user_id, held in book.versions["users"].items():
        for start, end, current, content in _history(held):
            name, email, country, signup = content
            rows[(user_id, start)] = UserVersion(
                user_id, name, email, country, signup, start, end, current
            )
    return rows


def product_history(book: ReferenceBook) -> dict[tuple[str, datetime], ProductVersion]:
    """``dim_product_history`` keyed by (sku, valid_from)."""
    rows = {}
    for sku, held in book.versions["products"].items():
        for start, end, current, content in _history(held):
            name, category, list_price = content
            rows[(sku, start)] = ProductVersion(
                sku, name, category, list_price, start, end, current
            )
    return rows


def date_rows(days: Iterable[date]) -> dict[int, DateRow]:
    """``dim_date``: every day from the earliest to the latest of ``days`` (none if empty)."""
    wanted = sorted(set(days))
    rows: dict[int, DateRow] = {}
    if not wanted:
        return rows
    for offset in range((wanted[-1] - wanted[0]).days + 1):  # no day past 9999-12-31
        day = wanted[0] + timedelta(days=offset)
        iso = day.isocalendar()
        key = day.year * 10000 + day.month * 100 + day.day
        quarter = (day.month - 1) // 3 + 1
        weekend = iso.weekday >= 6  # ISO Saturday and Sunday
        rows[key] = DateRow(key, day, day.year, quarter, day.month, iso.week, iso.weekday, weekend)
    return rows
