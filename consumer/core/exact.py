"""The exact, record-by-record validator (CONTRACT §1), in plain Python.

It decides every record the typed fast path (``fastpath``) does not accept, so it alone
determines reject reasons and their precedence; for records both could take, the two agree.
"""

from __future__ import annotations

import hashlib
import re
from datetime import datetime
from decimal import Decimal, DecimalException
from typing import Any

import msgspec
import polars as pl

from consumer.core import rules
from consumer.core.frames import LINE_SCHEMA, MAX_QUANTITY, ORDER_SCHEMA, REJECT_SCHEMA
from consumer.core.numbers import (
    integral,
    is_number,
    money_identity,
    number_identity,
    round_money,
)
from consumer.core.reasons import (
    EMPTY_PAYLOAD,
    INVALID_AMOUNT,
    INVALID_CREATED_AT,
    INVALID_FIELD,
    INVALID_ITEM,
    INVALID_JSON,
    MISSING_ORDER_ID,
    NOT_AN_OBJECT,
)

_TIMESTAMP = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.,][0-9]{1,9})?)?"
    r"(?:[Zz]|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)


_DATE_ONLY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")


class _RejectError(ValueError):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def parse_created_at(raw: object) -> datetime:
    """ISO-8601 extended timestamp → naive UTC datetime (no zone means UTC)."""
    if type(raw) is str and _DATE_ONLY.fullmatch(raw) and rules.relaxed("date_only_created_at"):
        raw += "T00:00:00Z"  # a test's relaxed rule (consumer.core.rules)
    if type(raw) is not str or _TIMESTAMP.fullmatch(raw) is None:
        raise _RejectError(
            INVALID_CREATED_AT, f"created_at {_short(raw)} is not an ISO-8601 timestamp"
        )
    text = raw[:-1] + "Z" if raw[-1] == "z" else raw
    try:
        stamp = datetime.fromisoformat(text)
        offset = stamp.utcoffset()
        return stamp if offset is None else (stamp - offset).replace(tzinfo=None)
    except (ValueError, OverflowError) as exc:
        raise _RejectError(INVALID_CREATED_AT, f"created_at {_short(raw)}: {exc}") from None


def _money(value: object, reason: str, field: str, *, signed: bool = True) -> Decimal:
    """A JSON number as stored in DECIMAL(18,4): rounded half-to-even to 4 decimals. Unless
    ``signed``, the value written must be >= 0 (-0.00001 is negative, though stored as 0)."""
    if type(value) is not int and type(value) is not Decimal:
        raise _RejectError(reason, f"{field} {_short(value)} is not a JSON number")
    stored = round_money(value)
    if stored is None:
        raise _RejectError(reason, f"{field} {_short(value)} is out of range (>= 1e14)")
    if not signed and value < 0:
        raise _RejectError(reason, f"{field} {_short(value)} is negative")
    return stored


def _identity(value: Any) -> Any:
    """``value`` with every number in the form content identity compares (numbers.py)."""
    kind = type(value)
    if kind is dict:
        return {key: _identity(member) for key, member in value.items()}
    if kind is list:
        return [_identity(element) for element in value]
    if kind is int or kind is Decimal:
        return number_identity(value)
    return value


def content_of(doc: dict[str, Any]) -> dict[str, Any]:
    """A valid order's document as content identity compares it: money by ``money_identity``,
    other numbers by ``number_identity`` (the fast path gets the same form from its structs)."""
    content: dict[str, Any] = _identity(doc)
    if is_number(doc.get("amount")):
        content["amount"] = money_identity(doc["amount"])
    items = doc.get("items")
    if items:
        for item, raw in zip(content["items"], items, strict=True):
            item["price"] = money_identity(raw["price"])
    return content


def _optional_text(doc: dict[str, Any], field: str) -> str | None:
    value = doc.get(field)
    if value is None or type(value) is str:
        return value or None
    raise _RejectError(INVALID_FIELD, f"{field} {_short(value)} is not a string")


