"""The fast path: typed decoding with msgspec (structure checked in C), then checks on whole
columns with Polars.

A record takes this path only if it is a well-typed order with no unknown field, an RFC 3339
``created_at`` and money that DECIMAL(18,4) holds without rounding; anything else is handed back
to the exact validator in ``exact``. What the typed decoder cannot express (calendar dates,
negative prices, empty strings as NULL) is checked here per column, with the validator's reasons
and precedence.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal, DecimalException
from typing import Annotated, Any

import msgspec
import polars as pl
from msgspec import UNSET, Meta, Struct, UnsetType
from msgspec.structs import astuple

from consumer.core.frames import LINE_SCHEMA, MAX_QUANTITY, MONEY, ORDER_SCHEMA, REJECT_SCHEMA
from consumer.core.numbers import plain_money
from consumer.core.reasons import INVALID_CREATED_AT, INVALID_ITEM

# Checked on the whole column by Polars (Rust regex; [0-9] is ASCII there as in Python): a
# pattern in the typed decoder calls Python's re per value, a visible share of the parse in
# the profile (docs/performance.md). A record whose created_at fails goes to the exact
# validator.
RFC3339 = (
    r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(\.[0-9]{1,9})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])?\z"
)

# Fields are declared in alphabetical order: encoding a decoded struct, its money replaced by
# ``plain_money``, then yields the same canonical JSON as exact.content_of on the generic
# document with sorted keys. The structs never form reference cycles, so the cyclic GC need not
# track them. Money is typed Any: a Decimal field would also accept a JSON string ("1.5"), so
# the decoder's float_hook makes Decimals and ``plain_money`` checks the type.
# ``gift_wrap`` and ``store`` are extra fields the simulator sends (about 10% of records): the
# warehouse ignores them, but content identity includes them, so they are typed here (any
# other type of theirs is refused) rather than sending those records to the exact validator.


class _Item(Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    gift_wrap: bool | UnsetType | None = UNSET
    price: Any
    quantity: Annotated[int, Meta(ge=1, le=MAX_QUANTITY)]
    sku: str


class _Metadata(Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    promo: str | UnsetType | None = UNSET
    source: str | UnsetType | None = UNSET
    store: str | UnsetType | None = UNSET


class _Order(Struct, kw_only=True, forbid_unknown_fields=True, gc=False):
    amount: Any = UNSET
    created_at: str | UnsetType | None = UNSET
    currency: str | UnsetType | None = UNSET
    items: list[_Item] | UnsetType | None = UNSET
    metadata: _Metadata | UnsetType | None = UNSET
    order_id: str
    user_id: str | UnsetType | None = UNSET


# A tombstone (None) is refused too, with TypeError; so is money that is not a number
# (TypeError), needs rounding or does not fit (DecimalException), and a number whose exponent
# Decimal cannot hold (InvalidOperation from the float_hook).
_REFUSED = (
    msgspec.ValidationError,
    msgspec.DecodeError,
    UnicodeDecodeError,
    TypeError,
    DecimalException,
)
RAW_ORDER_SCHEMA = pl.Schema(
    {
        **{name: ORDER_SCHEMA[name] for name in ("idx", "order_id", "user_id")},
        "amount": MONEY,
        "currency": pl.String(),
        "created_raw": pl.String(),
        "source": pl.String(),
        "promo": pl.String(),
        "content_hash": pl.Int64(),
    }
)


@dataclass
class FastColumns:
    """What the typed decoder accepted, column by column, and the positions it refused."""

    refused: list[int] = field(default_factory=list)
    idx: list[int] = field(default_factory=list)
    orders: list[tuple[Any, ...]] = field(default_factory=list)
    metadata: list[Any] = field(default_factory=list)
    hashes: list[int] = field(default_factory=list)
    line_idx: list[int] = field(default_factory=list)
    line_number: list[int] = field(default_factory=list)
    lines: list[tuple[Any, ...]] = field(default_factory=list)


def decode(values: Sequence[bytes | None], positions: Iterable[int] | None = None) -> FastColumns:
    """Decode each value (or those at ``positions``) as a typed order; remember the positions
    the decoder refuses."""
    decoder = msgspec.json.Decoder(_Order, float_hook=Decimal).decode
    encode = msgspec.json.Encoder(decimal_format="number").encode
    blake2b = hashlib.blake2b
    from_bytes = int.from_bytes
    plain = plain_money
    out = FastColumns()
    refuse, keep_idx, keep_order = out.refused.append, out.idx.append, out.orders.append
    keep_meta, keep_hash = out.metadata.append, out.hashes.append
    line_idx, line_number, lines = out.line_idx.extend, out.line_number.extend, out.lines.extend
    for idx in range(len(values)) if positions is None else positions:
        try:
            order = decoder(values[idx])  # type: ignore[arg-type]
            if not order.order_id.strip():  # blank as the exact validator sees it
                raise TypeError("blank order_id")
            amount = order.amount
            if amount is not UNSET and amount is not None:
                order.amount = plain(amount)
            items = order.items
            if items:
                for item in items:
                    if not item.sku.strip():
                        raise TypeError("blank sku")
                    item.price = plain(item.price)
        except _REFUSED:
            refuse(idx)
            continue
        keep_idx(idx)
        keep_order(astuple(order))
        keep_meta(order.metadata)
        keep_hash(from_bytes(blake2b(encode(order), digest_size=8).digest(), "little", signed=True))
        if items:
            count = len(items)
            line_idx([idx] * count)
            line_number(range(1, count + 1))
            lines(map(astuple, items))
    return out


def _defined(column: Sequence[Any]) -> list[Any]:
    return [None if value is UNSET else value for value in column]


def _blank_is_null(name: str) -> pl.Expr:
    return pl.when(pl.col(name) != "").then(pl.col(name)).alias(name)


def _utc_timestamp(text: pl.Expr) -> pl.Expr:
    """RFC 3339 text → naive UTC datetime; null when the calendar date does not exist."""
    local = text.str.slice(0, 19).str.to_datetime("%Y-%m-%dT%H:%M:%S", strict=False)
    micros = (text.str.extract(r"\.([0-9]{1,9})", 1) + "00000").str.slice(0, 6).cast(pl.Int64)
    zone = text.str.extract_groups(r"([+-])([0-9]{2}):([0-9]{2})\z")
    sign = pl.when(zone.struct.field("1") == "-").then(-1).otherwise(1)
    minutes = sign * (
        zone.struct.field("2").cast(pl.Int64) * 60 + zone.struct.field("3").cast(pl.Int64)
    )
    return (
        local
        + pl.duration(microseconds=micros.fill_null(0))
        - pl.duration(minutes=minutes.fill_null(0))
    )


def _money_text(column: Sequence[Any]) -> list[str | None]:
    """Money as text for Polars, which parses it into DECIMAL(18,4) at Rust speed: building a
    Decimal column from Python Decimals costs many times more (measured: docs/performance.md)."""
    return [None if value is UNSET or value is None else str(value) for value in column]


Columns = dict[str, list[Any]]


def columns(fast: FastColumns) -> tuple[Columns, Columns]:
    """The decoded orders and lines as lists by column name, money as 4-decimal text (the
    form the native tier gives too)."""
    amount, created, currency, _items, _meta, order_id, user_id = (
        zip(*fast.orders, strict=True) if fast.orders else ((),) * 7
    )
    meta = fast.metadata
    orders = {
        "idx": fast.idx,
        "order_id": list(order_id),
        "user_id": _defined(user_id),
        "amount": _money_text(amount),
        "currency": _defined(currency),
        "created_raw": _defined(created),
        "source": _defined([m.source if m else None for m in meta]),
        "promo": _defined([m.promo if m else None for m in meta]),
        "content_hash": fast.hashes,
    }
    _gift_wrap, price, quantity, sku = (
        zip(*fast.lines, strict=True) if fast.lines else ((), (), (), ())
    )
    lines = {
        "idx": fast.line_idx,
        "line_number": fast.line_number,
        "sku": list(sku),
        "quantity": list(quantity),
        "unit_price": _money_text(price),
    }
    return orders, lines


def raw_frames(order_columns: Columns, line_columns: Columns) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The columns of ``columns`` as frames of RAW_ORDER_SCHEMA and LINE_SCHEMA."""
    raw = pl.DataFrame(
        {**order_columns, "amount": _money(order_columns["amount"])},
        schema=RAW_ORDER_SCHEMA,
        strict=False,
    )
    lines = pl.DataFrame(
        {**line_columns, "unit_price": _money(line_columns["unit_price"])},
        schema=LINE_SCHEMA,
        strict=False,
    )
    return raw, lines


