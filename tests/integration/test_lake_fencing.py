"""The lake's ledgers (consumer/warehouse/ledgers.py), driven step by step: two members, two
``LakeWarehouse`` instances on one real PostgreSQL catalog and one real data directory, with
batches written at chosen instants instead of whenever the timing of a running group lets them.

- Fencing: a member whose partition another member has claimed since writes nothing more
  (``FencedError``, no row anywhere), whether its batch starts after the claim or was already
  open when the claim committed.
- Serialisation: two members load one ``order_id`` that arrived on two partitions, both
  transactions open at once; whichever commits second conflicts, and its retry finds the order
  loaded: one row remains.

Each member is held inside its own transaction by a test-only ``Faults`` whose
``statement:<name>`` point blocks until the test lets it go.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from consumer.core.plan import Batch, BatchResult, build_batch
from consumer.core.records import Records
from consumer.errors import FencedError
from consumer.faults import NO_FAULTS, Faults
from consumer.warehouse.extensions import CommitConflictError
from consumer.warehouse.lake import LakeWarehouse
from tests.lakeharness import Lake

pytestmark = pytest.mark.integration

TOPIC = "orders"
TOPIC_ID = "topic-id-1"
WAIT = 120.0  # seconds a step may take on a loaded machine before the test gives up
TABLES = (
    "dim_user",
    "dim_product",
    "dim_order",
    "fact_sales",
    "processed_orders",
    "rejected_events",
    "dropped_duplicates",
    "skipped_offsets",
    "load_batches",
    "user_versions",
    "product_versions",
    "fx_rate_versions",
)


class Gate(Faults):
    """Holds the first write that reaches ``statement:<name>`` until ``open`` is called; later
    writes (the retry) pass."""

    def __init__(self, statement: str) -> None:
        super().__init__()
        self.point = f"statement:{statement}"
        self.reached = threading.Event()
        self._open = threading.Event()
        self._armed = True

    def hit(self, point: str, batch_number: int) -> None:
        if point == self.point and self._armed:
            self._armed = False
            self.reached.set()
            assert self._open.wait(WAIT), "the test never let the write go on"

    def open(self) -> None:
        self._open.set()


def order(order_id: str, *lines: tuple[str, int, str], **fields: Any) -> bytes:
    doc: dict[str, Any] = {"order_id": order_id, **fields}
    if lines:
        doc["items"] = [{"sku": s, "quantity": q, "price": float(p)} for s, q, p in lines]
    return json.dumps(doc).encode()


def batch_of(
    warehouse: LakeWarehouse, partition: int, entries: list[tuple[bytes | None, bytes | None]]
) -> Batch:
    """Records at offsets 0.. of one partition, as (key, value)."""
    n = len(entries)
    records = Records(
        [value for _, value in entries],
        [key for key, _ in entries],
        [partition] * n,
        list(range(n)),
    )
    return build_batch(
        warehouse.next_batch_id(),
        TOPIC,
        records,
        topic_id=TOPIC_ID,
        first_offsets={partition: 0},
    )


@pytest.fixture
def lake(lake_catalog: str, tmp_path: Path) -> Lake:
    return Lake(lake_catalog, tmp_path / "lake")


@pytest.fixture
def members(lake: Lake) -> Iterator[Callable[..., LakeWarehouse]]:
    """Make members of the lake (closed at the end)."""
    made: list[LakeWarehouse] = []

    def member(name: str, faults: Faults = NO_FAULTS) -> LakeWarehouse:
        warehouse = LakeWarehouse(lake.catalog, str(lake.data_path), member=name, faults=faults)
        made.append(warehouse)
        return warehouse

    yield member
    for warehouse in made:
        warehouse.close()


def counts(lake: Lake) -> dict[str, int]:
    with lake.reader() as rows:
        return {name: rows(f"SELECT count(*) FROM {name}")[0][0] for name in TABLES}


def ledger_row(lake: Lake, partition: int) -> tuple[Any, ...]:
    """(epoch, owner, next_offset) of the partition's ledger."""
    with lake.reader() as rows:
        (name,) = [
            r[0]
            for r in rows("SELECT table_name FROM duckdb_tables() WHERE table_name LIKE 'ledger_%'")
            if r[0].endswith(f"_p{partition}")
        ]
        (row,) = rows(f'SELECT epoch, owner, next_offset FROM "{name}"')
    return tuple(row)


def dead_letters(published: list[pl.DataFrame]) -> Callable[[pl.DataFrame], None]:
    """The ``before_commit`` of a batch: its rejects, kept to see whether any were sent."""
    return published.append


# A batch that would write every table a batch of orders writes: orders and their lines, an
# identical re-send, and a reject.
MIXED = [
    (b"o-1", order("o-1", ("p-1", 2, "10.5"), user_id="u-1", amount=21.0)),
    (b"o-2", order("o-2", ("p-2", 1, "3.25"), user_id="u-2", amount=3.25)),
    (b"o-1", order("o-1", ("p-1", 2, "10.5"), user_id="u-1", amount=21.0)),
    (b"bad", b"not json"),
]


