"""Output formats of ``query``, ``sql`` and ``audit``: JSON with exact decimals, CSV and an
aligned table. The HTTP API answers with the same JSON."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any


def _decimal_text(value: Decimal) -> str:
    """Plain notation without trailing zeros beyond cents: 1234.5 -> '1234.50'."""
    text = format(value.normalize(), "f")
    whole, _, fraction = text.partition(".")
    return f"{whole}.{fraction.ljust(2, '0')}"


def to_json(rows: Sequence[dict[str, Any]]) -> str:
    """A JSON array of objects; money stays an exact JSON number (never a binary float)."""

    def value(v: Any) -> str:
        if isinstance(v, Decimal):
            return _decimal_text(v)
        if isinstance(v, datetime | date):
            return json.dumps(v.isoformat())
        return json.dumps(v, ensure_ascii=False, default=str)

    objects = (
        "{" + ", ".join(f"{json.dumps(k)}: {value(v)}" for k, v in row.items()) + "}"
        for row in rows
    )
    return "[" + ",\n ".join(objects) + "]"


def to_csv(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow(
            "" if v is None else _decimal_text(v) if isinstance(v, Decimal) else v
            for v in row.values()
        )
    return out.getvalue().rstrip("\n")


def to_table(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> str:
    """An aligned table: text left, numbers right, NULL shown as (null)."""

    def cell(v: Any) -> str:
        if v is None:
            return "(null)"
        if isinstance(v, Decimal):
            return f"{v:,.2f}" if v == v.quantize(Decimal("0.01")) else f"{v.normalize():,f}"
        if isinstance(v, int):
            return f"{v:,}"
        return str(v)

    cells = [[cell(v) for v in row.values()] for row in rows]
    numeric = [any(isinstance(r[c], int | Decimal) for r in rows) for c in columns]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]

    def line(values: Sequence[str]) -> str:
        return "  ".join(
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        ).rstrip()

    body = [line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)]
    if not rows:
        body.append("(no rows)")
    return "\n".join(body)
