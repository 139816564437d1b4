"""The reference rows of one batch, and which of them to store (CONTRACT §2).

A ``ReferenceBatch`` holds what one warehouse transaction writes besides orders: versions of
users and products and exchange rates, from change topics (with their positions) and from CSV
files, the topic records rejected as ``invalid_reference``, and where each reference topic's
reading stands after them (its ledger).

``plan_versions`` decides, without I/O, which versions to store given what the warehouse holds:
- a delivery whose content equals the latest delivery of the same key and instant (same
  ``updated_at``; same day for a rate) adds nothing: it is an identical re-delivery (counted in
  ``dropped_duplicates`` when it came from a topic);
- a CSV row without ``updated_at`` takes effect now, unless its content equals the key's
  current version;
- anything else is stored; when it differs from an earlier delivery of the same key and
  instant it replaces it (the later arrival wins, in the views).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

import polars as pl

from consumer.core.frames import REJECTED_SCHEMA, text_or_none
from consumer.core.records import Records
from consumer.core.refdata import PRODUCTS, RATES, SCHEMAS, USERS, parse_reference

ORIGIN = pl.Schema(
    {
        "arrival": pl.UInt32(),
        "topic": pl.String(),
        "topic_id": pl.String(),
        "partition": pl.Int32(),
        "offset": pl.Int64(),
        "file": pl.String(),
    }
)
# The natural key and the instant of each kind; the content is every other column.
IDENTITY = {USERS: ("user_id", "updated_at"), PRODUCTS: ("sku", "updated_at"),
            RATES: ("currency", "date")}  # fmt: skip
CONTENT = {
    kind: tuple(c for c in SCHEMAS[kind] if c not in ("idx", *IDENTITY[kind])) for kind in SCHEMAS
}
TABLES = {USERS: "user_versions", PRODUCTS: "product_versions", RATES: "fx_rate_versions"}


def frame_schema(kind: str) -> pl.Schema:
    """The columns of a kind's rows in a ReferenceBatch: its values, then where it came from."""
    values = {c: t for c, t in SCHEMAS[kind].items() if c != "idx"}
    return pl.Schema({**values, **ORIGIN})


def empty(kind: str) -> pl.DataFrame:
    return pl.DataFrame(schema=frame_schema(kind))


@dataclass(frozen=True)
class TopicStand:
    """Where a reference topic's reading stands after a batch: its ledger rows."""

    topic_id: str | None
    next_offsets: dict[int, int]
    first_offsets: dict[int, int] = field(default_factory=dict)
    skipped: dict[int, tuple[int, int]] = field(default_factory=dict)  # deleted by retention


@dataclass(frozen=True)
class ReferenceBatch:
    rows: Mapping[str, pl.DataFrame]  # kind -> frame_schema(kind), in arrival order
    rejects: pl.DataFrame  # topic, topic_id, partition, offset, reason, detail, key, value, ...
    stands: Mapping[str, TopicStand] = field(default_factory=dict)  # reference topic -> stand

    def __bool__(self) -> bool:
        rows = any(not frame.is_empty() for frame in self.rows.values())
        return rows or not self.rejects.is_empty() or bool(self.stands)

    @property
    def records(self) -> int:
        """Topic records in this batch (versions, re-deliveries and rejects)."""
        from_topics = sum(f["topic"].is_not_null().sum() for f in self.rows.values())
        return int(from_topics) + self.rejects.height


@dataclass(frozen=True)
class VersionPlan:
    stored: pl.DataFrame  # frame_schema(kind), updated_at filled in
    duplicates: pl.DataFrame  # topic, topic_id, partition, offset, key


