"""A DuckDB connection on a DuckLake warehouse (the lake attached as the default database),
and one transaction on it. Used by the members (``lake``) and the readers (``commands.reading``).
"""

from __future__ import annotations

import os
import time
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


# DuckLake finds a conflict by reading the changes committed since the transaction's snapshot,
# and expiring snapshots deletes those records: a transaction older than the expiry horizon
# could commit over a change it never saw (measured on 1.5.5: a frozen member's stale ledger
# UPDATE committed after an expiry). A transaction open longer than this is redone instead;
# maintenance never expires snapshots younger than several times this (maintenance.py).
MAX_TRANSACTION_SECONDS = 120.0


class StaleTransactionError(Exception):
    """The transaction stayed open too long to be committed safely; redo it."""


@contextmanager
def transaction(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """BEGIN ... COMMIT, rolled back on any exception (a failed COMMIT leaves none); refused
    before COMMIT when it has been open for more than MAX_TRANSACTION_SECONDS."""
    began = time.monotonic()
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        open_for = time.monotonic() - began
        if open_for > MAX_TRANSACTION_SECONDS:
            raise StaleTransactionError(
                f"the transaction was open for {open_for:.0f}s (a frozen process?); redone on a "
                "fresh snapshot rather than committed"
            )
        con.execute("COMMIT")
    except BaseException:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
