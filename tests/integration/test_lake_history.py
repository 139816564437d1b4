"""A lake made before history (sql/lake/001 alone: dim_user and dim_product tables with
placeholders, the dim_guard, fact_sales without currency) is migrated by the first member of
this version: reference rows become first versions, the guard goes, lines get their currency;
and a second member starting after it finds the work done."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer.warehouse import lake
from consumer.warehouse.lake import LakeWarehouse
from consumer.warehouse.sqlfiles import sql_dir

pytestmark = pytest.mark.integration


def test_an_old_lake_is_migrated_once(lake_catalog: str, tmp_path: Path) -> None:
    catalog, data = f"postgres:{lake_catalog}", str(tmp_path / "data")
    con = lake.connect(catalog, data, read_only=False)
    try:
        con.execute((sql_dir() / "lake" / "001_lake_schema.sql").read_text())
        con.execute("INSERT INTO dim_guard VALUES (3)")
        con.execute(
            "INSERT INTO dim_user VALUES ('u1', 'Ada', NULL, 'FR', NULL, false, '2025-01-01'),"
            " ('u9', NULL, NULL, NULL, NULL, true, '2025-01-01')"
        )
        con.execute(
            "INSERT INTO dim_order (order_id, user_id, amount, currency, created_at, line_count, "
            "kafka_topic, kafka_partition, kafka_offset, batch_id) VALUES "
            "('o1', 'u1', 3, 'USD', '2025-08-01 10:00', 1, 'orders', 0, 0, 1)"
        )
        con.execute("INSERT INTO fact_sales VALUES ('o1', 1, 'p1', 'u1', 2, 1.5, '2025-08-01')")
    finally:
        con.close()
    for member in ("first", "second"):
        LakeWarehouse(catalog, data, member=member).close()
    reader = lake.connect(catalog, None, read_only=True)
    try:
        assert reader.execute(
            "SELECT user_id, country, is_inferred FROM dim_user ORDER BY 1"
        ).fetchall() == [("u1", "FR", False)]
        assert reader.execute("SELECT order_id, currency FROM fact_sales").fetchall() == [
            ("o1", "USD")
        ]
        assert reader.execute("SELECT version FROM schema_version ORDER BY 1").fetchall() == [
            (1,), (2,), (3,)
        ]  # fmt: skip
        tables = {r[0] for r in reader.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
        assert "dim_guard" not in tables and "user_versions" in tables
    finally:
        reader.close()