def _short(value: object, limit: int = 60) -> str:
    text = str(value) if type(value) is Decimal else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class RecordColumns:
    """Column lists for the three output frames, filled record by record with exact checks."""

    def __init__(self) -> None:
        self.orders: dict[str, list[Any]] = {name: [] for name in ORDER_SCHEMA}
        self.lines: dict[str, list[Any]] = {name: [] for name in LINE_SCHEMA}
        self.rejects: dict[str, list[Any]] = {name: [] for name in REJECT_SCHEMA}
        self._decode = msgspec.json.Decoder(float_hook=Decimal).decode
        self._canonical = msgspec.json.Encoder(order="sorted", decimal_format="number").encode

    def add(self, idx: int, value: bytes | None) -> None:
        try:
            self._add_order(idx, self._document(value))
        except _RejectError as bad:
            rejects = self.rejects
            rejects["idx"].append(idx)
            rejects["reason"].append(bad.reason)
            rejects["detail"].append(bad.detail)

    def _document(self, value: bytes | None) -> dict[str, Any]:
        if value is None:
            raise _RejectError(EMPTY_PAYLOAD, "null value (tombstone)")
        try:
            doc = self._decode(value)
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError, DecimalException) as exc:
            raise _classify_undecodable(value, exc) from None
        if type(doc) is not dict:
            raise _RejectError(NOT_AN_OBJECT, f"JSON {type(doc).__name__} is not an object")
        return doc

    def _add_order(self, idx: int, doc: dict[str, Any]) -> None:
        order_id = doc.get("order_id")
        if type(order_id) is not str or not order_id.strip():
            raise _RejectError(MISSING_ORDER_ID, f"order_id {_short(order_id)} is missing or empty")
        raw_created = doc.get("created_at")
        created_at = None if raw_created is None else parse_created_at(raw_created)
        items = doc.get("items")
        lines = _validate_items(items) if items is not None else ()
        raw_amount = doc.get("amount")
        amount = None if raw_amount is None else _money(raw_amount, INVALID_AMOUNT, "amount")
        user_id = _optional_text(doc, "user_id")
        currency = _optional_text(doc, "currency")
        metadata = doc.get("metadata")
        if metadata is None:
            source = promo = None
        elif type(metadata) is dict:
            source = _optional_text(metadata, "source")
            promo = _optional_text(metadata, "promo")
        else:
            raise _RejectError(INVALID_FIELD, f"metadata {_short(metadata)} is not an object")

        digest = hashlib.blake2b(self._canonical(content_of(doc)), digest_size=8).digest()
        cols = self.orders
        cols["idx"].append(idx)
        cols["order_id"].append(order_id)
        cols["user_id"].append(user_id)
        cols["amount"].append(amount)
        cols["currency"].append(currency)
        cols["created_at"].append(created_at)
        cols["source"].append(source)
        cols["promo"].append(promo)
        cols["content_hash"].append(int.from_bytes(digest, "little", signed=True))
        cols["line_count"].append(len(lines))
        if lines:
            out = self.lines
            for number, (sku, quantity, price) in enumerate(lines, start=1):
                out["idx"].append(idx)
                out["line_number"].append(number)
                out["sku"].append(sku)
                out["quantity"].append(quantity)
                out["unit_price"].append(price)

    def frames(self) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame]:
        return (
            pl.DataFrame(self.orders, schema=ORDER_SCHEMA),
            pl.DataFrame(self.lines, schema=LINE_SCHEMA),
            pl.DataFrame(self.rejects, schema=REJECT_SCHEMA),
        )


def _validate_items(items: object) -> list[tuple[str, int, Decimal]]:
    if type(items) is not list:
        raise _RejectError(INVALID_ITEM, f"items {_short(items)} is not a list")
    lines = []
    for position, item in enumerate(items, start=1):
        if type(item) is not dict:
            raise _RejectError(INVALID_ITEM, f"item {position} is not an object")
        sku = item.get("sku")
        if type(sku) is not str or not sku.strip():
            raise _RejectError(
                INVALID_ITEM, f"item {position}: sku {_short(sku)} is missing or empty"
            )
        raw_quantity = item.get("quantity")
        quantity = integral(raw_quantity)  # 2.0 is the integer 2 (docs/interface.md §1)
        if quantity is None or not 1 <= quantity <= MAX_QUANTITY:
            raise _RejectError(
                INVALID_ITEM,
                f"item {position}: quantity {_short(raw_quantity)} is not an integer >= 1",
            )
        price = _money(item.get("price"), INVALID_ITEM, f"item {position}: price", signed=False)
        lines.append((sku, quantity, price))
    return lines


def _classify_undecodable(value: bytes, exc: BaseException) -> _RejectError:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as bad_utf8:
        return _RejectError(INVALID_JSON, f"not UTF-8: {bad_utf8.reason} at byte {bad_utf8.start}")
    if not text or text.isspace():
        return _RejectError(EMPTY_PAYLOAD, "empty or whitespace-only value")
    if isinstance(exc, DecimalException):
        return _RejectError(INVALID_JSON, "a number's exponent is beyond +-999999999999999999")
    return _RejectError(INVALID_JSON, f"not JSON: {exc}")
