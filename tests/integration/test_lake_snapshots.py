"""Lake snapshots say what they hold (issue 26): each batch's snapshot carries, in DuckLake's own
commit fields, its member, its batch and the offsets of every topic it read; read back with
plain DuckDB (``ducklake_snapshots``), the ranges of a partition follow each other without gap
or overlap, up to the ledger, and every row a batch wrote lies inside its own ranges."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from consumer.core.plan import build_batch
from consumer.warehouse import lake
from consumer.warehouse.lake import LakeWarehouse
from tests.unit.warehouse.batchkit import ORDERS, TOPIC, order, records

pytestmark = pytest.mark.integration


def test_each_snapshot_names_its_member_batch_and_offset_ranges(
    lake_catalog: str, tmp_path: Path
) -> None:
    catalog = f"postgres:{lake_catalog}"
    member = LakeWarehouse(catalog, str(tmp_path / "data"), member="member-7")
    member.claim(TOPIC, [0, 1], 2)
    # Partition 0: offsets 0-2 then 3-5 (a re-send, a reject); partition 1: 10-11.
    batches = [
        (1, records(ORDERS, partition=0, first=0)),
        (2, records([ORDERS[0], b"{", order("o-9", "u-1", [("p-1", 1, "1.00")])], 0, 3)),
        (3, records([order("o-7", None, []), order("o-8", "u-3", [])], partition=1, first=10)),
    ]
    for batch_id, recs in batches:
        member.write_batch(build_batch(batch_id, TOPIC, recs), lambda _r: None, batch_id)
    member.close()

    con = lake.connect(catalog, None, read_only=True)
    try:
        snapshots = con.execute(
            "SELECT author, commit_message, commit_extra_info FROM ducklake_snapshots('lake') "
            "WHERE commit_extra_info IS NOT NULL ORDER BY snapshot_id"
        ).fetchall()
        places = con.execute(
            "SELECT batch_id, kafka_partition, kafka_offset FROM dim_order UNION ALL "
            'SELECT batch_id, "partition", "offset" FROM dropped_duplicates UNION ALL '
            'SELECT batch_id, "partition", "offset" FROM rejected_events'
        ).fetchall()
    finally:
        con.close()
    assert [(a, m) for a, m, _ in snapshots] == [
        ("member-7", "batch 1: 3 records"),
        ("member-7", "batch 2: 3 records"),
        ("member-7", "batch 3: 2 records"),
    ]
    infos = [json.loads(info) for _, _, info in snapshots]
    assert [i["offsets"] for i in infos] == [
        {TOPIC: {"0": [0, 3]}},
        {TOPIC: {"0": [3, 6]}},
        {TOPIC: {"1": [10, 12]}},
    ]
    ranges = {i["batch_id"]: i["offsets"][TOPIC] for i in infos}
    assert len(places) == 8
    for batch_id, partition, offset in places:
        low, high = ranges[batch_id][str(partition)]
        assert low <= offset < high, (batch_id, partition, offset)
