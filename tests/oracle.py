"""An independent oracle: what the warehouse must contain, computed from the contract alone.

Given the raw Kafka records of a topic (in the order the consumer sees them per partition) and
the reference CSVs, :func:`compute_expected` returns the rows that ``dim_order``,
``fact_sales``, ``dim_user``, ``dim_product`` and ``rejected_events`` must hold, plus which
records were dropped as identical re-sends. :func:`report` computes the four CLI reports from
that expectation.

This module deliberately shares no code with ``consumer/`` or ``producer_sim/``: it is written
from ``docs/interface.md`` and the team's clarifications only, in plain stdlib Python, so that a bug
in the consumer cannot hide behind the same bug here. Only :func:`read_topic` uses a
third-party library (``confluent_kafka``).

Classification of one record's value (the first matching rule wins):

1. ``None``, empty, or only whitespace (``str.isspace`` after UTF-8 decoding) -> ``empty_payload``
2. not UTF-8, not strict JSON (no NaN/Infinity, no trailing data), a lone UTF-16 surrogate
   escape, nesting deeper than Python can handle, or a number beyond what can be read exactly
   (an integer literal of more than 4300 digits, an exponent Decimal cannot hold, about
   10**18) -> ``invalid_json`` (team rule)
3. JSON that is not an object -> ``not_an_object``
4. ``order_id`` missing, not a string, empty or whitespace-only -> ``missing_order_id``
5. ``created_at`` present, not null, and not an ISO-8601 extended timestamp
   -> ``invalid_created_at``
6. ``items`` not a list, or a bad item (no non-empty ``sku``; ``quantity`` not a number of
   integer value from 1 to 2**31-1, so ``2.0`` is 2; ``price`` not a number >= 0 as written,
   or not storable) -> ``invalid_item``
7. ``amount`` present, not null, and not a number storable in DECIMAL(18,4) -> ``invalid_amount``

Numbers (interface §1 "Numbers and money"): a JSON number is the exact decimal value written.
Money is stored rounded half-to-even to 4 decimals; "storable" means that the rounded magnitude
is below 10**14.
8. ``user_id``/``currency``/``metadata``/``metadata.source``/``metadata.promo`` of a wrong JSON
   type -> ``invalid_field`` (team extension)

Then, in input order: a valid record whose ``order_id`` is already loaded is a ``duplicate`` when
its whole parsed content equals the loaded one's, else it is rejected ``conflicting_duplicate``.
Content compares numbers by their exact value as written (``1.5``, ``1.50``, ``15e-1`` are one
value, so are ``-0.0`` and ``0``, and ``2`` and ``2.0``), not by the rounded stored value.
"""

from __future__ import annotations

import csv
import json
import os
import re
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Context, Decimal, localcontext
from typing import Any, Final, Literal, TypeAlias, TypeGuard

from confluent_kafka import Consumer, KafkaError, KafkaException, TopicPartition

__all__ = [
    "CONFLICTING_DUPLICATE",
    "EMPTY_PAYLOAD",
    "INVALID_AMOUNT",
    "INVALID_CREATED_AT",
    "INVALID_FIELD",
    "INVALID_ITEM",
    "INVALID_JSON",
    "MISSING_ORDER_ID",
    "NOT_AN_OBJECT",
    "REJECT_REASONS",
    "REPORT_KEYS",
    "Canonical",
    "Expected",
    "LineRow",
    "OrderRow",
    "Position",
    "ProductRow",
    "Record",
    "Rejection",
    "UserRow",
    "ValidOrder",
    "canonical",
    "compute_expected",
    "load_products_csv",
    "load_users_csv",
    "parse_created_at",
    "parse_order",
    "read_topic",
    "report",
]

# --------------------------------------------------------------------------------------------
# Reason codes (interface §1, plus the team's `invalid_field`)
# --------------------------------------------------------------------------------------------

