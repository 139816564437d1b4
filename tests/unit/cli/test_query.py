"""`query` on a real DuckDB file, in-process through ``consumer.cli.main(argv)``; and
``python -m consumer``."""

from __future__ import annotations

import json
import runpy
import sys
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from consumer import cli
from tests.unit.cli.clikit import exits, ident
from tests.unit.warehouse.batchkit import held_by_another_process, warehouse_with_orders

# -- query --------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One file for the module: the tests only read it."""
    return warehouse_with_orders(tmp_path_factory.mktemp("query") / "w.duckdb")


def test_query_json_prints_the_contract_keys_and_exact_totals(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`query top-users --format json` prints the hand-computed totals as exact decimals."""
    assert cli.main(["query", "top-users", "--db", str(db), "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out, parse_float=Decimal)
    assert rows == [
        {"user_id": "u-1", "total_sales": Decimal("34.00"), "currency": "USD"},
        {"user_id": "u-2", "total_sales": Decimal("13.75"), "currency": "USD"},
    ]


def test_query_csv_and_table_print_the_same_rows(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CSV has a header and an empty field for the NULL channel; the table shows (null)."""
    cli.main(["query", "sales-by-channel", "--db", str(db), "--format", "csv"])
    assert capsys.readouterr().out.splitlines() == [
        "source,total_sales,currency",
        "web,21.00,USD",
        "app,13.75,USD",
        ",13.00,USD",
    ]
    cli.main(["query", "sales-by-channel", "--db", str(db)])
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["source", "total_sales", "currency"]
    assert [line.split() for line in table[2:]] == [
        ["web", "21.00", "USD"],
        ["app", "13.75", "USD"],
        ["(null)", "13.00", "USD"],
    ]


def test_query_takes_the_reporting_currency_from_the_flag_or_the_environment(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The file's orders are all in USD and it holds no rates: in EUR every line is
    unconverted (u-1's 34.00 and u-2's 13.75: 47.75 USD in 4 lines), and no user has a total."""
    monkeypatch.setenv("ORDERS_REPORT_CURRENCY", "EUR")
    cli.main(["query", "top-users", "--db", str(db), "--format", "json"])
    assert json.loads(capsys.readouterr().out) == []
    cli.main(["query", "unconverted-sales", "--db", str(db), "--format", "json"])
    assert json.loads(capsys.readouterr().out, parse_float=Decimal) == [
        {"currency": "USD", "lines": 4, "total": Decimal("47.75")}
    ]
    cli.main(["query", "unconverted-sales", "--db", str(db), "--currency", "USD"])
    assert capsys.readouterr().out.split()[:3] == ["currency", "lines", "total"]
    cli.main(["query", "unconverted-sales", "--db", str(db), "--currency", "USD", "--format",
              "json"])  # fmt: skip
    assert json.loads(capsys.readouterr().out) == []  # nothing unconverted in USD


def test_query_reads_the_database_from_the_environment_and_honours_the_limit(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ORDERS_DB stands in for --db; --limit 1 prints one row."""
    monkeypatch.setenv("ORDERS_DB", str(db))
    cli.main(["query", "top-products", "--format", "json", "--limit", "1"])
    assert json.loads(capsys.readouterr().out) == [{"sku": "p-2", "name": None, "units_sold": 5}]


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["query", "top-users"], "--db"),
        (["query", "bottom-users", "--db", "{db}"], "invalid choice"),
        (["query", "top-users", "--db", "{db}", "--limit", "-1"], "--limit"),
        (["query", "top-users", "--db", "{db}", "--limit", "few"], "--limit"),
        (["query", "top-users", "--db", "{db}", "--format", "xml"], "--format"),
        (["query", "top-users", "--db", "/nonexistent.duckdb"], "does not exist"),
        (["query", "top-users", "--db", "{db}", "--currency", "usd"], "--currency"),
        (["query", "top-users", "--db", "{db}", "--currency", "EURO"], "--currency"),
        (["query", "sales-over-time", "--db", "{db}", "--grain", "year"], "--grain"),
    ],
    ids=ident,
)
def test_a_bad_query_exits_2_with_one_line(
    argv: list[str], names: str, db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Bad usage of query: exit 2, one line naming what is wrong."""
    assert names in exits([a.replace("{db}", str(db)) for a in argv], capsys, 2)


def test_query_on_a_database_a_consumer_holds_exits_1_naming_it(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A file held by a running process: exit 1, one line naming its PID."""
    with held_by_another_process(db) as pid:
        line = exits(["query", "top-users", "--db", str(db)], capsys, 1)
    assert f"PID {pid}" in line


def test_python_dash_m_consumer_runs_the_same_cli(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """`python -m consumer` is this CLI: a bad query exits 2 with its one line."""
    monkeypatch.setattr(sys, "argv", ["consumer", "query", "top-users"])
    with pytest.raises(SystemExit) as caught:
        runpy.run_module("consumer", run_name="__main__")
    assert caught.value.code == 2
    assert "--db" in capsys.readouterr().err


def test_a_failure_no_layer_translated_is_still_one_line_without_the_secret(
    db: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A read that fails with a raw, multi-line DuckDB error quoting the S3 secret exits 1 with
    one line, no traceback and no secret (the guard behind every command)."""
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "wJalr-in-the-statement")

    def broken(*_args: object) -> None:
        raise duckdb.IOException("IO Error: boom\nLINE 1: SECRET 'wJalr-in-the-statement'")

    monkeypatch.setattr(cli.reading, "report", broken)
    line = exits(["query", "top-users", "--db", str(db)], capsys, 1)
    assert "unexpected IOException: IO Error: boom" in line
    assert "wJalr" not in line
