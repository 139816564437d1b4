"""Lake maintenance: without it, every micro-batch leaves one Parquet file per table it wrote,
and a day of batches leaves a hundred thousand files that every report must open.

One pass (``maintain``), each step a DuckLake call in a transaction of its own:
1. flush the inlined rows of the data tables into Parquet (batches of at most
   ``data_inlining_row_limit`` rows are kept in the catalog, not in files);
2. merge adjacent files, table by table;
3. expire the snapshots older than ``older_than`` (readers and pinned snapshots older than that
   break: keep it above the longest report), but never one younger than ``MIN_AGE``:
   DuckLake detects a commit conflict from the changes recorded since the transaction's
   snapshot, and expiring them let a stale transaction commit over a change it never saw
   (measured on 1.5.5); members redo any transaction open longer than a fraction of that;
4. delete the files no kept snapshot refers to any more, but only those scheduled for deletion
   ``MIN_AGE`` ago or more: a merge schedules the files it replaced at once, whatever the
   snapshots, and a transaction that began before it still reads them (measured on 1.5.5: a
   reader open across a merge and an immediate cleanup failed with "Cannot open file");
5. delete orphaned files (Parquet files of a member SIGKILLed before its COMMIT), but only
   those older than ``ORPHAN_MIN_AGE`` whatever ``older_than`` says: a batch still in flight
   has written its files and not yet committed them, and to the catalog they look orphaned.

Steps 1 and 2 conflict with members' DELETEs and UPDATEs of the same table (measured on 1.5.5:
merge and flush against a concurrent DELETE raise ``Transaction conflict`` at COMMIT). The
members UPDATE their ledgers in every batch, so those tables are left alone
(they are inlined, one row each, and hold no files); each step is retried on
``CommitConflictError``, table by table, so one conflict redoes one table's work.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import duckdb

from consumer.errors import ConfigError
from consumer.warehouse import ledgers
from consumer.warehouse.extensions import CommitConflictError, lake_error
from consumer.warehouse.lakeconn import MAX_TRANSACTION_SECONDS
from orders_common.logs import get_logger

log = get_logger("maintenance")
ALIAS = "lake"
LAKE = f"'{ALIAS}'"
# Left alone (besides the ledgers): the guard of lakes made before history, which their older
# members updated in every batch.
SKIPPED = ("dim_guard",)
ORPHAN_MIN_AGE = timedelta(minutes=10)
MIN_AGE = timedelta(seconds=5 * MAX_TRANSACTION_SECONDS)
CONFLICT_ATTEMPTS = 30
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def duration(text: str) -> timedelta:
    """``90``, ``90s``, ``30m``, ``1h``, ``2d``, ``1w`` (a ValueError names the mistake)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*", text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a duration like 90s, 30m, 1h or 2d")
    return timedelta(seconds=float(match.group(1)) * _UNITS[match.group(2) or "s"])


@dataclass(frozen=True)
class MaintainSettings:
    older_than: timedelta = timedelta(hours=1)
    conflict_attempts: int = CONFLICT_ATTEMPTS
    # Snapshots, and files replaced by a merge, younger than this are kept whatever older_than
    # says (module docstring); tests of a lake no member writes lower it.
    min_age: timedelta = MIN_AGE

    def __post_init__(self) -> None:
        if self.older_than < timedelta(0):
            raise ConfigError("--older-than must not be negative")
        if self.conflict_attempts < 1:
            raise ConfigError("conflict attempts must be at least 1")


@dataclass
class Report:
    """What one pass did; ``files_*`` are active data files per table (delete files too)."""

    files_before: dict[str, int] = field(default_factory=dict)
    files_after: dict[str, int] = field(default_factory=dict)
    on_disk_before: int = 0
    on_disk_after: int = 0
    rows_flushed: int = 0
    files_merged: int = 0
    files_created: int = 0
    snapshots_expired: int = 0
    old_files_deleted: int = 0
    orphans_deleted: int = 0
    conflicts: int = 0
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        changed = {
            t: f"{self.files_before.get(t, 0)}->{n}"
            for t, n in sorted(self.files_after.items())
            if n or self.files_before.get(t)
        }
        return {
            "files_before": sum(self.files_before.values()),
            "files_after": sum(self.files_after.values()),
            "on_disk_before": self.on_disk_before,
            "on_disk_after": self.on_disk_after,
            "rows_flushed": self.rows_flushed,
            "files_merged": self.files_merged,
            "files_created": self.files_created,
            "snapshots_expired": self.snapshots_expired,
            "old_files_deleted": self.old_files_deleted,
            "orphans_deleted": self.orphans_deleted,
            "conflicts_retried": self.conflicts,
            "elapsed_s": round(self.seconds, 2),
            "tables": changed,
        }


def data_tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    """The lake's tables that maintenance compacts: all but the ledgers and the guard."""
    rows = con.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = $db ORDER BY table_name",
        {"db": ALIAS},
    ).fetchall()
    names = [str(r[0]) for r in rows]
    return [n for n in names if not n.startswith(ledgers.PREFIX) and n not in SKIPPED]


