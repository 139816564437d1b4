"""Hand-written orders with totals worked out by hand, written to a real DuckDB file through
``build_batch`` and ``write_batch``; and a second process that holds a database's lock."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl

from consumer.core.plan import BatchResult, build_batch
from consumer.core.records import Records
from consumer.core.refbatch import reference_batch
from consumer.warehouse.duckdb_file import DuckDBWarehouse

TOPIC = "orders"


def order(
    order_id: str, user_id: str | None, lines: list[tuple[str, int, str]], **extra: Any
) -> bytes:
    """One order event; ``lines`` are (sku, quantity, price as decimal text)."""
    items = [{"sku": sku, "quantity": qty, "price": float(price)} for sku, qty, price in lines]
    event: dict[str, Any] = {
        "order_id": order_id,
        "user_id": user_id,
        "amount": float(sum(Decimal(p) * q for _, q, p in lines)),
        "currency": "USD",
        "created_at": "2025-08-20T15:23:10Z",
        "items": items,
        **extra,
    }
    return json.dumps(event).encode()


# Totals by hand: u-1 buys 2 x 10.50 + 4 x 3.25 = 34.00; u-2 buys 3.25 + 10.50 = 13.75.
# p-2 sells 5 units, p-1 sells 3. Channels: web 21.00, app 13.75, none 13.00.
ORDERS: list[bytes | None] = [
    order("o-1", "u-1", [("p-1", 2, "10.50")], metadata={"source": "web"}),
    order("o-2", "u-2", [("p-2", 1, "3.25"), ("p-1", 1, "10.50")], metadata={"source": "app"}),
    order("o-3", "u-1", [("p-2", 4, "3.25")]),
]


def records(values: Sequence[bytes | None], partition: int = 0, first: int = 0) -> Records:
    """Consecutive records of one partition, keyed by nothing."""
    n = len(values)
    return Records(list(values), [None] * n, [partition] * n, list(range(first, first + n)))


def write(
    warehouse: DuckDBWarehouse,
    values: Sequence[bytes | None],
    batch_id: int = 1,
    *,
    partition: int = 0,
    first: int = 0,
) -> BatchResult:
    """Write one batch; the rejects handed to ``before_commit`` are not published anywhere."""

    def before_commit(_rejects: pl.DataFrame) -> None:
        pass

    batch = build_batch(batch_id, TOPIC, records(values, partition, first))
    return warehouse.write_batch(batch, before_commit, batch_id)


def write_files(
    warehouse: DuckDBWarehouse, files: list[tuple[str, str, pl.DataFrame]], batch_id: int
) -> BatchResult:
    """One batch of no records that writes the rows of reference files (kind, name, frame)."""
    batch = build_batch(batch_id, TOPIC, records([]), reference=reference_batch([], files))
    return warehouse.write_batch(batch, lambda _rejects: None, batch_id)


def warehouse_with_orders(path: Path) -> Path:
    """A closed DuckDB file holding ``ORDERS``."""
    warehouse = DuckDBWarehouse(path)
    write(warehouse, ORDERS)
    warehouse.close()
    return path


HOLDER = """
import sys, duckdb
con = duckdb.connect(sys.argv[1])
print("ready", flush=True)
sys.stdin.read()
"""


@contextmanager
def held_by_another_process(path: Path) -> Iterator[int]:
    """Another process holds ``path`` open read-write (DuckDB's file lock); yields its PID."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait(timeout=30)
