"""DuckDB's lake extensions, loaded from their wheels, and the attach of a DuckLake warehouse.

The extensions come from the pinned ``duckdb-extension-*`` wheels, which carry DuckDB's signed
binaries for exactly one DuckDB release. They are loaded with signature checks on: a connection
that allows unsigned extensions is refused, and nothing is ever installed from the network.

The postgres wheel ships ``postgres.duckdb_extension``, but the extension inside is called
``postgres_scanner``, and DuckDB derives the entry point from the file name: a LOAD of the
wheel's path fails with "did not contain the expected entrypoint". It is loaded through a
symlink named ``postgres_scanner.duckdb_extension`` in a private cache directory.

Failures become one-line consumer errors:
- ``ConfigError`` (exit 2): a missing or mismatched extension wheel, a bad ``--catalog``, a
  catalog that answers but refuses us (unknown database or role, authentication, a DATA_PATH
  other than the lake's);
- ``CatalogUnavailableError`` (a ``TransientError``): the catalog server does not answer, or
  dropped the connection. Retried mid-run; at start-up the caller exits 1 with its line.
  Measured on 1.5.5: after a PostgreSQL restart the same attached connection works again at the
  next statement, but a transaction open across the restart fails at COMMIT, with nothing
  committed;
- ``CommitConflictError`` (a ``TransientError``): DuckLake refused the COMMIT because another
  transaction changed the same table (redo the batch on a fresh snapshot);
- ``DatabaseError`` for anything else.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb

from consumer.errors import ConfigError, DatabaseError, PipelineError, TransientError
from consumer.warehouse import objectstore

log = logging.getLogger(__name__)

CATALOG_PREFIX = "postgres:"
REMOTE_SCHEMES = ("s3://", "s3a://", "s3n://", "r2://", "gcs://", "gs://", "http://", "https://")

# Seen when two processes attach an empty catalog at once: both run DuckLake's CREATE TABLEs
# and one gets PostgreSQL's duplicate-key error on pg_type. Attaching again succeeds.
INIT_RACE = ("duplicate key", "already exists")
INIT_RACE_ATTEMPTS = 5

UNREACHABLE = (
    "Connection refused",
    "could not connect",
    "could not translate host name",
    "timeout expired",
    "server closed the connection",
    "terminating connection",
    "no connection to the server",
    "the database system is",  # starting up, shutting down, in recovery mode
    'Failed to execute query "ROLLBACK"',  # a transaction open across a server restart
    "SSL SYSCALL error",
    # A statement of the batch failed on the catalog mid-restart, and DuckDB aborted the
    # transaction: nothing of it is committed, so the batch is redone (seen in the restart test).
    "Current transaction is aborted",
)
REFUSED = (
    "invalid connection option",
    "does not exist",
    "password authentication failed",
    "no pg_hba.conf entry",
    "does not match existing data path",
    "Unsupported option",
    'missing "=" after',
)


class CatalogUnavailableError(TransientError):
    """The DuckLake catalog's PostgreSQL does not answer or dropped the connection."""


class CommitConflictError(TransientError):
    """DuckLake refused a COMMIT: a concurrent transaction changed a table this one changed."""


@dataclass(frozen=True)
class WheelExtension:
    """One extension: its own name and where its wheel keeps the binary."""

    name: str
    package: str
    file_stem: str

    def wheel_file(self) -> Path:
        """The binary for the running DuckDB release, from the installed wheel."""
        spec = importlib.util.find_spec(self.package)
        dist = self.package.replace("_", "-")
        if spec is None or not spec.submodule_search_locations:
            raise ConfigError(
                f"the DuckDB extension `{self.name}` is not installed; "
                f"install {dist}=={duckdb.__version__} (make install)"
            )
        root = Path(next(iter(spec.submodule_search_locations))) / "extensions"
        path = root / f"v{duckdb.__version__}" / f"{self.file_stem}.duckdb_extension"
        if not path.is_file():
            found = sorted(p.name for p in root.glob("v*")) or ["nothing"]
            raise ConfigError(
                f"{dist} carries {', '.join(found)} but duckdb is {duckdb.__version__}; "
                f"install {dist}=={duckdb.__version__} (make install)"
            )
        return path


