"""The lake's schema (sql/lake/): the scripts that have not run yet, once each and in order,
and the views over the append-only tables (sql/views/), replaced only when their text changed.
Members starting together race to run them; all but one conflict at COMMIT and try again."""

from __future__ import annotations

import hashlib

import duckdb

from consumer.warehouse.sqlfiles import read_script, sql_dir
from consumer.warehouse.statements import utc_now as _now

Connection = duckdb.DuckDBPyConnection


def migrate(con: Connection) -> None:
    """The lake's scripts (sql/lake/) that have not run yet, in order, and the views (replaced
    only when their text changed: a DDL commit conflicts with the other members')."""
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL, "
        "applied_at TIMESTAMP NOT NULL)"
    )
    applied = {row[0] for row in con.execute("SELECT version FROM schema_version").fetchall()}
    for script in sorted((sql_dir() / "lake").glob("[0-9][0-9][0-9]_*.sql")):
        version = int(script.name[:3])
        if version not in applied:
            con.execute(read_script(script))
            con.execute("INSERT INTO schema_version VALUES (?, ?)", [version, _now()])
    views = (sql_dir() / "views" / "history.sql").read_text()
    stamp = hashlib.sha256(views.encode()).hexdigest()[:16]
    con.execute("CREATE TABLE IF NOT EXISTS lake_meta (key VARCHAR NOT NULL, value VARCHAR)")
    if con.execute("SELECT value FROM lake_meta WHERE key = 'views'").fetchall() != [(stamp,)]:
        con.execute(views)
        con.execute("DELETE FROM lake_meta WHERE key = 'views'")
        con.execute("INSERT INTO lake_meta VALUES ('views', ?)", [stamp])
