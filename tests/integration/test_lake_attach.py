"""A DuckLake warehouse on a real PostgreSQL catalog with Parquet files: writers and readers."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from consumer.errors import ConfigError
from consumer.warehouse.extensions import CatalogUnavailableError, attach_lake, lake_error
from tests.conftest import PgServer, with_dbname

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]

# A writer process: one committed transaction of 1000 rows, then a second one of 500 rows left
# open until told to commit; it prints a line after each step and waits for a line on stdin.
WRITER = """
import sys, duckdb
from consumer.warehouse.extensions import attach_lake
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
attach_lake(con, sys.argv[1], sys.argv[2])
con.execute("CREATE TABLE lake.orders(order_id VARCHAR, amount DECIMAL(18,4))")
con.execute("BEGIN")
con.execute("INSERT INTO lake.orders SELECT 'o-' || range, range / 4 FROM range(1000)")
con.execute("COMMIT")
print("committed", flush=True)
con.execute("BEGIN")
con.execute("INSERT INTO lake.orders SELECT 'p-' || range, 1 FROM range(500)")
print("open", flush=True)
sys.stdin.readline()
con.execute("COMMIT")
print("committed", flush=True)
sys.stdin.readline()
"""

# A reader process: a read-only attach; prints the count, the sum and whether a write is refused.
READER = """
import sys, duckdb
from consumer.warehouse.extensions import attach_lake
con = duckdb.connect()
con.execute("SET enable_progress_bar = false")
attach_lake(con, sys.argv[1], read_only=True)
count, total = con.execute("SELECT count(*), sum(amount) FROM lake.orders").fetchone()
try:
    con.execute("INSERT INTO lake.orders VALUES ('x', 1)")
    refused = "no"
except duckdb.Error:
    refused = "yes"
print(count, total, refused, flush=True)
"""


def python(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", script, *args]


def read_lake(catalog: str) -> list[str]:
    proc = subprocess.run(
        python(READER, catalog), capture_output=True, text=True, timeout=120, cwd=ROOT, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.split()


@pytest.fixture
def writer(lake_catalog: str, tmp_path: Path) -> Iterator[subprocess.Popen[str]]:
    proc = subprocess.Popen(
        python(WRITER, f"postgres:{lake_catalog}", str(tmp_path / "data")),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )
    yield proc
    proc.kill()
    proc.wait()


def step(proc: subprocess.Popen[str], expected: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    assert line == expected, f"writer said {line!r} (exit {proc.poll()})"


def test_a_reader_sees_the_committed_snapshot_while_the_writer_holds_its_connection(
    writer: subprocess.Popen[str], lake_catalog: str, tmp_path: Path
) -> None:
    """A second process reads committed rows only, mid-write; the data are Parquet files."""
    catalog = f"postgres:{lake_catalog}"
    step(writer, "committed")
    step(writer, "open")
    # sum over 0..999 of n/4 = 999*1000/2/4
    assert read_lake(catalog) == ["1000", "124875.0000", "yes"]
    assert writer.stdin is not None
    writer.stdin.write("commit\n")
    writer.stdin.flush()
    step(writer, "committed")
    assert read_lake(catalog) == ["1500", "125375.0000", "yes"]
    assert writer.poll() is None, "the writer kept its connection open throughout"
    files = sorted((tmp_path / "data").rglob("*.parquet"))
    assert len(files) >= 2
    rows = duckdb.sql(f"SELECT count(*) FROM read_parquet({[str(f) for f in files]})").fetchone()
    assert rows == (1500,)


def test_processes_attaching_an_empty_catalog_at_once_all_succeed(
    lake_catalog: str, tmp_path: Path
) -> None:
    """Three first attaches race to create DuckLake's tables; every one of them gets the lake."""
    script = (
        "import sys, duckdb\n"
        "from consumer.warehouse.extensions import attach_lake\n"
        "con = duckdb.connect()\n"
        "con.execute('SET enable_progress_bar = false')\n"
        "attach_lake(con, sys.argv[1], sys.argv[2])\n"
        "print(con.execute('SELECT count(*) FROM ducklake_snapshots(\\'lake\\')').fetchone()[0])\n"
    )
    args = python(script, f"postgres:{lake_catalog}", str(tmp_path / "data"))
    procs = [
        subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT)
        for _ in range(3)
    ]
    results = [proc.communicate(timeout=120) for proc in procs]
    assert [proc.returncode for proc in procs] == [0, 0, 0], [err for _, err in results]
    assert [out.strip() for out, _ in results] == ["1", "1", "1"]


def test_a_catalog_database_that_does_not_exist_is_a_config_error(
    pg_catalog: str, tmp_path: Path
) -> None:
    """A reachable server without the named database is bad configuration, not an outage."""
    catalog = "postgres:" + with_dbname(pg_catalog, "lake_does_not_exist")
    with pytest.raises(ConfigError, match="lake_does_not_exist"):
        attach_lake(duckdb.connect(), catalog, str(tmp_path / "data"))


def test_a_postgres_restart_fails_the_open_transaction_and_the_connection_recovers(
    pg_server: PgServer, lake_catalog: str, tmp_path: Path
) -> None:
    """Across a restart: the open transaction's COMMIT is a transient error and commits nothing;
    the same attached connection then reads and writes again without a new ATTACH."""
    if pg_server.local is None:
        pytest.skip("needs the native server, which the test can restart")
    con = duckdb.connect()
    attach_lake(con, f"postgres:{lake_catalog}", str(tmp_path / "data"))
    con.execute("CREATE TABLE lake.t AS SELECT range AS k FROM range(100)")
    con.execute("BEGIN")
    con.execute("INSERT INTO lake.t SELECT range FROM range(50)")
    pg_server.local.restart(mode="immediate")
    with pytest.raises(duckdb.Error) as info:
        con.execute("COMMIT")
    assert isinstance(lake_error(info.value, "commit"), CatalogUnavailableError)
    assert con.execute("SELECT count(*) FROM lake.t").fetchone() == (100,)
    con.execute("INSERT INTO lake.t VALUES (1)")
    assert con.execute("SELECT count(*) FROM lake.t").fetchone() == (101,)
