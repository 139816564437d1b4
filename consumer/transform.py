"""The pure transform: raw message values in, Polars frames out.

``parse_values`` validates and flattens a micro-batch into three frames: valid orders, their
lines, and rejects with a reason code. ``classify`` then decides, for every valid order, whether
it is loaded, dropped as an identical re-send, or rejected as a conflicting re-send. Neither
touches Kafka or DuckDB, so both are tested directly.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec
import polars as pl

EMPTY_PAYLOAD = "empty_payload"
INVALID_JSON = "invalid_json"
NOT_AN_OBJECT = "not_an_object"
MISSING_ORDER_ID = "missing_order_id"
INVALID_CREATED_AT = "invalid_created_at"
INVALID_ITEM = "invalid_item"
INVALID_AMOUNT = "invalid_amount"
INVALID_FIELD = "invalid_field"
CONFLICTING_DUPLICATE = "conflicting_duplicate"
REJECT_REASONS = (
    EMPTY_PAYLOAD,
    INVALID_JSON,
    NOT_AN_OBJECT,
    MISSING_ORDER_ID,
    INVALID_CREATED_AT,
    INVALID_ITEM,
    INVALID_AMOUNT,
    INVALID_FIELD,
    CONFLICTING_DUPLICATE,
)

LOADED = "loaded"
DUPLICATE = "duplicate"

# Money is DECIMAL(18,4). Below 1e11 a binary64 value with at most 4 decimals converts to that
# decimal exactly, so larger or finer values are rejected instead of being silently rounded.
MONEY_SCALE = 4
MONEY_LIMIT = 1e11
MONEY = pl.Decimal(18, MONEY_SCALE)
MAX_QUANTITY = 2**31 - 1

ORDER_SCHEMA = pl.Schema(
    {
        "idx": pl.UInt32(),
        "order_id": pl.String(),
        "user_id": pl.String(),
        "amount": pl.Float64(),
        "currency": pl.String(),
        "created_at": pl.Datetime("us"),
        "source": pl.String(),
        "promo": pl.String(),
        "content_hash": pl.Int64(),
        "line_count": pl.UInt32(),
    }
)
LINE_SCHEMA = pl.Schema(
    {
        "idx": pl.UInt32(),
        "line_number": pl.UInt32(),
        "sku": pl.String(),
        "quantity": pl.Int64(),
        "unit_price": pl.Float64(),
    }
)
REJECT_SCHEMA = pl.Schema({"idx": pl.UInt32(), "reason": pl.String(), "detail": pl.String()})

_TIMESTAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d{1,9})?)?(?:[Zz]|[+-]\d{2}(?::?\d{2})?)?"
)


class _RejectError(Exception):
    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Parsed:
    """A validated micro-batch. ``idx`` is each record's position in the input sequence."""

    orders: pl.DataFrame
    lines: pl.DataFrame
    rejects: pl.DataFrame


def parse_created_at(raw: object) -> datetime:
    """ISO-8601 extended timestamp → naive UTC datetime (no zone means UTC)."""
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


def _money(value: object, reason: str, field: str) -> float:
    if type(value) is int:
        number = float(value)
    elif type(value) is float:
        number = value
    else:
        raise _RejectError(reason, f"{field} {_short(value)} is not a JSON number")
    if not (math.isfinite(number) and abs(number) < MONEY_LIMIT):
        raise _RejectError(reason, f"{field} {_short(value)} is out of range")
    if round(number, MONEY_SCALE) != number:
        raise _RejectError(reason, f"{field} {_short(value)} has more than {MONEY_SCALE} decimals")
    return number


def _optional_text(doc: dict[str, Any], field: str) -> str | None:
    value = doc.get(field)
    if value is None or type(value) is str:
        return value or None
    raise _RejectError(INVALID_FIELD, f"{field} {_short(value)} is not a string")


def _short(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _Accumulator:
    """Column lists for the three output frames, filled record by record."""

    def __init__(self) -> None:
        self.orders: dict[str, list[Any]] = {name: [] for name in ORDER_SCHEMA}
        self.lines: dict[str, list[Any]] = {name: [] for name in LINE_SCHEMA}
        self.rejects: dict[str, list[Any]] = {name: [] for name in REJECT_SCHEMA}
        self._decode = msgspec.json.Decoder().decode
        self._canonical = msgspec.json.Encoder(order="sorted").encode

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
        except (msgspec.DecodeError, UnicodeDecodeError, RecursionError) as exc:
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

        digest = hashlib.blake2b(self._canonical(doc), digest_size=8).digest()
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

    def frames(self) -> Parsed:
        return Parsed(
            orders=pl.DataFrame(self.orders, schema=ORDER_SCHEMA).with_columns(
                pl.col("amount").cast(MONEY)
            ),
            lines=pl.DataFrame(self.lines, schema=LINE_SCHEMA).with_columns(
                pl.col("unit_price").cast(MONEY)
            ),
            rejects=pl.DataFrame(self.rejects, schema=REJECT_SCHEMA),
        )


def _validate_items(items: object) -> list[tuple[str, int, float]]:
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
        quantity = item.get("quantity")
        if type(quantity) is not int or not 1 <= quantity <= MAX_QUANTITY:
            raise _RejectError(
                INVALID_ITEM, f"item {position}: quantity {_short(quantity)} is not an integer >= 1"
            )
        price = _money(item.get("price"), INVALID_ITEM, f"item {position}: price")
        if price < 0:
            raise _RejectError(INVALID_ITEM, f"item {position}: price {price!r} is negative")
        lines.append((sku, quantity, price))
    return lines


def _classify_undecodable(value: bytes, exc: BaseException) -> _RejectError:
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as bad_utf8:
        return _RejectError(INVALID_JSON, f"not UTF-8: {bad_utf8.reason} at byte {bad_utf8.start}")
    if not text or text.isspace():
        return _RejectError(EMPTY_PAYLOAD, "empty or whitespace-only value")
    return _RejectError(INVALID_JSON, f"not JSON: {exc}")


def parse_values(values: Sequence[bytes | None]) -> Parsed:
    """Validate and flatten raw message values (one JSON order each)."""
    acc = _Accumulator()
    add = acc.add
    for idx, value in enumerate(values):
        add(idx, value)
    return acc.frames()


def classify(orders: pl.DataFrame, loaded: pl.DataFrame) -> pl.DataFrame:
    """Add an ``outcome`` column: ``loaded``, ``duplicate`` or ``conflicting_duplicate``.

    ``orders`` holds the valid records of a batch (``idx``, ``order_id``, ``content_hash``);
    ``loaded`` holds ``order_id`` and ``content_hash`` of orders loaded by earlier batches. An
    order already loaded keeps its first version; otherwise the batch's first record of that
    ``order_id`` is loaded, and every later one is compared with whichever version is loaded.
    """
    reference = pl.coalesce(
        pl.col("loaded_hash"), pl.col("content_hash").sort_by("idx").first().over("order_id")
    )
    is_first = pl.col("idx") == pl.col("idx").min().over("order_id")
    return (
        orders.join(
            loaded.select("order_id", pl.col("content_hash").alias("loaded_hash")),
            on="order_id",
            how="left",
        )
        .with_columns(
            pl.when(pl.col("loaded_hash").is_null() & is_first)
            .then(pl.lit(LOADED))
            .when(pl.col("content_hash") == reference)
            .then(pl.lit(DUPLICATE))
            .otherwise(pl.lit(CONFLICTING_DUPLICATE))
            .alias("outcome")
        )
        .drop("loaded_hash")
        .sort("idx")
    )