def plan_versions(
    kind: str, rows: pl.DataFrame, latest: pl.DataFrame, current: pl.DataFrame, now: datetime
) -> VersionPlan:
    """Which of a batch's ``rows`` of ``kind`` to store (module docstring).

    ``latest``: for the batch's keys and instants, the content of the latest delivery the
    warehouse holds (identity and content columns). ``current``: for the batch's keys, the
    content of each key's current version (users and products only; CSV rows without
    ``updated_at`` are compared with it).
    """
    key, instant = IDENTITY[kind]
    content = list(CONTENT[kind])
    dated = rows.filter(pl.col(instant).is_not_null())
    fresh = rows.clear()
    if kind != RATES:  # (a rate always has its date)
        # A CSV row without updated_at: a new version now, unless it is the key's current one.
        fresh = (
            rows.filter(pl.col(instant).is_null())
            .join(current.select(key, *content), on=[key, *content], how="anti", nulls_equal=True)
            .with_columns(pl.lit(now, pl.Datetime("us")).alias(instant))
        )
    # Each dated delivery is compared with the one before it of the same key and instant:
    # the stored latest first, then the batch's own in arrival order.
    before = latest.select(key, instant, *content).with_columns(
        pl.lit(-1, pl.Int64).alias("_order")
    )
    batch = dated.with_row_index("_order").select(key, instant, *content, "_order")
    ordered = pl.concat([before, batch.cast({"_order": pl.Int64})], how="vertical_relaxed").sort(
        key, instant, "_order"
    )
    same = (
        pl.all_horizontal(
            [pl.col(c).eq_missing(pl.col(c).shift(1).over(key, instant)) for c in content]
        )
        & pl.col("_order").shift(1).over(key, instant).is_not_null()
    )
    repeated = (
        ordered.with_columns(same.alias("_same"))
        .filter(pl.col("_order") >= 0)
        .sort("_order")["_same"]
        .fill_null(False)
    )
    kept = dated.filter(~repeated)
    dropped = dated.filter(repeated & pl.col("topic").is_not_null())
    stored = pl.concat([kept, fresh.cast(kept.schema)]).sort("arrival")
    duplicates = dropped.select(
        "topic", "topic_id", "partition", "offset",
        _natural_key(kind).alias("key"),
    )  # fmt: skip
    return VersionPlan(stored, duplicates)


def _natural_key(kind: str) -> pl.Expr:
    """The key a duplicate is recorded under: the user or sku, or ``EUR:2025-08-01``."""
    if kind == RATES:
        return pl.format("{}:{}", pl.col("currency"), pl.col("date").cast(pl.String))
    return pl.col(IDENTITY[kind][0])


@dataclass(frozen=True)
class TopicRecords:
    """Records consumed from one reference topic, and what kind of reference it carries."""

    kind: str
    topic: str
    topic_id: str | None
    records: Records


def reference_batch(
    topics: Sequence[TopicRecords],
    files: Sequence[tuple[str, str, pl.DataFrame]] = (),
    stands: Mapping[str, TopicStand] | None = None,
) -> ReferenceBatch:
    """Validate the records of each reference topic and gather them, with the rows of CSV files
    (``(kind, file name, frame)``, ``updated_at`` possibly NULL), into one ReferenceBatch.
    ``arrival`` numbers the rows in the order given: files first, then topics."""
    parts: dict[str, list[pl.DataFrame]] = {kind: [] for kind in SCHEMAS}
    rejects: list[pl.DataFrame] = []
    arrival = 0
    for kind, file, frame in files:
        given = frame.select([c for c in frame_schema(kind) if c in frame.columns])
        parts[kind].append(
            given.with_columns(
                pl.int_range(arrival, arrival + frame.height, dtype=pl.UInt32).alias("arrival"),
                pl.lit(None, pl.String).alias("topic"),
                pl.lit(None, pl.String).alias("topic_id"),
                pl.lit(None, pl.Int32).alias("partition"),
                pl.lit(None, pl.Int64).alias("offset"),
                pl.lit(file, pl.String).alias("file"),
            ).cast(frame_schema(kind))
        )
        arrival += frame.height
    for part in topics:
        records = part.records
        parsed = parse_reference(part.kind, records.values)
        positions = pl.DataFrame(
            {
                "idx": range(len(records)),
                "partition": records.partitions,
                "offset": records.offsets,
            },
            schema={"idx": pl.UInt32, "partition": pl.Int32, "offset": pl.Int64},
        )
        origin = [
            pl.lit(part.topic, pl.String).alias("topic"),
            pl.lit(part.topic_id, pl.String).alias("topic_id"),
        ]
        rows = parsed.rows.join(positions, on="idx").with_columns(
            (pl.col("idx") + arrival).cast(pl.UInt32).alias("arrival"),
            *origin,
            pl.lit(None, pl.String).alias("file"),
        )
        parts[part.kind].append(rows.select(list(frame_schema(part.kind))))
        bad = parsed.rejects.join(positions, on="idx").sort("idx")
        at = bad["idx"].to_list()
        raw = [records.values[i] for i in at]
        rejects.append(
            bad.with_columns(
                *origin,
                pl.lit(None, pl.String).alias("order_id"),
                pl.Series("key", [records.keys[i] for i in at], pl.Binary),
                pl.Series("value", raw, pl.Binary),
                pl.Series("value_text", [text_or_none(v) for v in raw], pl.String),
            ).select(list(REJECTED_SCHEMA))
        )
        arrival += len(records)
    return ReferenceBatch(
        rows={k: pl.concat(v) if v else empty(k) for k, v in parts.items()},
        rejects=pl.concat(rejects) if rejects else pl.DataFrame(schema=REJECTED_SCHEMA),
        stands=dict(stands or {}),
    )
