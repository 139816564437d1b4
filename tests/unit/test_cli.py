"""The consumer CLI: bad usage and configuration exit 2 with one line; reports format well."""

from __future__ import annotations

import json
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from consumer.faults import Faults
from consumer.formats import to_csv, to_json, to_table

RUN = ["run", "--bootstrap-servers", "127.0.0.1:9", "--topic", "t", "--group-id", "g"]


def consumer_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumer", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--topic", "t", "--group-id", "g", "--db", "x.duckdb"], "--bootstrap-servers"),
        ([*RUN, "--db", "x.duckdb", "--batch-max-records", "0"], "--batch-max-records"),
        ([*RUN, "--db", "x.duckdb", "--batch-max-records", "many"], "not a valid int"),
        ([*RUN, "--db", "x.duckdb", "--users-csv", "/nonexistent/users.csv"], "users.csv"),
        ([*RUN, "--db", "x.duckdb", "--metrics-port", "70000"], "--metrics-port"),
        ([*RUN, "--db", "x.duckdb", "--kafka-option", "oops"], "KEY=VALUE"),
        (["run", "--bootstrap-servers", "nohostport", "--group-id", "g", "--db", "x"], "HOST:PORT"),
        ([*RUN[:4], "bad topic!", "--group-id", "g", "--db", "x"], "topic"),
        (["query", "top-users"], "--db"),
        (["query", "no-such-report", "--db", "x"], "invalid choice"),
        (["query", "top-users", "--db", "/nonexistent.duckdb"], "does not exist"),
    ],
)
def test_bad_usage_exits_2_with_one_line(args: list[str], message: str, tmp_path: Path) -> None:
    """Each bad flag or value is reported on exactly one stderr line, with exit code 2."""
    proc = consumer_cli(*args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert message in lines[0]
    assert "Traceback" not in proc.stderr


def test_a_bad_environment_value_is_reported_like_a_bad_flag(tmp_path: Path) -> None:
    """Flags read the environment; a bad value there is also one line and exit 2."""
    env = {"ORDERS_BATCH_MAX_SECONDS": "soon", "PATH": "/usr/bin:/bin"}
    proc = consumer_cli(*RUN, "--db", str(tmp_path / "w.duckdb"), env=env)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "--batch-max-seconds" in proc.stderr


def test_unreachable_broker_exits_1_with_a_clear_message(tmp_path: Path) -> None:
    """Nothing listening on the bootstrap port: a one-line error after the start-up timeout."""
    proc = consumer_cli(
        *RUN, "--db", str(tmp_path / "w.duckdb"), "--startup-timeout", "2", "--log-format", "json"
    )
    assert proc.returncode == 1
    assert "cannot reach Kafka" in proc.stderr
    assert "Traceback" not in proc.stderr + proc.stdout


def test_fault_plan_parses_points_and_batches() -> None:
    """ORDERS_FAULTS entries name a point and the batches it fires on."""
    plan = Faults.parse("kill_after_db_commit@3, fail_db_write@2+5")
    assert plan == Faults(
        {"kill_after_db_commit": frozenset({3}), "fail_db_write": frozenset({2, 5})}
    )
    with pytest.raises(ValueError, match="POINT@BATCH"):
        Faults.parse("explode@1")


def test_fail_db_write_fires_once_per_listed_batch() -> None:
    """A failing write is injected once, so the retry of the same batch succeeds."""
    plan = Faults.parse("fail_db_write@2")
    plan.hit("fail_db_write", 1)
    with pytest.raises(Exception, match="injected fault"):
        plan.hit("fail_db_write", 2)
    plan.hit("fail_db_write", 2)


ROWS = [
    {"source": "web", "total_sales": Decimal("1234.5000")},
    {"source": "app", "total_sales": Decimal("0.1250")},
    {"source": None, "total_sales": Decimal("7")},
]


def test_json_output_has_exact_keys_and_exact_decimal_numbers() -> None:
    """--format json prints row objects whose money parses back to the exact decimal."""
    rows = json.loads(to_json(ROWS), parse_float=Decimal, parse_int=Decimal)
    assert [list(row) for row in rows] == [["source", "total_sales"]] * 3
    assert [row["total_sales"] for row in rows] == [
        Decimal("1234.5"),
        Decimal("0.125"),
        Decimal("7"),
    ]
    assert rows[2]["source"] is None


def test_table_output_aligns_numbers_right_and_shows_null() -> None:
    """The default table right-aligns money with cents and prints NULL keys as (null)."""
    lines = to_table(ROWS, ("source", "total_sales")).splitlines()
    assert lines[0].split() == ["source", "total_sales"]
    assert lines[2].endswith("1,234.50")
    assert lines[3].endswith("0.125")
    assert lines[4].startswith("(null)")
    assert len({len(line) for line in lines[2:]}) == 1


def test_csv_output_has_a_header_and_empty_nulls() -> None:
    """--format csv prints a header row, plain decimals and empty fields for NULL."""
    assert to_csv(ROWS, ("source", "total_sales")).splitlines() == [
        "source,total_sales",
        "web,1234.50",
        "app,0.125",
        ",7.00",
    ]
