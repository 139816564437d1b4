"""``orders-consumer sql`` only reads, on a free file and on a file a consumer holds (read
through its local channel): every hostile statement is exit 2 with one line, the warehouse is
unchanged and no file appears; and reads still answer. The lake's path is in
tests/integration/test_lake_sql.py."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from consumer.cli import main
from consumer.errors import ConfigError
from consumer.serving.channel import Channel, socket_path
from consumer.warehouse import adhoc
from consumer.warehouse.adhoc import check_read, run_sql
from consumer.warehouse.duckdb_file import DuckDBWarehouse
from tests.hostile_sql import HOSTILE, READS, files_under, fingerprint, statements
from tests.unit.warehouse.batchkit import warehouse_with_orders

# A consumer's process as far as reads go: it holds the file and answers on its channel.
HOLDER = """
import sys
from pathlib import Path
from consumer.serving.channel import Channel, socket_path
from consumer.warehouse.duckdb_file import DuckDBWarehouse
warehouse = DuckDBWarehouse(Path(sys.argv[1]))
channel = Channel(socket_path(warehouse.path), warehouse.cursor)
print("ready", flush=True)
sys.stdin.read()
channel.close()
warehouse.close()
"""


def sql(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(["sql", *argv])
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


class Holder:
    """Another process holds a warehouse file and serves reads on its local channel."""

    def __init__(self, path: Path) -> None:
        self.path = path
        with duckdb.connect(str(path), read_only=True) as con:
            self.before = fingerprint(con)  # what the file held before anyone touched it
        self._proc = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        while (line := self._proc.stdout.readline()) and line.strip() != "ready":
            pass  # the channel's own log line comes first
        assert line.strip() == "ready"

    def release(self) -> None:
        """Close the channel and the file, as a consumer does when it stops."""
        if self._proc.poll() is None:
            assert self._proc.stdin is not None
            self._proc.stdin.close()
            assert self._proc.wait(timeout=30) == 0


@pytest.fixture
def held(tmp_path: Path) -> Iterator[Holder]:
    holder = Holder(warehouse_with_orders(tmp_path / "held.duckdb"))
    try:
        yield holder
    finally:
        holder.release()


def test_every_hostile_statement_is_refused_by_the_parser_check(tmp_path: Path) -> None:
    """Refused before any connection: by DuckDB's parse of the statement, not its prefix."""
    for statement in statements(tmp_path / "out"):
        with pytest.raises(ConfigError) as refused:
            check_read(statement)
        assert "\n" not in str(refused.value), statement


@pytest.mark.parametrize("where", ["free", "held"])
def test_hostile_statements_change_nothing_and_write_no_file(
    where: str, tmp_path: Path, held: Holder, capsys: pytest.CaptureFixture[str]
) -> None:
    """Exit 2 and one line each, on a free file and through the holder's channel; afterwards
    every table, view, macro and sequence is as it was, and no file appeared."""
    db, expected = held.path, held.before
    if where == "free":
        db = warehouse_with_orders(tmp_path / "free.duckdb")
        with duckdb.connect(str(db), read_only=True) as con:
            expected = fingerprint(con)
    out = tmp_path / "out"
    before_files = files_under(tmp_path)
    for statement in statements(out):
        code, stdout, stderr = sql([statement, "--db", str(db)], capsys)
        assert (code, stdout, stderr.count("\n")) == (2, "", 1), (statement, stderr)
    code, stdout, _ = sql(["SELECT count(*) AS n FROM dim_order", "--db", str(db)], capsys)
    assert code == 0 and "3" in stdout  # the channel still answers after all that
    held.release()  # the file is then free to read directly
    with duckdb.connect(str(db), read_only=True) as con:
        assert fingerprint(con) == expected
    appeared = {f for f in files_under(tmp_path) - before_files if not f.endswith(".wal")}
    assert not out.exists() and not appeared, appeared


