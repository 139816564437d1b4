"""Reference records from change topics (CONTRACT §2): users, products and exchange rates, one
JSON object a record, validated into frames of versions and rejects (``invalid_reference``).

The rules (docs/interface.md §2): unknown fields are ignored; a field absent or ``null`` is
NULL and an empty string is NULL; the natural key is a non-empty string; ``country`` two capital
letters; dates ``YYYY-MM-DD``; ``updated_at`` required, with an order's ``created_at`` grammar;
``list_price`` money >= 0 as written (rounded half-to-even to 4 decimals); a rate > 0, rounded
half-to-even to 10 decimals, below 10^8; a USD rate must be 1. Anything else, a tombstone
included (deletes are not supported), is rejected with a detail naming the field.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_EVEN, Context, Decimal, DecimalException, InvalidOperation
from typing import Any

import msgspec
import polars as pl

from consumer.core.exact import parse_created_at
from consumer.core.frames import MONEY
from consumer.core.numbers import is_number, round_money

INVALID_REFERENCE = "invalid_reference"
USERS, PRODUCTS, RATES = "users", "products", "rates"
KINDS = (USERS, PRODUCTS, RATES)

RATE_SCALE = 10
RATE_DIGITS = 18
RATE = pl.Decimal(RATE_DIGITS, RATE_SCALE)
RATE_LIMIT = Decimal(10) ** (RATE_DIGITS - RATE_SCALE)
_RATE_PLACES = Decimal(1).scaleb(-RATE_SCALE)
_RATE_ROUNDING = Context(prec=RATE_DIGITS, rounding=ROUND_HALF_EVEN, traps=[InvalidOperation])

USER_SCHEMA = pl.Schema(
    {
        "idx": pl.UInt32(),
        "user_id": pl.String(),
        "name": pl.String(),
        "email": pl.String(),
        "country": pl.String(),
        "signup_date": pl.Date(),
        "updated_at": pl.Datetime("us"),
    }
)
PRODUCT_SCHEMA = pl.Schema(
    {
        "idx": pl.UInt32(),
        "sku": pl.String(),
        "name": pl.String(),
        "category": pl.String(),
        "list_price": MONEY,
        "updated_at": pl.Datetime("us"),
    }
)
RATE_SCHEMA = pl.Schema(
    {"idx": pl.UInt32(), "date": pl.Date(), "currency": pl.String(), "rate": RATE}
)
SCHEMAS = {USERS: USER_SCHEMA, PRODUCTS: PRODUCT_SCHEMA, RATES: RATE_SCHEMA}
KEYS = {USERS: "user_id", PRODUCTS: "sku", RATES: "currency"}
REJECT_SCHEMA = pl.Schema({"idx": pl.UInt32(), "reason": pl.String(), "detail": pl.String()})

_COUNTRY = re.compile(r"[A-Z]{2}")
_CURRENCY = re.compile(r"[A-Z]{3}")
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_decode = msgspec.json.Decoder(float_hook=Decimal).decode


class BadReferenceError(ValueError):
    """A reference record that is not valid reference data; the message names the field."""


@dataclass(frozen=True)
class ParsedReference:
    """The versions (or rates) of one kind, and the rejects, by ``idx`` in the input."""

    kind: str
    rows: pl.DataFrame
    rejects: pl.DataFrame


def parse_reference(kind: str, values: Sequence[bytes | None]) -> ParsedReference:
    """Validate one topic's raw values (CONTRACT §2) into rows and ``invalid_reference`` rejects."""
    row_of = _ROWS[kind]
    rows: list[dict[str, Any]] = []
    rejects: dict[str, list[Any]] = {"idx": [], "reason": [], "detail": []}
    for idx, value in enumerate(values):
        try:
            rows.append({"idx": idx, **row_of(_document(value))})
        except BadReferenceError as bad:
            rejects["idx"].append(idx)
            rejects["reason"].append(INVALID_REFERENCE)
            rejects["detail"].append(str(bad))
    return ParsedReference(
        kind,
        pl.DataFrame(rows, schema=SCHEMAS[kind]),
        pl.DataFrame(rejects, schema=REJECT_SCHEMA),
    )


