"""The money type and the frame schemas shared by both transform paths."""

from __future__ import annotations

import polars as pl

from consumer.core.numbers import MONEY_DIGITS, MONEY_SCALE

# Money is DECIMAL(18,4), rounded half-to-even from the exact value written (see numbers.py).
MONEY = pl.Decimal(MONEY_DIGITS, MONEY_SCALE)
MAX_QUANTITY = 2**31 - 1

ORDER_SCHEMA = pl.Schema(
    {
        "idx": pl.UInt32(),
        "order_id": pl.String(),
        "user_id": pl.String(),
        "amount": MONEY,
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
        "unit_price": MONEY,
    }
)
REJECT_SCHEMA = pl.Schema({"idx": pl.UInt32(), "reason": pl.String(), "detail": pl.String()})

#: Every rejected record of a batch, of the orders topic or of a reference topic: where it came
#: from, why, and its raw key and value (``value_text`` when the value is UTF-8).
REJECTED_SCHEMA = pl.Schema(
    {
        "idx": pl.UInt32(),
        "topic": pl.String(),
        "topic_id": pl.String(),
        "partition": pl.Int32(),
        "offset": pl.Int64(),
        "reason": pl.String(),
        "detail": pl.String(),
        "order_id": pl.String(),
        "key": pl.Binary(),
        "value": pl.Binary(),
        "value_text": pl.String(),
    }
)


def text_or_none(value: bytes | None) -> str | None:
    """A raw value as text when it is UTF-8, else None."""
    try:
        return None if value is None else value.decode("utf-8")
    except UnicodeDecodeError:
        return None