DUCKLAKE = WheelExtension("ducklake", "duckdb_extension_ducklake", "ducklake")
POSTGRES = WheelExtension("postgres_scanner", "duckdb_extension_postgres", "postgres")
HTTPFS = WheelExtension("httpfs", "duckdb_extension_httpfs", "httpfs")


def _link_dir(target: Path) -> Path:
    """A private directory for our renamed links; one per wheel file, so venvs do not clash."""
    if explicit := os.environ.get("ORDERS_PIPELINE_CACHE"):
        base = Path(explicit)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "orders-pipeline"
    digest = hashlib.sha256(str(target).encode()).hexdigest()[:16]
    return base / "duckdb-extensions" / digest


def loadable_path(ext: WheelExtension) -> Path:
    """A path whose file name is ``<name>.duckdb_extension`` for the wheel's binary."""
    target = ext.wheel_file()
    if target.name == f"{ext.name}.duckdb_extension":
        return target
    for attempt in range(2):
        # A read-only home (some containers) falls back to a fresh private temp directory.
        directory = (
            _link_dir(target) if attempt == 0 else Path(tempfile.mkdtemp(prefix="orders-ext-"))
        )
        link = directory / f"{ext.name}.duckdb_extension"
        try:
            if link.is_symlink() and Path(os.readlink(link)) == target:
                return link
            directory.mkdir(parents=True, exist_ok=True)
            # Another process may create the same link at once: build it aside, rename it in.
            tmp = directory / f".{ext.name}.{os.getpid()}.tmp"
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(target)
            tmp.replace(link)
            return link
        except OSError as exc:
            log.debug("cannot link %s in %s: %s", target, directory, exc)
    raise ConfigError(f"cannot make a link named {ext.name}.duckdb_extension for {target}")


