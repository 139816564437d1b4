"""The lake extensions load from their wheels, signed only, and attach errors are one clear line."""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import pytest

from consumer.errors import ConfigError, DatabaseError, PipelineError
from consumer.warehouse.extensions import (
    POSTGRES,
    CatalogUnavailableError,
    CommitConflictError,
    WheelExtension,
    attach_lake,
    lake_error,
    load_extension,
    load_extensions,
)
from tools.localkafka import free_port


def loaded(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()
    return {row[0] for row in rows}


def fake_wheel(root: Path, package: str, version: str, payload: bytes) -> WheelExtension:
    """A package laid out like a duckdb-extension wheel, holding the given binary."""
    directory = root / package / "extensions" / f"v{version}"
    directory.mkdir(parents=True)
    (root / package / "__init__.py").write_text("")
    (directory / "postgres.duckdb_extension").write_bytes(payload)
    return WheelExtension("postgres_scanner", package, "postgres")


def test_ducklake_and_postgres_scanner_load_under_their_own_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A fresh connection gets ducklake and postgres_scanner (the renamed wheel file) loaded."""
    monkeypatch.setenv("ORDERS_PIPELINE_CACHE", str(tmp_path))
    con = duckdb.connect()
    load_extensions(con)
    assert {"ducklake", "postgres_scanner"} <= loaded(con)
    assert "httpfs" not in loaded(con)
    load_extensions(con, remote=True)
    assert "httpfs" in loaded(con)


def test_a_connection_allowing_unsigned_extensions_is_refused() -> None:
    """Signature checks stay on: a connection configured to allow unsigned code is refused."""
    con = duckdb.connect(config={"allow_unsigned_extensions": True})
    with pytest.raises(ConfigError, match="unsigned"):
        load_extensions(con)
    assert "ducklake" not in loaded(con)


def test_a_tampered_binary_is_refused_by_its_signature(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One flipped byte in the extension binary makes the LOAD fail: the signature is checked."""
    data = bytearray(POSTGRES.wheel_file().read_bytes())
    data[len(data) // 2] ^= 0xFF
    ext = fake_wheel(tmp_path / "site", "tampered_ext", duckdb.__version__, bytes(data))
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setenv("ORDERS_PIPELINE_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="signature"):
        load_extension(duckdb.connect(), ext)


def test_a_wheel_for_another_duckdb_release_is_a_config_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An extension wheel built for another DuckDB names both versions and the pin to install."""
    ext = fake_wheel(tmp_path, "old_ext", "1.0.0", b"x")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match=r"carries v1\.0\.0 but duckdb is") as info:
        ext.wheel_file()
    assert f"old-ext=={duckdb.__version__}" in str(info.value)


def test_a_missing_wheel_is_a_config_error_naming_it() -> None:
    """An extension whose wheel is not installed tells which distribution to install."""
    assert "no_such_ext_pkg" not in sys.modules
    with pytest.raises(ConfigError, match="no-such-ext-pkg=="):
        WheelExtension("x", "no_such_ext_pkg", "x").wheel_file()


@pytest.mark.parametrize("catalog", ["duckdb:lake.db", "host=127.0.0.1", "postgres:", "postgres: "])
def test_a_catalog_not_in_the_contract_form_is_a_config_error(catalog: str) -> None:
    """--catalog must be postgres:CONNINFO; anything else exits 2 before any connection."""
    with pytest.raises(ConfigError, match="postgres:CONNINFO"):
        attach_lake(duckdb.connect(), catalog, "/tmp/unused")


def test_a_pinned_snapshot_for_a_writer_is_refused() -> None:
    """A snapshot version only makes sense read-only."""
    with pytest.raises(ConfigError, match="read-only"):
        attach_lake(duckdb.connect(), "postgres:host=127.0.0.1", "/tmp/x", snapshot_version=3)


def test_an_unreachable_catalog_is_transient_one_line_and_hides_the_password(
    tmp_path: Path,
) -> None:
    """Nothing listening on the catalog's port: a transient error, one line, no password in it."""
    port = free_port()
    catalog = f"postgres:host=127.0.0.1 port={port} user=postgres password=s3cret dbname=x"
    with pytest.raises(CatalogUnavailableError) as info:
        attach_lake(duckdb.connect(), catalog, str(tmp_path / "data"))
    message = str(info.value)
    assert "\n" not in message
    assert "Connection refused" in message
    assert str(port) in message
    assert "s3cret" not in message


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        # Messages as DuckDB 1.5.5 raised them in the two-process experiments.
        (
            "TransactionContext Error: Failed to commit: Failed to commit DuckLake transaction.\n"
            'Transaction conflict - attempting to delete from table with index "1" - but another '
            "transaction has inserted into it",
            CommitConflictError,
        ),
        (
            "TransactionContext Error: Failed to commit: Failed to commit DuckLake transaction.\n"
            "Exceeded the maximum retry count of 10 set by the ducklake_max_retry_count setting.",
            CommitConflictError,
        ),
        (
            'TransactionContext Error: Failed to commit: Failed to execute query "ROLLBACK": ',
            CatalogUnavailableError,
        ),
        (
            "Invalid Input Error: Attempting to fetch from an unsuccessful query result\nError: "
            "TransactionContext Error: Current transaction is aborted (please ROLLBACK)",
            CatalogUnavailableError,
        ),
        ("TransactionContext Error: cannot rollback - no transaction is active", DatabaseError),
    ],
)
def test_commit_failures_are_classified_for_the_retry_loop(
    text: str, kind: type[PipelineError]
) -> None:
    """Conflicts and exhausted retries redo the batch; a lost catalog connection is an outage."""
    error = lake_error(duckdb.TransactionException(text), "commit")
    assert type(error) is kind
    assert "\n" not in str(error)
