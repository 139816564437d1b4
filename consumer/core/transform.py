"""The pure transform: raw message values in, Polars frames out.

``parse_values`` validates and flattens a micro-batch into three frames: valid orders, their
lines, and rejects with a reason code. What becomes of each valid order (loaded, an identical
re-send, a conflicting one) is decided by ``consumer.core.plan``.

Most records take the native tier (``native``, a Rust extension, when built); what it refuses
takes the typed fast path (``fastpath``); the rest, including every malformed record, goes
through the exact validator (``exact``). All three give the same rows for the same content.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from consumer.core import fastpath, native
from consumer.core.exact import RecordColumns


@dataclass(frozen=True, slots=True)
class Parsed:
    """A validated micro-batch. ``idx`` is each record's position in the input sequence;
    ``orders`` has the columns of ORDER_SCHEMA and ``key_hash`` (see ``key_hashes``)."""

    orders: pl.DataFrame
    lines: pl.DataFrame
    rejects: pl.DataFrame


def parse_values(
    values: Sequence[bytes | None], *, fast: bool = True, use_native: bool = True
) -> Parsed:
    """Validate and flatten raw message values (one JSON order each).

    ``fast=False`` sends every record through the exact validator, and ``use_native=False``
    skips the native tier (for tests that compare the paths).
    """
    exact = RecordColumns()
    if fast:
        decode_native = native.decoder() if use_native else None
        # What the native tier refuses (everything, without it), the Python fast path decodes.
        left: list[int] | None = None
        if decode_native is not None:
            left, native_orders, native_lines = decode_native(list(values))
        decoded = fastpath.decode(values, left)
        raw_orders, raw_lines = fastpath.raw_frames(*fastpath.columns(decoded))
        if decode_native is not None:
            raw_orders = pl.concat([native_orders, raw_orders])
            raw_lines = pl.concat([native_lines, raw_lines])
        orders, lines, rejects, refused = fastpath.frames(raw_orders, raw_lines)
        for idx in sorted(decoded.refused + refused):
            exact.add(idx, values[idx])
        parts = [(orders, lines, rejects), exact.frames()]
    else:
        for idx, value in enumerate(values):
            exact.add(idx, value)
        parts = [exact.frames()]
    orders, lines, rejects = (pl.concat(frames) for frames in zip(*parts, strict=True))
    # Each record's lines come in line order, and each record takes one path: a stable sort by
    # idx alone gives (idx, line_number) order, cheaper than sorting on both keys (make
    # bench-parse; docs/performance.md).
    orders = orders.sort("idx")
    hash_column = native.key_hasher() if fast and use_native else None
    return Parsed(
        orders=orders.with_columns(
            hash_column(orders["order_id"])
            if hash_column is not None
            else pl.Series("key_hash", key_hashes(orders["order_id"].to_list()), dtype=pl.UInt64)
        ),
        lines=lines.sort("idx", maintain_order=True),
        rejects=rejects.sort("idx"),
    )


def key_hashes(order_ids: Sequence[str]) -> list[int]:
    """The key ``processed_orders`` is looked up by: the low 64 bits of each id's MD5, as DuckDB's
    ``md5_number_lower(order_id)`` gives them (the bytes 8 to 15 of the digest, little-endian).

    Computed here, in the parsing worker, rather than by the writer in SQL: DuckDB took more
    of the writer's CPU for a batch's ids, twice a batch (the lookup and the insert), than
    this takes in the worker (measured: docs/performance.md). The fast path hashes the whole column
    natively where the extension is built (``native.key_hasher``); this is the reference, and
    what the exact path and a consumer without the extension use.
    """
    md5, from_bytes = hashlib.md5, int.from_bytes
    return [from_bytes(md5(key.encode()).digest()[8:], "little") for key in order_ids]