def _loaded(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute("SELECT extension_name FROM duckdb_extensions() WHERE loaded").fetchall()
    return {str(row[0]) for row in rows}


def load_extensions(con: duckdb.DuckDBPyConnection, *, remote: bool = False) -> None:
    """LOAD ducklake and postgres_scanner (and httpfs for a remote data path), signed only."""
    unsigned = con.execute("SELECT current_setting('allow_unsigned_extensions')").fetchone()
    if unsigned is None or unsigned[0] is not False:
        raise ConfigError("refusing a DuckDB connection that allows unsigned extensions")
    # The wheels are the only source: never download an extension behind the operator's back.
    con.execute("SET autoinstall_known_extensions = false")
    loaded = _loaded(con)
    for ext in [DUCKLAKE, POSTGRES, *([HTTPFS] if remote else [])]:
        if ext.name not in loaded:
            load_extension(con, ext)


def load_extension(con: duckdb.DuckDBPyConnection, ext: WheelExtension) -> None:
    """LOAD one wheel's extension under its own name; DuckDB checks its signature."""
    path = loadable_path(ext)
    try:
        con.execute(f"LOAD {_quote(str(path))}")
    except duckdb.Error as exc:
        raise ConfigError(f"cannot load the DuckDB extension {ext.name}: {_line(exc)}") from exc


def attach_lake(
    con: duckdb.DuckDBPyConnection,
    catalog: str,
    data_path: str | None = None,
    *,
    alias: str = "lake",
    read_only: bool = False,
    snapshot_version: int | None = None,
    options: dict[str, str | int | bool] | None = None,
) -> None:
    """``ATTACH 'ducklake:postgres:CONNINFO' AS alias (DATA_PATH ..., [READ_ONLY])``.

    ``catalog`` is the contract's form, ``postgres:CONNINFO``. A writer creating a new lake
    needs ``data_path``; an existing lake keeps the one it was created with (readers may omit
    it). ``snapshot_version`` pins a reader to one snapshot (read-only only).
    """
    if not catalog.startswith(CATALOG_PREFIX) or not catalog[len(CATALOG_PREFIX) :].strip():
        raise ConfigError(f"--catalog must be postgres:CONNINFO, got {redact(catalog)!r}")
    if data_path is not None and data_path.startswith(("az://", "azure://", "abfss://")):
        raise ConfigError(f"unsupported data path {data_path!r}: use a directory or s3://")
    if snapshot_version is not None and not read_only:
        raise ConfigError("a snapshot version can only be attached read-only")
    remote = data_path is not None and data_path.startswith(REMOTE_SCHEMES)
    load_extensions(con, remote=remote)
    parts = [] if data_path is None else [f"DATA_PATH {_quote(data_path)}"]
    if read_only:
        parts.append("READ_ONLY")
    if snapshot_version is not None:
        parts.append(f"SNAPSHOT_VERSION {int(snapshot_version)}")
    for key, value in (options or {}).items():
        if not re.fullmatch(r"[A-Za-z_]+", key):
            raise ConfigError(f"bad DuckLake attach option name {key!r}")
        parts.append(f"{key.upper()} {_literal(value)}")
    sql = f"ATTACH {_quote('ducklake:' + catalog)} AS {_ident(alias)}"
    if parts:
        sql += f" ({', '.join(parts)})"
    for attempt in range(1, INIT_RACE_ATTEMPTS + 1):
        try:
            con.execute(sql)
            return
        except duckdb.Error as exc:
            text = str(exc)
            if "required extension 'httpfs'" in text and HTTPFS.name not in _loaded(con):
                # A reader without DATA_PATH learns only now that the lake's data are on S3
                # (loading httpfs is not free, so it is not loaded by default: measured, see
                # docs/performance.md).
                load_extension(con, HTTPFS)
                continue
            racing = "Failed to initialize DuckLake" in text and any(s in text for s in INIT_RACE)
            if racing and attempt < INIT_RACE_ATTEMPTS:
                log.info("lake catalog initialised by another process; attaching again")
                time.sleep(0.2 * attempt)
                continue
            raise lake_error(exc, f"cannot attach the lake {redact(catalog)}") from exc


def set_commit_retries(
    con: duckdb.DuckDBPyConnection, count: int, wait_ms: int = 100, backoff: float = 1.5
) -> None:
    """DuckLake's own retry of a COMMIT that lost the race for the next snapshot id."""
    con.execute(f"SET ducklake_max_retry_count = {int(count)}")
    con.execute(f"SET ducklake_retry_wait_ms = {int(wait_ms)}")
    con.execute(f"SET ducklake_retry_backoff = {float(backoff)}")


def lake_error(exc: duckdb.Error, context: str) -> PipelineError:
    """Translate a DuckDB error met on a lake into the consumer's error types (one line)."""
    text = str(exc)
    message = f"{context}: {_line(exc)}"
    # "Exceeded the maximum retry count": 2 of 450 commits of 3 racing writers at the default
    # ducklake_max_retry_count of 10 (none at 100); redoing the batch is the cure.
    if isinstance(exc, duckdb.TransactionException) and (
        "Transaction conflict" in text or "Exceeded the maximum retry count" in text
    ):
        return CommitConflictError(message)
    if kind := objectstore.classify(text):  # the data's S3 store, not the catalog
        return kind(message)
    if any(s in text for s in UNREACHABLE):
        return CatalogUnavailableError(message)
    if any(s in text for s in REFUSED):
        return ConfigError(message)
    return DatabaseError(message)


def redact(text: str) -> str:
    """``text`` without a catalog password or the S3 secret key."""
    text = objectstore.scrub(text)
    return re.sub(r"(password\s*=\s*)('[^']*'|[^\s'\"]+)", r"\1***", text, flags=re.IGNORECASE)


def _line(exc: BaseException) -> str:
    """DuckDB's multi-line message as one line, the libpq detail kept, secrets removed."""
    text = str(exc)
    # "Failed to attach DuckLake MetaData ... Unable to connect to Postgres at "...": DETAIL
    # \n\tIs the server running...": the DETAIL's first line is what the operator needs.
    if match := re.search(r'Unable to connect to Postgres at ".*?": (.*)', text, re.DOTALL):
        text = match.group(1).strip().splitlines()[0]
    text = " ".join(text.split())
    return redact(text)[:400]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _literal(value: str | int | bool) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return _quote(value)
