"""``orders-consumer sql`` on a DuckLake warehouse (real PostgreSQL catalog, real Parquet
files): every hostile statement is exit 2 with one line, the lake's tables and snapshots are
unchanged and no file appears; reads still answer."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.cli import main
from consumer.core.plan import build_batch
from consumer.warehouse import lake
from consumer.warehouse.lake import LakeWarehouse
from tests.hostile_sql import READS, files_under, fingerprint, statements
from tests.unit.warehouse.batchkit import ORDERS, TOPIC, records

pytestmark = pytest.mark.integration


def sql(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(["sql", *argv])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def lake_state(catalog: str) -> dict[str, object]:
    con = lake.connect(catalog, None, read_only=True)
    try:
        state = fingerprint(con)
        state["snapshots"] = con.execute(
            "SELECT count(*) FROM ducklake_snapshots('lake')"
        ).fetchall()
        return state
    finally:
        con.close()


def test_hostile_statements_change_nothing_in_a_lake(
    lake_catalog: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    catalog, data = f"postgres:{lake_catalog}", tmp_path / "data"
    member = LakeWarehouse(catalog, str(data))
    member.claim(TOPIC, [0], 1)
    member.write_batch(build_batch(1, TOPIC, records(ORDERS)), lambda _r: None, 1)
    member.close()
    before, before_files = lake_state(catalog), files_under(tmp_path)
    assert before["dim_order"][0] == len(ORDERS)  # type: ignore[index]
    for statement in statements(tmp_path / "out"):
        code, stdout, stderr = sql([statement, "--catalog", catalog], capsys)
        assert (code, stdout, stderr.count("\n")) == (2, "", 1), (statement, stderr)
    assert lake_state(catalog) == before
    assert files_under(tmp_path) == before_files
    for statement in READS:
        code, stdout, stderr = sql([statement, "--catalog", catalog, "--format", "csv"], capsys)
        assert code == 0 and stdout, (statement, stderr)
    code, stdout, _ = sql(
        ["SELECT count(*) AS n FROM dim_order", "--catalog", catalog, "--format", "csv"], capsys
    )
    assert stdout.splitlines() == ["n", str(len(ORDERS))]