def file_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Active data and delete files per table, from the catalog."""
    rows = con.execute(
        f"SELECT table_name, file_count + delete_file_count FROM ducklake_table_info('{ALIAS}')"
    ).fetchall()
    return {str(name): int(count) for name, count in rows}


def files_on_disk(con: duckdb.DuckDBPyConnection) -> int:
    """Parquet files under the lake's data path, whatever the catalog thinks of them."""
    row = con.execute(
        f"SELECT value FROM ducklake_options('{ALIAS}') WHERE option_name = 'data_path'"
    ).fetchone()
    if row is None or not row[0]:
        return 0
    root = str(row[0]).rstrip("/")
    found = con.execute("SELECT count(*) FROM glob($pattern)", {"pattern": f"{root}/**/*.parquet"})
    counted = found.fetchone()
    return int(counted[0]) if counted else 0


def owns_partition_zero(con: duckdb.DuckDBPyConnection, topic: str, member: str) -> bool:
    """The cheap election of the member that maintains the lake: the owner of partition 0."""
    name = ledgers.table(topic, 0)
    try:
        row = con.execute(f'SELECT owner FROM "{name}" ORDER BY epoch DESC LIMIT 1').fetchone()
    except duckdb.CatalogException:
        return False  # partition 0 was never claimed yet
    return row is not None and row[0] == member


def maintain(con: duckdb.DuckDBPyConnection, settings: MaintainSettings) -> Report:
    """One maintenance pass over the lake attached as ``lake`` on ``con`` (read-write)."""
    report = Report()
    started = time.monotonic()
    report.files_before = _read(con, file_counts, "count the files")
    report.on_disk_before = _read(con, files_on_disk, "count the files on disk")
    log.info(
        "maintenance_started",
        files=sum(report.files_before.values()),
        on_disk=report.on_disk_before,
        older_than_s=settings.older_than.total_seconds(),
    )
    step = _Steps(con, settings, report)
    for table in _read(con, data_tables, "list the tables"):
        rows = step("flush", table, f"ducklake_flush_inlined_data({LAKE}, table_name => '{table}')")
        report.rows_flushed += sum(int(r[2]) for r in rows)
        rows = step("merge", table, f"ducklake_merge_adjacent_files({LAKE}, '{table}')")
        report.files_merged += sum(int(r[2]) for r in rows)
        report.files_created += sum(int(r[3]) for r in rows)
    cutoff = _ago(max(settings.older_than, settings.min_age))
    replaced = _ago(settings.min_age)
    expired = step("expire", None, f"ducklake_expire_snapshots({LAKE}, older_than => {cutoff})")
    report.snapshots_expired = len(expired)
    deleted = step("cleanup", None, f"ducklake_cleanup_old_files({LAKE}, older_than => {replaced})")
    report.old_files_deleted = len(deleted)
    orphan_cutoff = _ago(max(settings.older_than, ORPHAN_MIN_AGE))
    orphans = step(
        "orphans", None, f"ducklake_delete_orphaned_files({LAKE}, older_than => {orphan_cutoff})"
    )
    report.orphans_deleted = len(orphans)
    report.files_after = _read(con, file_counts, "count the files")
    report.on_disk_after = _read(con, files_on_disk, "count the files on disk")
    report.seconds = time.monotonic() - started
    log.info("maintenance_done", **report.summary())
    return report


def _ago(age: timedelta) -> str:
    return f"now() - to_microseconds({int(age.total_seconds() * 1e6)})"


def _read(con: duckdb.DuckDBPyConnection, read: Callable[[Any], Any], what: str) -> Any:
    try:
        return read(con)
    except duckdb.Error as exc:
        raise lake_error(exc, f"cannot {what}") from exc


class _Steps:
    """Runs one DuckLake maintenance call in a transaction of its own, redone on a commit
    conflict with jittered backoff."""

    def __init__(
        self, con: duckdb.DuckDBPyConnection, settings: MaintainSettings, report: Report
    ) -> None:
        self._con, self._settings, self._report = con, settings, report

    def __call__(self, step: str, table: str | None, call: str) -> list[tuple[Any, ...]]:
        con, attempts = self._con, self._settings.conflict_attempts
        where = f" of {table}" if table else ""
        for attempt in range(1, attempts + 1):
            started = time.monotonic()
            try:
                con.execute("BEGIN TRANSACTION")
                rows = con.execute(f"CALL {call}").fetchall()
                con.execute("COMMIT")
            except duckdb.Error as exc:
                with suppress(duckdb.Error):  # a failed COMMIT has ended the transaction
                    con.execute("ROLLBACK")
                error = lake_error(exc, f"maintenance step {step}{where} failed")
                if not isinstance(error, CommitConflictError) or attempt == attempts:
                    raise error from exc
                self._report.conflicts += 1
                wait = min(5.0, 0.05 * 2**attempt) * random.uniform(0.5, 1.0)
                log.info(
                    "maintenance_conflict", step=step, table=table, attempt=attempt,
                    wait_s=round(wait, 2),
                )  # fmt: skip
                time.sleep(wait)
                continue
            if rows or table is None:
                ms = round((time.monotonic() - started) * 1000, 1)
                log.info("maintenance_step", step=step, table=table, rows=len(rows), ms=ms)
            return rows
        raise AssertionError("unreachable")
