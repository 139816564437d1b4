"""The pure transform: raw message values in, Polars frames out.

``parse_values`` validates and flattens a micro-batch into three frames: valid orders, their
lines, and rejects with a reason code. What becomes of each valid order (loaded, an identical
re-send, a conflicting one) is decided by ``consumer.core.plan``.

Most records take the typed fast path (``fastpath``); the rest, including every malformed one,
go through the exact validator (``exact``). Both give the same rows for the same content.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import polars as pl

from consumer.core import fastpath
from consumer.core.exact import RecordColumns


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
        orders, lines, rejects, refused = fastpath.frames(decoded)
        for idx in sorted(decoded.refused + refused):
            exact.add(idx, values[idx])
        parts = [(orders, lines, rejects), exact.frames()]
    else:
        for idx, value in enumerate(values):
            exact.add(idx, value)
        parts = [exact.frames()]
    orders, lines, rejects = (pl.concat(frames) for frames in zip(*parts, strict=True))
    # Each record's lines come in line order, and each record takes one path: a stable sort by
    # idx alone gives (idx, line_number) order. Sorting on both keys cost 3% of the parse
    # (make bench-parse: 66,854 -> 64,792 instructions a record).
    return Parsed(
        orders=orders.sort("idx"),
        lines=lines.sort("idx", maintain_order=True),
        rejects=rejects.sort("idx"),
    )
