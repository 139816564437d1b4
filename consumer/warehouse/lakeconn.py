"""A DuckDB connection on a DuckLake warehouse (the lake attached as the default database),
and one transaction on it. Used by the members (``lake``) and the readers (``runtime.reading``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import duckdb

from consumer.warehouse.extensions import attach_lake, set_commit_retries

ALIAS = "lake"
# Snapshot-id races of 3 writers: 2 of 450 commits exhausted DuckLake's default 10 retries,
# none at 100 (docs/ducklake.md).
COMMIT_RETRIES = 100


def s3_secret(con: duckdb.DuckDBPyConnection) -> None:
    """S3 credentials and endpoint from the environment (never from flags), for s3:// data."""
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if not (key and secret):
        return
    endpoint = os.environ.get("ORDERS_S3_ENDPOINT")
    parts = [
        "TYPE s3",
        f"KEY_ID '{key}'",
        f"SECRET '{secret}'",
        f"REGION '{os.environ.get('AWS_REGION', 'us-east-1')}'",
        f"URL_STYLE '{os.environ.get('ORDERS_S3_URL_STYLE', 'vhost' if not endpoint else 'path')}'",
        f"USE_SSL {os.environ.get('ORDERS_S3_USE_SSL', 'true').lower() in ('1', 'true', 'yes')}",
    ]
    if endpoint:
        parts.append(f"ENDPOINT '{endpoint}'")
    con.execute(f"CREATE OR REPLACE SECRET lake_s3 ({', '.join(parts)})")


def connect(catalog: str, data_path: str | None, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake attached as the default database."""
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    try:
        con.execute("SET enable_progress_bar = false")
        s3_secret(con)
        attach_lake(con, catalog, data_path, alias=ALIAS, read_only=read_only)
        con.execute(f"USE {ALIAS}")
        set_commit_retries(con, COMMIT_RETRIES, wait_ms=50)
    except BaseException:
        con.close()
        raise
    return con


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN ... COMMIT, rolled back on any exception (a failed COMMIT leaves none)."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
