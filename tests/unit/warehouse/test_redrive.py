"""A redrive beside a consumer's batch on one DuckDB file (issue 26): the two may load the same
order_id, so a redrive chunk and a batch in flight must not both commit; and a dry run writes
nothing. Real DuckDB files, no broker."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from consumer.core import rules
from consumer.core.plan import build_batch
from consumer.errors import TransientError
from consumer.faults import Faults
from consumer.warehouse.duckdb_file import DuckDBWarehouse
from consumer.warehouse.redrive import Selection
from tests.unit.warehouse.batchkit import TOPIC, records

LATE = json.dumps({"order_id": "o-late", "created_at": "2025-08-02", "currency": "USD",
                   "items": [{"sku": "p-1", "quantity": 1, "price": 5}]}).encode()  # fmt: skip
VALID = LATE.replace(b'"2025-08-02"', b'"2025-08-02T00:00:00Z"')


class HoldAtLedger(Faults):
    """Holds the batch inside its transaction, its ledger rows written, until released."""

    def __init__(self) -> None:
        super().__init__()
        self.holding, self.release = threading.Event(), threading.Event()

    def hit(self, point: str, batch_number: int) -> None:
        if point == "statement:kafka_offsets" and batch_number == 2:
            self.holding.set()
            assert self.release.wait(30)


@pytest.fixture(autouse=True)
def relaxed() -> object:
    """The rule a later release relaxed: a date alone is a created_at (midnight UTC)."""
    yield rules.relax(["date_only_created_at"])
    rules.reset()


def test_a_redrive_and_a_batch_loading_one_order_do_not_both_commit(tmp_path: Path) -> None:
    faults = HoldAtLedger()
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb", faults=faults)
    rules.reset()  # the consumer's batch parses by the old rules: o-late is rejected
    warehouse.write_batch(build_batch(1, TOPIC, records([LATE])), lambda _r: None, 1)
    rules.relax(["date_only_created_at"])
    batch = build_batch(2, TOPIC, records([VALID], first=1))  # o-late again, valid by any rule
    writer = threading.Thread(
        target=warehouse.write_batch, args=(batch, lambda _r: None, 2), daemon=True
    )
    writer.start()
    assert faults.holding.wait(30)
    try:
        # The batch has loaded o-late and rewritten the ledger, not committed: the redrive,
        # which would load o-late too, conflicts with it instead of committing a second copy.
        with pytest.raises(TransientError):
            warehouse.redrive_chunk(Selection(TOPIC), None, 10, dry_run=False)
    finally:
        faults.release.set()
        writer.join(30)
    retried = warehouse.redrive_chunk(Selection(TOPIC), None, 10, dry_run=False)
    assert (retried.loaded, dict(retried.rejected)) == (0, {"conflicting_duplicate": 1})
    cursor = warehouse.cursor()
    assert cursor.execute("SELECT order_id, kafka_offset FROM dim_order").fetchall() == [
        ("o-late", 1)
    ]
    assert cursor.execute("SELECT count(*) FROM processed_orders").fetchall() == [(1,)]
    warehouse.close()


def test_a_dry_run_counts_and_writes_nothing(tmp_path: Path) -> None:
    warehouse = DuckDBWarehouse(tmp_path / "w.duckdb")
    rules.reset()
    warehouse.write_batch(build_batch(1, TOPIC, records([LATE, LATE])), lambda _r: None, 1)
    rules.relax(["date_only_created_at"])
    counted = warehouse.redrive_chunk(Selection(TOPIC), None, 10, dry_run=True)
    assert (counted.examined, counted.loaded, counted.duplicate) == (2, 1, 1)
    cursor = warehouse.cursor()
    assert cursor.execute("SELECT count(*) FROM dim_order").fetchall() == [(0,)]
    assert cursor.execute("SELECT count(*) FROM rejected_events").fetchall() == [(2,)]
    done = warehouse.redrive_chunk(Selection(TOPIC, reasons=("invalid_json",)), None, 10,
                                   dry_run=False)  # fmt: skip
    assert done.examined == 0  # no reject of that reason
    warehouse.close()