EMPTY_PAYLOAD: Final = "empty_payload"
INVALID_JSON: Final = "invalid_json"
NOT_AN_OBJECT: Final = "not_an_object"
MISSING_ORDER_ID: Final = "missing_order_id"
INVALID_CREATED_AT: Final = "invalid_created_at"
INVALID_ITEM: Final = "invalid_item"
INVALID_AMOUNT: Final = "invalid_amount"
INVALID_FIELD: Final = "invalid_field"
CONFLICTING_DUPLICATE: Final = "conflicting_duplicate"

REJECT_REASONS: Final = frozenset(
    {
        EMPTY_PAYLOAD,
        INVALID_JSON,
        NOT_AN_OBJECT,
        MISSING_ORDER_ID,
        INVALID_CREATED_AT,
        INVALID_ITEM,
        INVALID_AMOUNT,
        INVALID_FIELD,
        CONFLICTING_DUPLICATE,
    }
)

#: Money is DECIMAL(18,4): 4 decimal places, 14 digits before the point.
MONEY_SCALE: Final = 4
MONEY_LIMIT: Final = 10**14
#: ``quantity`` must fit a 32-bit signed INTEGER.
MAX_QUANTITY: Final = 2**31 - 1

_FOUR_PLACES: Final = Decimal(1).scaleb(-MONEY_SCALE)
#: Plenty of digits so that products and sums of money are exact.
_EXACT: Final = Context(prec=400)
#: Half-to-even rounding to 4 places, with room for any value below the money limit.
_ROUND: Final = Context(prec=100, rounding=ROUND_HALF_EVEN)

Position: TypeAlias = tuple[str, int, int]
"""``(topic, partition, offset)`` of one Kafka record."""

Canonical: TypeAlias = tuple[Any, ...]
"""A hashable, order- and formatting-independent form of a parsed JSON value."""


# --------------------------------------------------------------------------------------------
# Data shapes
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One raw Kafka record, exactly as read from the topic."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None

    @property
    def position(self) -> Position:
        return (self.topic, self.partition, self.offset)


@dataclass(frozen=True)
class OrderRow:
    """One ``dim_order`` row."""

    order_id: str
    user_id: str | None
    amount: Decimal | None
    currency: str | None
    source: str | None
    promo: str | None
    created_at: datetime | None  # naive, UTC


@dataclass(frozen=True)
class LineRow:
    """One ``fact_sales`` row; ``line_number`` is the 1-based position in ``items``."""

    order_id: str
    line_number: int
    sku: str
    user_id: str | None
    quantity: int
    unit_price: Decimal
    created_at: datetime | None  # naive, UTC


@dataclass(frozen=True)
class UserRow:
    """One ``dim_user`` row; a placeholder has every attribute None and ``is_inferred``."""

    user_id: str
    name: str | None
    email: str | None
    country: str | None
    signup_date: date | None
    is_inferred: bool


@dataclass(frozen=True)
class ProductRow:
    """One ``dim_product`` row; a placeholder has every attribute None and ``is_inferred``."""

    sku: str
    name: str | None
    category: str | None
    list_price: Decimal | None
    is_inferred: bool


@dataclass(frozen=True)
class Rejection:
    """The outcome of a record that goes to ``rejected_events``."""

    reason: str


@dataclass(frozen=True)
class ValidOrder:
    """The outcome of a record that passes every per-record rule (rules 1 to 8)."""

    order: OrderRow
    lines: tuple[LineRow, ...]
    content: Canonical  # the whole parsed record, for duplicate detection


@dataclass
class Expected:
    """What the warehouse must contain after consuming the given records."""

    orders: dict[str, OrderRow] = field(default_factory=dict)
    lines: dict[tuple[str, int], LineRow] = field(default_factory=dict)
    rejected: dict[Position, str] = field(default_factory=dict)
    duplicates: set[Position] = field(default_factory=set)
    loaded: dict[Position, str] = field(default_factory=dict)
    users: dict[str, UserRow] = field(default_factory=dict)
    products: dict[str, ProductRow] = field(default_factory=dict)
    #: order_ids with valid records of differing content in more than one (topic, partition):
    #: which version is "first" then depends on how the consumer interleaves partitions, so
    #: tests should not assert on them (they only arise from records with no key or a wrong key).
    ambiguous_order_ids: set[str] = field(default_factory=set)
    #: order_ids whose valid records are all identical re-sends but lie in more than one
    #: (topic, partition), with every position of them: the content loaded is certain, but
    #: which copy is loaded (the others being dropped duplicates) follows the consumer's batch
    #: order. ``loaded`` and ``duplicates`` show the copy that comes first in input order.
    spread_copies: dict[str, set[Position]] = field(default_factory=dict)

    @property
    def outcome_counts(self) -> dict[str, int]:
        """Counts per outcome, as in ``pipeline_records_total{outcome=...}``."""
        return {
            "loaded": len(self.loaded),
            "duplicate": len(self.duplicates),
            "rejected": len(self.rejected),
        }


