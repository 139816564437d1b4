"""Money rules and the frame schemas shared by both transform paths."""

from __future__ import annotations

import polars as pl

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
