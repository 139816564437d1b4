"""A DuckDB connection on a DuckLake warehouse (the lake attached as the default database),
and one transaction on it. Used by the members (``lake``) and the readers (``commands.reading``).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

import duckdb

from consumer.errors import ConfigError
from consumer.warehouse import objectstore
from consumer.warehouse.extensions import (
    attach_lake,
    lake_error,
    load_extensions,
    set_commit_retries,
)
from consumer.warehouse.objectstore import S3Settings

ALIAS = "lake"
# Snapshot-id races of 3 writers: 2 of 450 commits exhausted DuckLake's default 10 retries,
# none at 100 (docs/ducklake.md).
COMMIT_RETRIES = 100
# Data paths this process has reached: the start-up probe runs once per path, so a reconnect
# during an outage of the store is retried instead of being taken for bad configuration.
_REACHED: set[str] = set()


def s3_secret(con: duckdb.DuckDBPyConnection, settings: S3Settings) -> None:
    """The S3 secret of the environment's settings, on a connection with httpfs loaded from
    its wheel (``CREATE SECRET TYPE s3`` without it makes DuckDB try to install httpfs)."""
    load_extensions(con, remote=True)
    try:
        con.execute(settings.secret_sql())
    except duckdb.Error as exc:  # the statement holds the secret: never show DuckDB's text
        raise ConfigError(f"cannot create the S3 secret ({type(exc).__name__})") from None


def connect(catalog: str, data_path: str | None, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake attached as the default database. Any failure is a
    one-line ``PipelineError``."""
    settings = S3Settings.from_env()
    con = duckdb.connect(config={"autoinstall_known_extensions": False})
    try:
        con.execute("SET enable_progress_bar = false")
        # A writer's local data path needs no S3; a reader learns the data path at the attach.
        if objectstore.is_remote(data_path) or (settings.configured and data_path is None):
            s3_secret(con, settings)
        # Before the attach, which writes a new lake's data path into its catalog for good.
        check_data_path(con, settings, data_path)
        attach_lake(con, catalog, data_path, alias=ALIAS, read_only=read_only)
        con.execute(f"USE {ALIAS}")
        set_commit_retries(con, COMMIT_RETRIES, wait_ms=50)
        if data_path is None:
            check_data_path(con, settings, data_path_of(con))
    except duckdb.Error as exc:
        con.close()
        raise lake_error(exc, "cannot open the lake") from exc
    except BaseException:
        con.close()
        raise
    return con


def data_path_of(con: duckdb.DuckDBPyConnection) -> str | None:
    row = con.execute(
        f"SELECT value FROM ducklake_options('{ALIAS}') WHERE option_name = 'data_path'"
    ).fetchone()
    return str(row[0]) if row and row[0] else None


def check_data_path(con: duckdb.DuckDBPyConnection, settings: S3Settings, path: str | None) -> None:
    """Once per process and data path on S3: one listing under it, so that a wrong endpoint,
    keys refused, a missing bucket or TLS against a plain-HTTP store is one line and exit 2 at
    start (not a failed batch later)."""
    if path is None or not objectstore.is_remote(path) or path.rstrip("/") in _REACHED:
        return
    load_extensions(con, remote=True)  # (loaded already, unless the path came from the catalog)
    try:
        con.execute("SELECT count(*) FROM glob(?)", [objectstore.probe_pattern(path)]).fetchall()
    except duckdb.Error as exc:
        text = str(exc)
        raise ConfigError(
            f"cannot use the data path {path}: {objectstore.hint(text, settings)} "
            f"({objectstore.brief(text)})"
        ) from exc
    _REACHED.add(path.rstrip("/"))


@contextmanager
def reader(catalog: str, data_path: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection on the lake, closed at the end; a DuckDB error raised while it
    is used (a Parquet file the store refuses, say) becomes a one-line ``PipelineError``."""
    con = connect(catalog, data_path, read_only=True)
    try:
        yield con
    except duckdb.Error as exc:
        raise lake_error(exc, "cannot read the lake") from exc
    finally:
        con.close()


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
