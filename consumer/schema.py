"""Reason codes, money rules and the frame schemas shared by both transform paths."""

from __future__ import annotations

from dataclasses import dataclass, field

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


@dataclass
class Records:
    """Consumed records, column by column: what the transform and the sink need of them."""

    values: list[bytes | None] = field(default_factory=list)
    keys: list[bytes | None] = field(default_factory=list)
    partitions: list[int] = field(default_factory=list)
    offsets: list[int] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.values)

    def extend(self, records: Records) -> None:
        self.values.extend(records.values)
        self.keys.extend(records.keys)
        self.partitions.extend(records.partitions)
        self.offsets.extend(records.offsets)

    def without(self, partitions: set[int]) -> Records:
        keep = [i for i, p in enumerate(self.partitions) if p not in partitions]
        return Records(
            [self.values[i] for i in keep],
            [self.keys[i] for i in keep],
            [self.partitions[i] for i in keep],
            [self.offsets[i] for i in keep],
        )