def test_a_batch_of_a_stale_epoch_is_fenced_and_leaves_no_row(
    lake: Lake, members: Callable[..., LakeWarehouse]
) -> None:
    """A claims partition 0, then B claims it: A's batch raises FencedError, and no table holds
    a row of it; B, the owner, writes the same records."""
    a, b = members("member-a"), members("member-b")
    a.claim(TOPIC, [0], 1)
    b.claim(TOPIC, [0], 1)
    assert ledger_row(lake, 0) == (2, "member-b", None)
    published: list[pl.DataFrame] = []
    with pytest.raises(FencedError, match="partition 0 belongs to another member"):
        a.write_batch(batch_of(a, 0, MIXED), dead_letters(published), 1)
    assert counts(lake) == dict.fromkeys(TABLES, 0)
    assert ledger_row(lake, 0) == (2, "member-b", None)
    assert published == [], "dead letters of a fenced batch"
    # The same records, from the partition's owner: written (the batch itself is sound).
    result = b.write_batch(batch_of(b, 0, MIXED), dead_letters(published), 1)
    assert (result.loaded, result.duplicates, result.rejected) == (2, 1, 1)
    assert ledger_row(lake, 0) == (2, "member-b", 4)


def test_a_batch_open_when_another_member_claims_its_partition_commits_nothing(
    lake: Lake, members: Callable[..., LakeWarehouse]
) -> None:
    """A's transaction has written its rows (held before the ledger's update) when B claims
    partition 0. A's commit fails, and so does its retry, as the writer would retry it:
    nothing of A's batch remains."""
    gate = Gate("load_batches")
    a, b = members("member-a", gate), members("member-b")
    a.claim(TOPIC, [0], 1)
    batch = batch_of(a, 0, MIXED)
    published: list[pl.DataFrame] = []
    with ThreadPoolExecutor(1) as pool:
        first: Future[BatchResult] = pool.submit(a.write_batch, batch, dead_letters(published), 1)
        assert gate.reached.wait(WAIT), "A never reached its hold"
        b.claim(TOPIC, [0], 1)
        gate.open()
        with pytest.raises((CommitConflictError, FencedError)):
            first.result(timeout=WAIT)
    a.reconnect()
    with pytest.raises(FencedError):
        a.write_batch(batch, dead_letters(published), 1)
    assert counts(lake) == dict.fromkeys(TABLES, 0)
    assert ledger_row(lake, 0) == (2, "member-b", None)


# One order, the same content on both partitions.
ONE_ORDER = order("o-both", ("p-1", 1, "5.0"), user_id="u-1", amount=5.0, currency="EUR")


@pytest.mark.parametrize("first", ["home partition", "foreign partition"])
def test_one_order_on_two_partitions_committed_in_lockstep_is_loaded_once(
    first: str, lake: Lake, members: Callable[..., LakeWarehouse]
) -> None:
    """A owns partition 0, where the order came keyed by its id; B owns partition 1, where a
    copy came under another key. Both batches look the order up and insert it before either
    commits; one commits, the other's commit conflicts, and its retry finds the order loaded
    and drops its copy as a duplicate: one dim_order row and one processed_orders row."""
    gates = {"a": Gate("processed_orders"), "b": Gate("processed_orders")}
    a, b = members("member-a", gates["a"]), members("member-b", gates["b"])
    a.claim(TOPIC, [0], 2)
    b.claim(TOPIC, [1], 2)
    batches = {
        "a": batch_of(a, 0, [(b"o-both", ONE_ORDER)]),
        "b": batch_of(b, 1, [(b"another-key", ONE_ORDER)]),
    }
    warehouses = {"a": a, "b": b}
    published: list[pl.DataFrame] = []
    with ThreadPoolExecutor(2) as pool:
        writes = {
            name: pool.submit(w.write_batch, batches[name], dead_letters(published), 1)
            for name, w in warehouses.items()
        }
        for name, gate in gates.items():
            assert gate.reached.wait(WAIT), f"{name} never reached its hold"
        early, late = ("a", "b") if first == "home partition" else ("b", "a")
        gates[early].open()
        assert writes[early].result(timeout=WAIT).loaded == 1
        gates[late].open()
        with pytest.raises(CommitConflictError):
            writes[late].result(timeout=WAIT)
    warehouses[late].reconnect()
    retried = warehouses[late].write_batch(batches[late], dead_letters(published), 1)
    assert (retried.loaded, retried.duplicates) == (0, 1)
    with lake.reader() as rows:
        assert rows("SELECT order_id FROM dim_order") == [("o-both",)]
        assert rows("SELECT order_id FROM processed_orders") == [("o-both",)]
        assert rows("SELECT order_id FROM dropped_duplicates") == [("o-both",)]