def _money(text: list[str | None]) -> pl.Series:
    return pl.Series(text, dtype=pl.String).cast(MONEY)


def frames(
    raw: pl.DataFrame, lines: pl.DataFrame
) -> tuple[pl.DataFrame, pl.DataFrame, pl.DataFrame, list[int]]:
    """Orders, lines and rejects of the fast path, with the column checks applied, and the
    positions refused by those checks (a ``created_at`` that is not RFC 3339)."""
    not_rfc3339 = pl.col("created_raw").is_not_null() & ~pl.col("created_raw").str.contains(RFC3339)
    refused: list[int] = raw.filter(not_rfc3339)["idx"].to_list()
    if refused:
        raw = raw.filter(~not_rfc3339)
    bad_lines = (
        lines.filter(pl.col("unit_price") < 0)
        .group_by("idx")
        .agg(pl.col("line_number").min().alias("bad_line"))
    )
    stamp_ok = (pl.col("created_raw").str.slice(0, 4).cast(pl.Int32) >= 1) & pl.col(
        "created_at"
    ).dt.year().is_between(1, 9999)
    checked = (
        raw.with_columns(_utc_timestamp(pl.col("created_raw")).alias("created_at"))
        .join(bad_lines, on="idx", how="left")
        .with_columns(
            pl.when(pl.col("created_raw").is_not_null() & ~stamp_ok.fill_null(False))
            .then(pl.lit(INVALID_CREATED_AT))
            .when(pl.col("bad_line").is_not_null())
            .then(pl.lit(INVALID_ITEM))
            .alias("reason")
        )
    )
    rejects = checked.filter(pl.col("reason").is_not_null()).select(
        "idx",
        "reason",
        pl.when(pl.col("reason") == INVALID_CREATED_AT)
        .then(pl.format("created_at '{}' is not a valid timestamp", "created_raw"))
        .otherwise(pl.format("item {}: price is negative", "bad_line"))
        .alias("detail"),
    )
    counts = lines.group_by("idx").len("line_count")
    orders = (
        checked.filter(pl.col("reason").is_null())
        .join(counts, on="idx", how="left")
        .with_columns(
            pl.col("line_count").fill_null(0),
            *(_blank_is_null(name) for name in ("user_id", "currency", "source", "promo")),
        )
        .select(ORDER_SCHEMA.names())
        .cast(ORDER_SCHEMA)
    )
    lines = lines.join(orders.select("idx"), on="idx", how="semi")
    return orders, lines, rejects.cast(REJECT_SCHEMA), refused