class _RejectError(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# --------------------------------------------------------------------------------------------
# JSON parsing and canonical content
# --------------------------------------------------------------------------------------------


def _parse_int(text: str) -> int:
    """A JSON integer literal; more than 4300 digits (Python's int() limit) is refused as
    unreadable, a team rule: no money or quantity comes near it."""
    return int(text)  # ValueError beyond 4300 digits


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _loads(text: str) -> Any:
    return json.loads(
        text, parse_float=Decimal, parse_int=_parse_int, parse_constant=_refuse_constant
    )


_SURROGATE = re.compile(r"[\ud800-\udfff]")


def _canonical_string(text: str) -> str:
    if _SURROGATE.search(text):
        raise ValueError("lone UTF-16 surrogate escape: not Unicode text")
    return text


def _canonical_number(number: int | Decimal) -> Canonical:
    """The exact value of a JSON number, however written: 2, 2.0, 2.000, 20e-1 and 0.2E1 give
    the same key, and -0.0, 0 and 0e5 give the key of zero."""
    sign, digit_tuple, exponent = Decimal(number).as_tuple()
    assert isinstance(exponent, int), "JSON numbers are finite"
    digits = list(digit_tuple)
    if not any(digits):
        return ("num", 0, (0,), 0)
    while digits[-1] == 0:
        digits.pop()
        exponent += 1
    return ("num", sign, tuple(digits), exponent)


def canonical(value: Any) -> Canonical:
    """A hashable form of a parsed JSON value, such that two values are "the same content"
    exactly when their canonical forms are equal.

    Key order and formatting vanish with parsing; numbers compare by exact value (``1.50`` is
    ``1.5``, ``1E2`` is ``100``, ``2`` is ``2.0``, ``-0.0`` is ``0``: interface §1), but
    ``true`` is not ``1``. Raises ValueError on a string holding a lone surrogate (from a
    ``\\ud800``-style escape).
    """
    if value is None:
        return ("null",)
    if isinstance(value, bool):
        return ("bool", value)
    if isinstance(value, int | Decimal):
        return _canonical_number(value)
    if isinstance(value, str):
        return ("str", _canonical_string(value))
    if isinstance(value, list):
        return ("list", tuple(canonical(element) for element in value))
    if isinstance(value, dict):
        members = [(_canonical_string(k), canonical(v)) for k, v in value.items()]
        return ("obj", tuple(sorted(members, key=lambda member: member[0])))
    raise TypeError(f"not a parsed JSON value: {value!r}")


# --------------------------------------------------------------------------------------------
# Field rules
# --------------------------------------------------------------------------------------------

_TIMESTAMP = re.compile(
    r"(?P<year>[0-9]{4})-(?P<month>[0-9]{2})-(?P<day>[0-9]{2})"
    r"[Tt ]"
    r"(?P<hour>[0-9]{2}):(?P<minute>[0-9]{2})"
    r"(?::(?P<second>[0-9]{2})(?:[.,](?P<fraction>[0-9]{1,9}))?)?"
    r"(?P<zone>[Zz]|(?P<zone_sign>[+-])(?P<zone_hour>[0-9]{2})(?::?(?P<zone_minute>[0-9]{2}))?)?"
)


def parse_created_at(text: str) -> datetime | None:
    """An ISO-8601 extended timestamp as a naive UTC datetime, or None if it is not one.

    ``YYYY-MM-DD`` + ``T``/``t``/space + ``hh:mm`` + optional ``:ss`` + optional fraction of the
    seconds (``.`` or ``,``, 1-9 digits, truncated to microseconds) + optional zone (``Z``,
    ``z``, ``±hh:mm``, ``±hhmm``, ``±hh``). No zone means UTC.
    """
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return None
    fraction = match["fraction"] or ""
    try:
        local = datetime(
            int(match["year"]),
            int(match["month"]),
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"] or 0),
            int(fraction[:6].ljust(6, "0")),
        )
    except ValueError:  # no such date, hour 24, minute or second 60, year 0000
        return None
    offset = timedelta(0)
    if match["zone_sign"] is not None:
        zone_hour = int(match["zone_hour"])
        zone_minute = int(match["zone_minute"] or 0)
        if zone_hour > 23 or zone_minute > 59:
            return None
        offset = timedelta(hours=zone_hour, minutes=zone_minute)
        if match["zone_sign"] == "-":
            offset = -offset
    try:
        return local - offset
    except OverflowError:  # before 0001-01-01 or after 9999-12-31 once in UTC
        return None


def _number(value: Any) -> Decimal | None:
    """A parsed JSON number as a Decimal (``true`` is not a number), else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | Decimal):
        return Decimal(value)
    return None


def _money(value: Any) -> Decimal | None:
    """A JSON number as DECIMAL(18,4) stores it (half-to-even to 4 places), or None when it is
    not a number or its rounded magnitude is 10**14 or more."""
    number = _number(value)
    if number is None or number.copy_abs() >= MONEY_LIMIT:  # also keeps 1e400 from quantize
        return None
    stored = number.quantize(_FOUR_PLACES, context=_ROUND)
    if stored.copy_abs() >= MONEY_LIMIT:  # 99999999999999.99995 rounds up to 10**14
        return None
    return stored.copy_abs() if stored.is_zero() else stored


def _quantity(value: Any) -> int | None:
    """A JSON number of integer value from 1 to MAX_QUANTITY (``2.0`` is 2), else None."""
    number = _number(value)
    if number is None or not 1 <= number <= MAX_QUANTITY or number != number.to_integral_value():
        return None
    return int(number)


def _non_blank_string(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and value.strip() != ""


def _optional_string(container: dict[str, Any], name: str, *, empty_is_null: bool) -> str | None:
    value = container.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _RejectError(INVALID_FIELD)
    if empty_is_null and value == "":
        return None
    return value


def _item(value: Any) -> tuple[str, int, Decimal]:
    if not isinstance(value, dict):
        raise _RejectError(INVALID_ITEM)
    sku = value.get("sku")
    if not _non_blank_string(sku):
        raise _RejectError(INVALID_ITEM)
    quantity = _quantity(value.get("quantity"))
    if quantity is None:
        raise _RejectError(INVALID_ITEM)
    raw_price = value.get("price")
    price = _money(raw_price)
    if price is None or raw_price < 0:  # >= 0 as written: -0.00001 is negative
        raise _RejectError(INVALID_ITEM)
    return sku, quantity, price


def _order(document: dict[str, Any], content: Canonical) -> ValidOrder:
    """Rules 4 to 8 on a parsed JSON object; raises _RejectError."""
    order_id = document.get("order_id")
    if not _non_blank_string(order_id):
        raise _RejectError(MISSING_ORDER_ID)

    created_at: datetime | None = None
    raw_created_at = document.get("created_at")
    if raw_created_at is not None:
        if isinstance(raw_created_at, str):
            created_at = parse_created_at(raw_created_at)
        if created_at is None:
            raise _RejectError(INVALID_CREATED_AT)

    raw_items = document.get("items")
    if raw_items is None:
        raw_items = []
    if not isinstance(raw_items, list):
        raise _RejectError(INVALID_ITEM)
    items = [_item(raw_item) for raw_item in raw_items]

    amount: Decimal | None = None
    raw_amount = document.get("amount")
    if raw_amount is not None:
        amount = _money(raw_amount)
        if amount is None:
            raise _RejectError(INVALID_AMOUNT)

    user_id = _optional_string(document, "user_id", empty_is_null=True)
    currency = _optional_string(document, "currency", empty_is_null=True)
    metadata = document.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise _RejectError(INVALID_FIELD)
    source = _optional_string(metadata, "source", empty_is_null=True)
    promo = _optional_string(metadata, "promo", empty_is_null=True)

    order = OrderRow(order_id, user_id, amount, currency, source, promo, created_at)
    lines = tuple(
        LineRow(order_id, number, sku, user_id, quantity, price, created_at)
        for number, (sku, quantity, price) in enumerate(items, start=1)
    )
    return ValidOrder(order, lines, content)


def parse_order(value: bytes | None) -> ValidOrder | Rejection:
    """Classify one record value on its own (rules 1 to 8; duplicates need the history)."""
    if value is None:
        return Rejection(EMPTY_PAYLOAD)
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return Rejection(INVALID_JSON)
    if text.strip() == "":
        return Rejection(EMPTY_PAYLOAD)
    try:
        document = _loads(text)
        content = canonical(document)
    except (ValueError, RecursionError, ArithmeticError):
        # JSONDecodeError is a ValueError; ArithmeticError is decimal's InvalidOperation for an
        # exponent beyond what Decimal can hold (around 10**18).
        return Rejection(INVALID_JSON)
    if not isinstance(document, dict):
        return Rejection(NOT_AN_OBJECT)
    try:
        return _order(document, content)
    except _RejectError as rejection:
        return Rejection(rejection.reason)


# --------------------------------------------------------------------------------------------
# Reference data (interface §2)
# --------------------------------------------------------------------------------------------

USER_COLUMNS: Final = ("user_id", "name", "email", "country", "signup_date")
PRODUCT_COLUMNS: Final = ("sku", "name", "category", "list_price")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_PRICE = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

StrPath: TypeAlias = str | os.PathLike[str]


def _read_csv(path: StrPath, columns: tuple[str, ...]) -> list[tuple[int, dict[str, str | None]]]:
    """Rows as ``(line number, {column: value or None for an empty field})``."""
    rows: list[tuple[int, dict[str, str | None]]] = []
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in columns if c not in (reader.fieldnames or [])]
        if missing:
            raise ValueError(f"{path}: header lacks {', '.join(missing)}")
        for row in reader:
            values = {c: (row.get(c) or None) for c in columns}
            rows.append((reader.line_num, values))
    return rows


def _unique_key(key: str | None, seen: dict[str, Any], path: StrPath, line: int) -> str:
    if key is None:
        raise ValueError(f"{path}:{line}: empty key")
    if key in seen:
        raise ValueError(f"{path}:{line}: key {key!r} appears twice (undefined by the contract)")
    return key


def load_users_csv(path: StrPath) -> dict[str, UserRow]:
    """``users.csv`` as ``dim_user`` rows; an empty field is NULL."""
    users: dict[str, UserRow] = {}
    for line, row in _read_csv(path, USER_COLUMNS):
        user_id = _unique_key(row["user_id"], users, path, line)
        raw_date = row["signup_date"]
        signup_date = None
        if raw_date is not None:
            if not _DATE.fullmatch(raw_date):
                raise ValueError(f"{path}:{line}: signup_date {raw_date!r} is not YYYY-MM-DD")
            signup_date = date.fromisoformat(raw_date)
        users[user_id] = UserRow(
            user_id, row["name"], row["email"], row["country"], signup_date, is_inferred=False
        )
    return users


def _csv_price(text: str) -> Decimal | None:
    """A CSV list_price: plain decimal text that DECIMAL(18,4) holds exactly (no rounding: the
    contract's rounding rule is for JSON money), else None."""
    if not _PRICE.fullmatch(text):
        return None
    price = Decimal(text)
    stored = _money(price)
    return stored if stored is not None and stored == price else None


def load_products_csv(path: StrPath) -> dict[str, ProductRow]:
    """``products.csv`` as ``dim_product`` rows; an empty field is NULL."""
    products: dict[str, ProductRow] = {}
    for line, row in _read_csv(path, PRODUCT_COLUMNS):
        sku = _unique_key(row["sku"], products, path, line)
        raw_price = row["list_price"]
        list_price = None
        if raw_price is not None:
            list_price = _csv_price(raw_price)
            if list_price is None:
                raise ValueError(f"{path}:{line}: list_price {raw_price!r} is not DECIMAL(18,4)")
        products[sku] = ProductRow(sku, row["name"], row["category"], list_price, is_inferred=False)
    return products


# --------------------------------------------------------------------------------------------
# The whole stream
# --------------------------------------------------------------------------------------------


def compute_expected(
    records: Iterable[Record],
    users_csv: StrPath | None = None,
    products_csv: StrPath | None = None,
) -> Expected:
    """What the warehouse must hold once every record has been consumed, in the given order,
    and the reference CSVs (either may be None) have been loaded."""
    expected = Expected()
    loaded_content: dict[str, Canonical] = {}
    partitions_of: defaultdict[str, set[tuple[str, int]]] = defaultdict(set)
    contents_of: defaultdict[str, set[Canonical]] = defaultdict(set)
    copies_of: defaultdict[str, set[Position]] = defaultdict(set)
    positions: list[Position] = []

    for record in records:
        position = record.position
        positions.append(position)
        outcome = parse_order(record.value)
        if isinstance(outcome, Rejection):
            expected.rejected[position] = outcome.reason
            continue
        order_id = outcome.order.order_id
        partitions_of[order_id].add((record.topic, record.partition))
        contents_of[order_id].add(outcome.content)
        copies_of[order_id].add(position)
        if order_id in loaded_content:
            if loaded_content[order_id] == outcome.content:
                expected.duplicates.add(position)
            else:
                expected.rejected[position] = CONFLICTING_DUPLICATE
            continue
        loaded_content[order_id] = outcome.content
        expected.loaded[position] = order_id
        expected.orders[order_id] = outcome.order
        for line in outcome.lines:
            expected.lines[(line.order_id, line.line_number)] = line

    if len(set(positions)) != len(positions):
        raise ValueError("the same (topic, partition, offset) was given more than once")
    # Delivery guarantee (interface §4): each record in exactly one place.
    outcomes = [set(expected.loaded), expected.duplicates, set(expected.rejected)]
    assert sum(map(len, outcomes)) == len(positions), "a record has two outcomes"
    assert set().union(*outcomes) == set(positions), "a record has no outcome"

    spread = {oid for oid, parts in partitions_of.items() if len(parts) > 1}
    expected.ambiguous_order_ids = {oid for oid in spread if len(contents_of[oid]) > 1}
    expected.spread_copies = {
        oid: copies_of[oid] for oid in spread if oid not in expected.ambiguous_order_ids
    }

    if users_csv is not None:
        expected.users.update(load_users_csv(users_csv))
    if products_csv is not None:
        expected.products.update(load_products_csv(products_csv))
    for order in expected.orders.values():
        if order.user_id is not None and order.user_id not in expected.users:
            expected.users[order.user_id] = UserRow(order.user_id, None, None, None, None, True)
    for line in expected.lines.values():
        if line.sku not in expected.products:
            expected.products[line.sku] = ProductRow(line.sku, None, None, None, True)
    return expected


# --------------------------------------------------------------------------------------------
# Reports (interface §5)
# --------------------------------------------------------------------------------------------

REPORT_KEYS: Final[dict[str, tuple[str, ...]]] = {
    "top-users": ("user_id", "total_sales"),
    "top-products": ("sku", "name", "units_sold"),
    "top-countries": ("country", "total_sales"),
    "sales-by-channel": ("source", "total_sales"),
}
DEFAULT_LIMIT: Final = 5


def _ranked(totals: dict[str | None, Any]) -> list[str | None]:
    """Keys by measure descending, ties by key ascending, the NULL key last."""
    keys = sorted(key for key in totals if key is not None)
    keys.sort(key=lambda key: totals[key], reverse=True)  # stable: ties keep key order
    ranked: list[str | None] = [*keys]
    return [*ranked, None] if None in totals else ranked


def report(
    expected: Expected, name: str, limit: int | Literal["default"] | None = "default"
) -> list[dict[str, Any]]:
    """The rows ``consumer query NAME --format json`` must print, as dicts with exactly the
    contract's keys. Money is an exact Decimal. ``limit="default"`` means 5, or every row for
    ``sales-by-channel``; ``None`` means every row."""
    if name not in REPORT_KEYS:
        raise ValueError(f"unknown report {name!r}")
    if limit == "default":
        limit = None if name == "sales-by-channel" else DEFAULT_LIMIT
    if limit is not None and limit < 0:
        raise ValueError("limit must be >= 0")

    totals: dict[str | None, Any] = {}
    with localcontext(_EXACT):
        for line in expected.lines.values():
            sales = line.quantity * line.unit_price
            key: str | None
            if name == "top-users":
                key = line.user_id
            elif name == "top-products":
                key = line.sku
            elif name == "top-countries":
                user = expected.users.get(line.user_id) if line.user_id is not None else None
                key = user.country if user is not None else None
            else:
                key = expected.orders[line.order_id].source
            measure = line.quantity if name == "top-products" else sales
            totals[key] = totals.get(key, 0) + measure

    rows: list[dict[str, Any]] = []
    for key in _ranked(totals):
        if name == "top-products":
            product = expected.products.get(key) if key is not None else None
            rows.append(
                {
                    "sku": key,
                    "name": product.name if product is not None else None,
                    "units_sold": totals[key],
                }
            )
        else:
            key_name, measure_name = REPORT_KEYS[name]
            rows.append({key_name: key, measure_name: Decimal(totals[key])})
    return rows if limit is None else rows[:limit]


# --------------------------------------------------------------------------------------------
# Reading a topic (integration tests)
# --------------------------------------------------------------------------------------------


def read_topic(bootstrap: str, topic: str, timeout: float = 60) -> list[Record]:
    """Every record a ``read_committed`` reader gets from every partition of ``topic``, from
    the low watermark to the high watermark taken at the start, sorted by (partition, offset).

    Uses ``assign`` with explicit offsets and never commits. Raises TimeoutError if the end
    is not reached within ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"oracle-reader-{uuid.uuid4().hex}",  # required; never committed to
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "enable.partition.eof": True,
            "auto.offset.reset": "earliest",
            # What the consumer must load: committed records only (interface §5). librdkafka's
            # default too, stated so that the oracle never depends on a default.
            "isolation.level": "read_committed",
        }
    )
    records: list[Record] = []
    try:
        metadata = consumer.list_topics(topic, timeout=timeout)
        topic_metadata = metadata.topics.get(topic)
        if topic_metadata is None or topic_metadata.error is not None:
            error = None if topic_metadata is None else topic_metadata.error
            raise KafkaException(error or f"topic {topic!r} not found")
        ends: dict[int, int] = {}
        start: list[Any] = []
        for partition in sorted(topic_metadata.partitions):
            low, high = consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout, cached=False
            )
            if high > low:
                ends[partition] = high
                start.append(TopicPartition(topic, partition, low))
        pending = set(ends)
        if start:
            consumer.assign(start)
        last_error: Any = None
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(
                    f"reading {topic!r} took more than {timeout}s: partitions {sorted(pending)}"
                    f" unfinished (last transient error: {last_error})"
                )
            for message in consumer.consume(1000, timeout=min(1.0, left)):
                partition, offset = message.partition(), message.offset()
                if partition is None or offset is None:
                    raise KafkaException(message.error() or "a message without a position")
                error = message.error()
                if error is not None:
                    if error.code() == KafkaError._PARTITION_EOF:
                        if partition in ends and offset >= ends[partition]:
                            pending.discard(partition)
                        continue
                    if error.fatal():
                        raise KafkaException(error)
                    last_error = error  # transient: librdkafka retries by itself
                    continue
                if partition not in ends or offset >= ends[partition]:
                    continue  # written after we took the watermarks
                records.append(Record(topic, partition, offset, message.key(), message.value()))
                if offset >= ends[partition] - 1:
                    pending.discard(partition)
    finally:
        consumer.close()
    records.sort(key=lambda record: (record.partition, record.offset))
    return records