def test_reads_still_answer_on_a_free_and_a_held_file(
    tmp_path: Path, held: Holder, capsys: pytest.CaptureFixture[str]
) -> None:
    free = warehouse_with_orders(tmp_path / "free.duckdb")
    for db in (free, held.path):
        for statement in READS:
            code, stdout, stderr = sql([statement, "--db", str(db), "--format", "csv"], capsys)
            assert code == 0 and stdout, (db.name, statement, stderr)


def test_explain_is_refused_only_with_analyze() -> None:
    check_read("EXPLAIN SELECT 1")
    check_read("explain (format json) select 1")
    for statement in ("EXPLAIN ANALYZE SELECT 1", "EXPLAIN (ANALYZE) SELECT 1"):
        with pytest.raises(ConfigError, match="ANALYZE"):
            check_read(statement)


def test_the_second_wall_stops_what_the_parser_might_let_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the parser's check switched off, a statement sent to a consumer's read cursor
    still cannot write a table (READ ONLY transaction) nor a file (external access off)."""
    path = warehouse_with_orders(tmp_path / "w.duckdb")
    warehouse = DuckDBWarehouse(path)
    monkeypatch.setattr(adhoc, "check_read", lambda _sql: None)
    out = tmp_path / "out.csv"
    try:
        before = fingerprint(warehouse.cursor())
        for statement in (
            "DELETE FROM processed_orders",
            "UPDATE kafka_offsets SET next_offset = 0",
            "EXPLAIN ANALYZE DELETE FROM processed_orders",
            "INSERT INTO processed_orders SELECT * FROM processed_orders",
            "DROP TABLE dim_order",
            f"COPY dim_order TO '{out}'",
            f"EXPORT DATABASE '{tmp_path / 'export'}'",
            f"ATTACH '{tmp_path / 'other.duckdb'}' AS other",
            "INSTALL httpfs",
            "SELECT nextval('no_such_sequence')",
        ):
            with pytest.raises(ConfigError):
                run_sql(warehouse.cursor(), statement)
        assert fingerprint(warehouse.cursor()) == before
        assert not out.exists() and not (tmp_path / "export").exists()
        assert not (tmp_path / "other.duckdb").exists()
    finally:
        warehouse.close()


def test_the_channel_serves_a_read_cursor_that_cannot_write(tmp_path: Path) -> None:
    """What the channel hands out: a cursor of the writer's database in which a write inside
    a request's transaction fails, while the writer itself still writes."""
    path = warehouse_with_orders(tmp_path / "w.duckdb")
    warehouse = DuckDBWarehouse(path)
    channel = Channel(socket_path(path), warehouse.cursor)
    try:
        cursor = warehouse.cursor()
        with adhoc.read_transaction(cursor), pytest.raises(duckdb.Error, match="read-only"):
            cursor.execute("DELETE FROM dim_order")
        assert warehouse.cursor().execute("SELECT count(*) FROM dim_order").fetchall() == [(3,)]
        with pytest.raises(duckdb.Error, match="disabled"):
            warehouse.cursor().execute(f"COPY dim_order TO '{tmp_path / 'x.csv'}'")
    finally:
        channel.close()
        warehouse.close()


def test_the_hostile_list_covers_each_kind_the_issue_names() -> None:
    """COPY, EXPORT, ATTACH, DETACH, INSTALL, LOAD, SET, PRAGMA, RESET, CALL, CHECKPOINT,
    VACUUM, transactions, DDL (temporary objects and macros), DML: each is in the table."""
    words = " ".join(HOSTILE).upper()
    for kind in ("COPY", "EXPORT", "ATTACH", "DETACH", "INSTALL", "LOAD", "SET ", "PRAGMA",
                 "RESET", "CALL", "CHECKPOINT", "VACUUM", "BEGIN", "COMMIT", "ROLLBACK",
                 "CREATE TEMP", "MACRO", "DROP", "ALTER", "DELETE", "UPDATE", "INSERT",
                 "TRUNCATE", "MERGE"):  # fmt: skip
        assert kind in words, kind
