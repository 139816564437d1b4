"""A micro-batch and its plan: what becomes of every record, decided without I/O.

``build_batch`` runs the transform over consumed records. ``plan_batch`` classifies the batch's
valid orders against the orders already loaded (which the warehouse looks up inside the batch's
transaction) and returns every frame the warehouse then writes: loaded orders and their lines,
identical re-sends, and rejects with their reasons.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import polars as pl

from consumer.core.frames import REJECTED_SCHEMA, text_or_none
from consumer.core.positions import positions_after
from consumer.core.reasons import CONFLICTING_DUPLICATE, DUPLICATE, LOADED
from consumer.core.records import Records
from consumer.core.refbatch import ReferenceBatch
from consumer.core.transform import Parsed, parse_values

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
    """One transformed micro-batch: parsed frames plus where each record came from."""

    batch_id: int
    topic: str
    parsed: Parsed
    origins: pl.DataFrame  # idx, partition, offset
    keys: list[bytes | None]
    values: list[bytes | None]
    next_offsets: dict[int, int]
    topic_id: str | None = None
    first_offsets: dict[int, int] = field(default_factory=dict)  # where reading began
    skipped: dict[int, tuple[int, int]] = field(default_factory=dict)  # deleted by retention
    reference: ReferenceBatch | None = None  # reference versions written in the same transaction

    @property
    def size(self) -> int:
        return len(self.values)


def build_batch(
    batch_id: int,
    topic: str,
    records: Records,
    next_offsets: Mapping[int, int] | None = None,
    *,
    topic_id: str | None = None,
    first_offsets: dict[int, int] | None = None,
    skipped: dict[int, tuple[int, int]] | None = None,
    parsed: Parsed | None = None,
    reference: ReferenceBatch | None = None,
) -> Batch:
    """Transform consumed records (unless ``parsed`` is their transform, done elsewhere) and
    note where each came from.

    ``next_offsets`` is where each partition stands after these records, as
    ``positions_after`` gives it (the caller may have needed it before the batch was parsed);
    by default, the last record + 1.
    ``first_offsets`` and ``skipped`` go to the ledger with the batch: where reading of each
    partition began, and offsets retention deleted before they were read.
    """
    origins = pl.DataFrame(
        {"idx": range(len(records)), "partition": records.partitions, "offset": records.offsets},
        schema={"idx": pl.UInt32, "partition": pl.Int32, "offset": pl.Int64},
    )
    return Batch(
        batch_id,
        topic,
        parse_values(records.values) if parsed is None else parsed,
        origins,
        records.keys,
        records.values,
        dict(next_offsets)
        if next_offsets is not None
        else {p: at.next_offset for p, at in positions_after(records).items()},
        topic_id,
        dict(first_offsets or {}),
        dict(skipped or {}),
        reference,
    )


@dataclass(frozen=True)
class BatchResult:
    loaded: int
    duplicates: int
    fact_rows: int
    rejects: pl.DataFrame  # topic, partition, offset, reason, detail, order_id, key, value, ...
    versions: int = 0  # reference versions and rates stored
    redeliveries: int = 0  # reference records that were identical re-deliveries

    @property
    def rejected(self) -> int:
        return self.rejects.height

    def rejected_by_reason(self) -> dict[str, int]:
        counts = self.rejects.group_by("reason").len()
        return dict(zip(counts["reason"].to_list(), counts["len"].to_list(), strict=True))


@dataclass(frozen=True)
class BatchPlan:
    """Every frame one batch writes."""

    batch: Batch
    loaded: pl.DataFrame  # the orders to load, with their partition and offset
    lines: pl.DataFrame  # their order lines
    duplicates: pl.DataFrame  # partition, offset, order_id of identical re-sends
    rejects: pl.DataFrame

    def result(
        self, rejects: pl.DataFrame | None = None, versions: int = 0, redeliveries: int = 0
    ) -> BatchResult:
        """The outcome; ``rejects`` when the batch's rejects include other topics' (reference
        records), with the counts of reference versions stored and re-deliveries dropped."""
        return BatchResult(
            loaded=self.loaded.height,
            duplicates=self.duplicates.height,
            fact_rows=self.lines.height,
            rejects=self.rejects if rejects is None else rejects,
            versions=versions,
            redeliveries=redeliveries,
        )


def plan_batch(batch: Batch, known: pl.DataFrame) -> BatchPlan:
    """The fate of every record, given ``known`` (order_id, content_hash) of the batch's
    order ids that earlier batches loaded."""
    orders = batch.parsed.orders.join(batch.origins, on="idx")
    outcome = classify(orders, known)
    loaded = outcome.filter(pl.col("outcome") == LOADED)
    lines = batch.parsed.lines.join(
        loaded.select("idx", "order_id", "user_id", "created_at", "currency"), on="idx"
    )
    duplicates = outcome.filter(pl.col("outcome") == DUPLICATE).select(
        "partition", "offset", "order_id"
    )
    return BatchPlan(batch, loaded, lines, duplicates, _rejects(batch, outcome))


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


def _rejects(batch: Batch, outcome: pl.DataFrame) -> pl.DataFrame:
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
        .join(batch.origins, on="idx")
        .sort("idx")
    )
    indexes = rejects["idx"].to_list()
    values = [batch.values[i] for i in indexes]
    return rejects.with_columns(
        pl.lit(batch.topic, pl.String).alias("topic"),
        pl.lit(batch.topic_id, pl.String).alias("topic_id"),
        pl.Series("key", [batch.keys[i] for i in indexes], pl.Binary),
        pl.Series("value", values, pl.Binary),
        pl.Series("value_text", [text_or_none(v) for v in values], pl.String),
    ).select(list(REJECTED_SCHEMA))
