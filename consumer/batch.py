"""A micro-batch as the sink writes it, and what became of its records."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl

from consumer.schema import CONFLICTING_DUPLICATE, Records
from consumer.transform import Parsed, parse_values

REJECT_FRAME_SCHEMA = pl.Schema(
    {
        "idx": pl.UInt32(),
        "reason": pl.String(),
        "detail": pl.String(),
        "order_id": pl.String(),
    }
)


@dataclass(frozen=True)
class Batch:
    """One micro-batch as the sink needs it: parsed frames plus each record's position."""

    batch_id: int
    topic: str
    parsed: Parsed
    positions: pl.DataFrame  # idx, partition, offset
    keys: list[bytes | None]
    values: list[bytes | None]
    next_offsets: dict[int, int]

    @classmethod
    def from_records(cls, batch_id: int, topic: str, records: Records) -> Batch:
        """Transform consumed records and note where each came from."""
        positions = pl.DataFrame(
            {
                "idx": range(len(records)),
                "partition": records.partitions,
                "offset": records.offsets,
            },
            schema={"idx": pl.UInt32, "partition": pl.Int32, "offset": pl.Int64},
        )
        ends = positions.group_by("partition").agg(pl.col("offset").max() + 1)
        next_offsets = dict(zip(ends["partition"].to_list(), ends["offset"].to_list(), strict=True))
        return cls(
            batch_id,
            topic,
            parse_values(records.values),
            positions,
            records.keys,
            records.values,
            next_offsets,
        )


@dataclass(frozen=True)
class BatchResult:
    loaded: int
    duplicates: int
    fact_rows: int
    rejects: pl.DataFrame  # idx, partition, offset, reason, detail, order_id, key, value

    @property
    def rejected(self) -> int:
        return self.rejects.height

    def rejected_by_reason(self) -> dict[str, int]:
        counts = self.rejects.group_by("reason").len()
        return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))


def rejects_of(batch: Batch, outcome: pl.DataFrame) -> pl.DataFrame:
    """Every rejected record of the batch (parse rejects and conflicting re-sends), with its
    position, key and raw value."""
    conflicts = outcome.filter(pl.col("outcome") == CONFLICTING_DUPLICATE).select(
        "idx",
        pl.lit(CONFLICTING_DUPLICATE).alias("reason"),
        pl.format("content differs from the loaded version of order {}", "order_id").alias(
            "detail"
        ),
        "order_id",
    )
    parsed = batch.parsed.rejects.with_columns(pl.lit(None, pl.String).alias("order_id"))
    rejects = (
        pl.concat([parsed, conflicts.cast(REJECT_FRAME_SCHEMA)])
        .join(batch.positions, on="idx")
        .sort("idx")
    )
    positions = rejects["idx"].to_list()
    values = [batch.values[i] for i in positions]
    return rejects.with_columns(
        pl.Series("key", [batch.keys[i] for i in positions], pl.Binary),
        pl.Series("value", values, pl.Binary),
        pl.Series("value_text", [_text_or_none(v) for v in values], pl.String),
    )


def _text_or_none(value: bytes | None) -> str | None:
    try:
        return None if value is None else value.decode("utf-8")
    except UnicodeDecodeError:
        return None
