"""The pure transform: raw message values in, Polars frames out.

``parse_values`` validates and flattens a micro-batch into three frames: valid orders, their
lines, and rejects with a reason code. ``classify`` then decides, for every valid order, whether
it is loaded, dropped as an identical re-send, or rejected as a conflicting re-send. Neither
touches Kafka or DuckDB, so both are tested directly.

Most records take the typed fast path (``fastpath``); the rest, including every malformed one,
go through the exact validator (``exact``). Both give the same rows for the same content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from consumer import fastpath
from consumer.exact import RecordColumns
from consumer.schema import CONFLICTING_DUPLICATE, DUPLICATE, LOADED, MONEY


@dataclass(frozen=True, slots=True)
class Parsed:
    """A validated micro-batch. ``idx`` is each record's position in the input sequence."""

    orders: pl.DataFrame
    lines: pl.DataFrame
    rejects: pl.DataFrame


def parse_values(values: Sequence[bytes | None], *, fast: bool = True) -> Parsed:
    """Validate and flatten raw message values (one JSON order each).

    ``fast=False`` sends every record through the exact validator (for tests that compare the
    two paths).
    """
    exact = RecordColumns()
    if fast:
        decoded = fastpath.decode(values)
        for idx in decoded.refused:
            exact.add(idx, values[idx])
        parts = [fastpath.frames(decoded), exact.frames()]
    else:
        for idx, value in enumerate(values):
            exact.add(idx, value)
        parts = [exact.frames()]
    orders, lines, rejects = (pl.concat(frames) for frames in zip(*parts, strict=True))
    return Parsed(
        orders=orders.sort("idx").with_columns(pl.col("amount").cast(MONEY)),
        lines=lines.sort("idx", "line_number").with_columns(pl.col("unit_price").cast(MONEY)),
        rejects=rejects.sort("idx"),
    )


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
