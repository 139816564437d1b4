"""Dedup cost as ``processed_orders`` grows: the time to write one realistic batch (lookup,
classification and every insert in one transaction) at each size of the idempotency state.

The state is grown with random (MD5-shaped) order ids, the unfavourable case: nothing about
their order helps the lookup skip data."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from consumer.core.plan import build_batch
from consumer.core.records import Records
from consumer.warehouse.duckdb_file import DuckDBWarehouse
from producer_sim.config import Settings as SimSettings
from producer_sim.events import generate_records

BATCH = 10_000


@dataclass(frozen=True)
class DedupPoint:
    processed_orders: int
    write_ms_median: float


def _batches(seed: int) -> Iterator[Records]:
    stream = generate_records(SimSettings(seed=seed, orders=0))
    offset = 0
    while True:
        records = Records()
        for _ in range(BATCH):
            record = next(stream)
            records.values.append(record.value)
            records.keys.append(record.key)
            records.partitions.append(0)
            records.offsets.append(offset)
            offset += 1
        yield records


def measure(sizes: Sequence[int], repeats: int = 3, seed: int = 7) -> list[DedupPoint]:
    """Grow the state with synthetic keys to each size, then time ``repeats`` real batches."""
    points = []
    batches = _batches(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "dedup.duckdb"
        warehouse = DuckDBWarehouse(path)
        con = warehouse.cursor()
        batch_id = 0
        for size in sorted(sizes):
            row = con.execute("SELECT count(*) FROM processed_orders").fetchone()
            current = int(row[0]) if row else 0
            if size > current:
                con.execute(
                    "INSERT INTO processed_orders SELECT k, md5_number_lower(k), "
                    "(hash(k) >> 1)::BIGINT, 0 FROM (SELECT md5(i::VARCHAR) AS k "
                    "FROM range($start, $stop) AS t(i))",
                    {"start": current, "stop": size},
                )
                con.execute("CHECKPOINT")
            timings = []
            for _ in range(repeats):
                batch_id += 1
                batch = build_batch(batch_id, "bench", next(batches))
                started = time.perf_counter()
                warehouse.write_batch(batch, lambda _rejects: None, batch_id)
                timings.append((time.perf_counter() - started) * 1000)
            row = con.execute("SELECT count(*) FROM processed_orders").fetchone()
            points.append(DedupPoint(int(row[0]) if row else 0, statistics.median(timings)))
        con.close()
        warehouse.close()
    return points
