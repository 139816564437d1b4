"""Statements that ``orders-consumer sql`` must refuse, and a fingerprint of a warehouse to show
that nothing changed after them.

Each statement is written as an attacker (or a tired analyst) would: writes hidden behind
EXPLAIN ANALYZE, comments and case games, files written by COPY or EXPORT, state changed by
PRAGMA, SET or a table function, and SQL text smuggled past the parser by ``query()``.
``{out}`` is a path in the test's directory that must never be created.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

HOSTILE: tuple[str, ...] = (
    # writes behind EXPLAIN ANALYZE (the reported hole), in every spelling
    "EXPLAIN ANALYZE DELETE FROM processed_orders",
    "EXPLAIN ANALYZE UPDATE kafka_offsets SET next_offset = 0",
    "EXPLAIN ANALYZE COPY (SELECT 1) TO '{out}'",
    "explain analyse delete from processed_orders",
    "/* a comment */ EXPLAIN ANALYZE DELETE FROM processed_orders",
    "EXPLAIN -- a comment\n ANALYZE DELETE FROM processed_orders",
    "EXPLAIN (ANALYZE) DELETE FROM processed_orders",
    "EXPLAIN (FORMAT json, ANALYZE) DELETE FROM processed_orders",
    "EXPLAIN (ANALYZE, FORMAT json) SELECT * FROM processed_orders",
    "EXPLAIN DELETE FROM processed_orders",
    "EXPLAIN INSERT INTO processed_orders SELECT * FROM processed_orders",
    # DML
    "DELETE FROM processed_orders",
    "UPDATE kafka_offsets SET next_offset = 0",
    "INSERT INTO processed_orders SELECT * FROM processed_orders",
    "TRUNCATE processed_orders",
    "MERGE INTO dim_order USING dim_order AS s ON true WHEN MATCHED THEN DELETE",
    "INSERT OR REPLACE INTO kafka_offsets SELECT * FROM kafka_offsets",
    # DDL, temporary objects and macros included
    "DROP TABLE processed_orders",
    "ALTER TABLE dim_order RENAME TO gone",
    "CREATE TABLE x AS SELECT 1",
    "CREATE OR REPLACE TABLE processed_orders AS SELECT * FROM processed_orders LIMIT 0",
    "CREATE TEMP TABLE x AS SELECT 1",
    "CREATE TEMPORARY VIEW v AS SELECT 1",
    "CREATE MACRO m(a) AS a",
    "CREATE TEMP MACRO m(a) AS a",
    "CREATE SEQUENCE s",
    "CREATE TYPE mood AS ENUM ('happy')",
    "CREATE SECRET s (TYPE s3, KEY_ID 'k', SECRET 'v')",
    "COMMENT ON TABLE dim_order IS 'mine now'",
    "PIVOT dim_order ON currency USING count(*)",
    # files and other databases
    "COPY dim_order TO '{out}'",
    "COPY (SELECT 1) TO '{out}' (FORMAT parquet)",
    "COPY dim_order FROM '{out}'",
    "EXPORT DATABASE '{out}'",
    "IMPORT DATABASE '{out}'",
    "ATTACH '{out}' AS other",
    "DETACH other",
    "INSTALL httpfs",
    "LOAD httpfs",
    "UPDATE EXTENSIONS",
    # configuration and state
    "SET threads = 1",
    "SET enable_external_access = true",
    "SET VARIABLE x = 1",
    "RESET threads",
    "PRAGMA version",
    "PRAGMA force_checkpoint",
    "PRAGMA enable_profiling",
    "USE memory",
    "CALL checkpoint()",
    "CHECKPOINT",
    "FORCE CHECKPOINT",
    "VACUUM",
    "ANALYZE",
    # transaction control
    "BEGIN TRANSACTION",
    "COMMIT",
    "ROLLBACK",
    "ABORT",
    # table functions and scalars with side effects, and SQL text smuggled past the parser
    "SELECT * FROM checkpoint()",
    "SELECT * FROM force_checkpoint()",
    "FROM checkpoint()",
    "SELECT * FROM query('SELECT * FROM checkpoint()')",
    "SELECT * FROM Query('SELECT 1')",
    "SELECT nextval('s')",
    "SELECT setseed(0.5)",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM ducklake_expire_snapshots('lake', older_than => now())",
    "SELECT * FROM ducklake_merge_adjacent_files('lake')",
    "SELECT * FROM postgres_query('__ducklake_metadata_lake', 'DELETE FROM ducklake_snapshot')",
    # more than one statement
    "SELECT 1; DELETE FROM processed_orders",
    "DELETE FROM processed_orders; SELECT 1",
    "SELECT 1; SELECT 2",
)

# Reads that must keep answering, on every path.
READS: tuple[str, ...] = (
    "SELECT count(*) AS n FROM dim_order",
    "select count(*) as n from dim_order;",
    "WITH o AS (SELECT * FROM dim_order) SELECT count(*) FROM o",
    "FROM dim_order SELECT count(*)",
    "VALUES (1, 'a')",
    "TABLE dim_order",
    "DESCRIBE dim_order",
    "SHOW TABLES",
    "SUMMARIZE fact_sales",
    "EXPLAIN SELECT * FROM dim_order",
    "EXPLAIN (FORMAT json) SELECT * FROM dim_order",
    "(SELECT 1) UNION ALL (SELECT 2)",
    "SELECT * FROM query_table('dim_order') LIMIT 1",
)


def statements(out: Path) -> list[str]:
    return [s.replace("{out}", str(out)) for s in HOSTILE]


def fingerprint(con: Any) -> dict[str, Any]:
    """Every table, view, macro, sequence and type of the database, with a digest of each
    table's rows: equal fingerprints mean nothing was written."""
    tables = [
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "ORDER BY table_name"
        ).fetchall()
    ]
    found: dict[str, Any] = {
        "views": con.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY 1"
        ).fetchall(),
        "macros": con.execute(
            "SELECT DISTINCT function_name FROM duckdb_functions() "
            "WHERE function_type IN ('macro', 'table_macro') AND NOT internal ORDER BY 1"
        ).fetchall(),
        "sequences": con.execute("SELECT sequence_name FROM duckdb_sequences()").fetchall(),
        "types": con.execute(
            "SELECT type_name FROM duckdb_types() WHERE NOT internal ORDER BY 1"
        ).fetchall(),
    }
    for table in tables:
        rows = con.execute(f'SELECT CAST(t AS VARCHAR) FROM "{table}" AS t').fetchall()
        digest = hashlib.sha256("\n".join(sorted(r[0] for r in rows)).encode()).hexdigest()
        found[table] = (len(rows), digest)
    return found


def files_under(directory: Path) -> set[str]:
    """Every file and directory below ``directory`` (relative), to show that none appeared."""
    return {
        os.path.relpath(os.path.join(root, name), directory)
        for root, dirs, files in os.walk(directory)
        for name in [*dirs, *files]
    }