def parse_rate(value: object) -> Decimal:
    """A rate as stored (DECIMAL(18,10), half-to-even); BadReferenceError unless > 0 and < 10^8."""
    if not is_number(value) or isinstance(value, bool):
        raise BadReferenceError(f"rate {_short(value)} is not a number")
    try:
        stored = _RATE_ROUNDING.quantize(Decimal(value), _RATE_PLACES)  # type: ignore[arg-type]
    except InvalidOperation:
        raise BadReferenceError(f"rate {_short(value)} is out of range (>= 1e8)") from None
    if stored <= 0:
        raise BadReferenceError(f"rate {_short(value)} is not > 0 (to 10 decimals)")
    if stored >= RATE_LIMIT:
        raise BadReferenceError(f"rate {_short(value)} is out of range (>= 1e8)")
    return stored


def parse_date(value: object, field: str) -> date:
    if type(value) is not str or not _DATE.fullmatch(value):
        raise BadReferenceError(f"{field} {_short(value)} is not YYYY-MM-DD")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise BadReferenceError(f"{field} {_short(value)} is not a calendar date") from None


def check_rate_row(currency: str, rate: Decimal) -> None:
    """USD is 1 by definition: a USD row with another rate is refused."""
    if currency == "USD" and rate != 1:
        raise BadReferenceError(f"a USD rate must be 1, got {rate.normalize()}")


def _document(value: bytes | None) -> dict[str, Any]:
    if value is None:
        raise BadReferenceError("null value (tombstone): deletes are not supported")
    try:
        doc = _decode(value)
    except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, DecimalException):
        raise BadReferenceError("not a UTF-8 JSON value") from None
    if type(doc) is not dict:
        raise BadReferenceError(f"JSON {type(doc).__name__} is not an object")
    return doc


def _key(doc: dict[str, Any], field: str) -> str:
    value = doc.get(field)
    if type(value) is not str or not value.strip():
        raise BadReferenceError(f"{field} {_short(value)} is missing or empty")
    return value


def _text(doc: dict[str, Any], field: str) -> str | None:
    value = doc.get(field)
    if value is None or type(value) is str:
        return value or None
    raise BadReferenceError(f"{field} {_short(value)} is not a string")


def _updated_at(doc: dict[str, Any]) -> Any:
    raw = doc.get("updated_at")
    if raw is None:
        raise BadReferenceError("updated_at is missing")
    try:
        return parse_created_at(raw)
    except ValueError:
        raise BadReferenceError(f"updated_at {_short(raw)} is not an ISO-8601 timestamp") from None


def _user(doc: dict[str, Any]) -> dict[str, Any]:
    country = doc.get("country")  # (unlike a name, an empty country is not a country)
    if country is not None and (type(country) is not str or not _COUNTRY.fullmatch(country)):
        raise BadReferenceError(f"country {_short(country)} is not an ISO 3166-1 alpha-2 code")
    signup = doc.get("signup_date")
    return {
        "user_id": _key(doc, "user_id"),
        "name": _text(doc, "name"),
        "email": _text(doc, "email"),
        "country": country,
        "signup_date": None if signup is None else parse_date(signup, "signup_date"),
        "updated_at": _updated_at(doc),
    }


def _product(doc: dict[str, Any]) -> dict[str, Any]:
    raw = doc.get("list_price")
    price = None
    if raw is not None:
        if not is_number(raw) or isinstance(raw, bool) or raw < 0:
            raise BadReferenceError(f"list_price {_short(raw)} is not a number >= 0")
        price = round_money(raw)
        if price is None:
            raise BadReferenceError(f"list_price {_short(raw)} is out of range (>= 1e14)")
    return {
        "sku": _key(doc, "sku"),
        "name": _text(doc, "name"),
        "category": _text(doc, "category"),
        "list_price": price,
        "updated_at": _updated_at(doc),
    }


def _rate(doc: dict[str, Any]) -> dict[str, Any]:
    currency = doc.get("currency")
    if type(currency) is not str or not _CURRENCY.fullmatch(currency):
        raise BadReferenceError(f"currency {_short(currency)} is not three capital letters")
    rate = parse_rate(doc.get("rate"))
    check_rate_row(currency, rate)
    return {"date": parse_date(doc.get("date"), "date"), "currency": currency, "rate": rate}


_ROWS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    USERS: _user,
    PRODUCTS: _product,
    RATES: _rate,
}


def _short(value: object, limit: int = 60) -> str:
    text = str(value) if type(value) is Decimal else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
