"""The consumer CLI, in-process through ``consumer.cli.main(argv)``: every flag's validation
(one line on stderr, exit 2, naming the flag and, for a bad environment value, the variable),
the query command on a real DuckDB file, and run-time failures (exit 1, one line)."""

from __future__ import annotations

import errno
import gc
import json
import os
import runpy
import socket
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest
import structlog

from consumer import cli, flags
from consumer.runtime import wiring
from orders_common.logs import LogFormat, configure_logging
from tests.unit.warehouse.batchkit import held_by_another_process, warehouse_with_orders

BASE = ["--bootstrap-servers", "127.0.0.1:9", "--topic", "t", "--group-id", "g"]


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No ORDERS_* or KAFKA_BOOTSTRAP_SERVERS from the caller's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("ORDERS_") or name == "KAFKA_BOOTSTRAP_SERVERS":
            monkeypatch.delenv(name)


@pytest.fixture
def process_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """`run` configures structlog and tunes the GC and the GIL for the whole process: put all
    three back afterwards, and keep loggers uncached so none keeps this test's stdout."""
    saved_logging = structlog.get_config()
    saved_gc, saved_switch = gc.get_threshold(), sys.getswitchinterval()

    def configure_uncached(log_format: LogFormat, level: str) -> None:
        configure_logging(log_format, level)
        structlog.configure(cache_logger_on_first_use=False)

    monkeypatch.setattr(cli, "configure_logging", configure_uncached)
    yield
    structlog.configure(**saved_logging)
    gc.unfreeze()
    gc.set_threshold(*saved_gc)
    sys.setswitchinterval(saved_switch)


def ident(value: object) -> str:
    if isinstance(value, list | tuple):
        return " ".join(value)[:40]
    return str(value)


def run_args(db: Path | str, *extra: str) -> list[str]:
    return ["run", *BASE, "--db", str(db), *extra]


def exits(argv: list[str], capsys: pytest.CaptureFixture[str], code: int) -> str:
    """Run main(argv), expect SystemExit(code) and one stderr line without a traceback."""
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


# -- run: flag validation ------------------------------------------------------------------

BAD_RUN_FLAGS = [
    (["--bootstrap-servers", "nohostport"], "HOST:PORT"),
    (["--bootstrap-servers", "127.0.0.1:70000"], "port outside"),
    (["--bootstrap-servers", "a:1,,b:2"], "--bootstrap-servers"),
    (["--topic", "bad topic!"], "--topic"),
    (["--topic", ".."], "--topic"),
    (["--dlq-topic", "bad/dlq"], "--dlq-topic"),
    (["--dlq-topic", "t"], "--dlq-topic must differ from --topic"),
    (["--group-id", "  "], "--group-id"),
    (["--startup-timeout", "0"], "--startup-timeout"),
    (["--startup-timeout", "-1"], "--startup-timeout"),
    (["--startup-timeout", "nan"], "--startup-timeout"),
    (["--startup-timeout", "inf"], "--startup-timeout"),
    (["--startup-timeout", "soon"], "--startup-timeout"),
    (["--batch-max-records", "0"], "--batch-max-records"),
    (["--batch-max-records", "many"], "--batch-max-records"),
    (["--batch-max-records", "1.5"], "--batch-max-records"),
    (["--batch-max-seconds", "0"], "--batch-max-seconds"),
    (["--batch-max-seconds", "nan"], "--batch-max-seconds"),
    (["--batch-max-seconds", "-inf"], "--batch-max-seconds"),
    (["--until-idle", "-1"], "--until-idle"),
    (["--until-idle", "nan"], "--until-idle"),
    (["--until-idle", "inf"], "--until-idle"),
    (["--retry-seconds", "0"], "--retry-seconds"),
    (["--retry-seconds", "infinity"], "--retry-seconds"),
    (["--users-csv", "/nonexistent/users.csv"], "--users-csv"),
    (["--products-csv", "{tmp}"], "--products-csv"),
    (["--reference-poll-seconds", "0"], "--reference-poll-seconds"),
    (["--reference-poll-seconds", "NaN"], "--reference-poll-seconds"),
    (["--metrics-port", "0"], "--metrics-port"),
    (["--metrics-port", "70000"], "--metrics-port"),
    (["--metrics-port", "http"], "--metrics-port"),
    (["--log-format", "xml"], "--log-format"),
    (["--log-level", "loud"], "--log-level"),
    (["--kafka-option", "oops"], "KEY=VALUE"),
    (["--kafka-option", "=value"], "KEY=VALUE"),
    (["--db", "{tmp}"], "--db"),
    (["--frobnicate"], "unrecognized arguments"),
]


@pytest.mark.parametrize(("extra", "names"), BAD_RUN_FLAGS, ids=ident)
def test_a_bad_run_flag_exits_2_with_one_line_naming_it(
    extra: list[str], names: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Each bad value is refused before anything starts: exit 2, one line naming the flag,
    and no database file created."""
    db = tmp_path / "w.duckdb"
    line = exits(run_args(db, *(e.replace("{tmp}", str(tmp_path)) for e in extra)), capsys, 2)
    assert names in line
    assert not db.exists()


@pytest.mark.parametrize("missing", ["--bootstrap-servers", "--group-id", "--db"])
def test_a_missing_required_run_flag_exits_2_naming_it(
    missing: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--bootstrap-servers, --group-id and --db are required (unless set in the environment)."""
    argv = run_args(tmp_path / "w.duckdb")
    at = argv.index(missing)
    del argv[at : at + 2]
    assert missing in exits(argv, capsys, 2)


def test_no_command_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    """Without run or query, exit 2 with one line."""
    assert "required" in exits([], capsys, 2)


# Settings the delivery guarantee depends on (CONTRACT §4), plus ones it obviously needs:
# where to connect, where to start, and which member this is.
GUARANTEE_OPTIONS = [
    "enable.auto.commit",
    "enable.auto.offset.store",
    "isolation.level",
    "group.id",
    "partition.assignment.strategy",
    "group.instance.id",
    "auto.offset.reset",
    "bootstrap.servers",
]


@pytest.mark.parametrize("key", GUARANTEE_OPTIONS)
def test_an_option_the_guarantee_depends_on_is_refused(
    key: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """--kafka-option may not change a setting the delivery guarantee depends on: exit 2."""
    line = exits(run_args(tmp_path / "w.duckdb", "--kafka-option", f"{key}=x"), capsys, 2)
    assert "--kafka-option" in line
    assert key in line


def test_a_refused_option_in_the_environment_is_refused_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """ORDERS_KAFKA_OPTIONS holds ';'-separated pairs; a refused key among them exits 2."""
    monkeypatch.setenv("ORDERS_KAFKA_OPTIONS", "security.protocol=SSL;enable.auto.commit=true")
    assert "enable.auto.commit" in exits(run_args(tmp_path / "w.duckdb"), capsys, 2)


# -- run: values from the environment -----------------------------------------------------

BAD_ENV = [
    ("ORDERS_BATCH_MAX_SECONDS", "nan", "--batch-max-seconds"),
    ("ORDERS_BATCH_MAX_SECONDS", "soon", "--batch-max-seconds"),
    ("ORDERS_BATCH_MAX_RECORDS", "0", "--batch-max-records"),
    ("ORDERS_STARTUP_TIMEOUT", "inf", "--startup-timeout"),
    ("ORDERS_UNTIL_IDLE", "-1", "--until-idle"),
    ("ORDERS_RETRY_SECONDS", "-inf", "--retry-seconds"),
    ("ORDERS_RETRY_SECONDS", "0", "--retry-seconds"),
    ("ORDERS_REFERENCE_POLL_SECONDS", "nan", "--reference-poll-seconds"),
    ("ORDERS_METRICS_PORT", "99999", "--metrics-port"),
    ("ORDERS_LOG_FORMAT", "xml", "--log-format"),
    ("ORDERS_LOG_LEVEL", "loud", "--log-level"),
]


@pytest.mark.parametrize("case", BAD_ENV, ids=ident)
def test_a_bad_environment_value_names_the_flag_and_the_variable(
    case: tuple[str, str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A bad value read from the environment is one line, exit 2, naming both."""
    variable, value, flag = case
    monkeypatch.setenv(variable, value)
    line = exits(run_args(tmp_path / "w.duckdb"), capsys, 2)
    assert flag in line
    assert f"${variable}" in line


# These values are checked when the settings are built, not when the flag is parsed, so the
# message names the flag but not the variable the value came from (issue 10, deliverable 5).
# Suggested fix: give these flags a parser in consumer/flags.py (orders_common.flags.checked
# over check_bootstrap / check_topic, an is-file check for the CSVs, a not-a-directory check
# for --db), so that add_env_flag's "(from $VAR)" applies; for ORDERS_KAFKA_OPTIONS, name the
# variable in settings_from_args when a refused pair came from it.
SETTINGS_LEVEL_ENV = [
    ("ORDERS_BOOTSTRAP_SERVERS", "nohostport", "--bootstrap-servers"),
    ("ORDERS_TOPIC", "bad topic!", "--topic"),
    ("ORDERS_USERS_CSV", "/nonexistent/users.csv", "--users-csv"),
    ("ORDERS_KAFKA_OPTIONS", "enable.auto.commit=true", "--kafka-option"),
]


@pytest.mark.xfail(
    strict=True,
    reason="bug: values validated in consumer.settings do not name their environment variable",
)
@pytest.mark.parametrize("case", SETTINGS_LEVEL_ENV, ids=ident)
def test_a_bad_environment_value_checked_by_the_settings_names_the_variable(
    case: tuple[str, str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A value refused by the settings, read from the environment, names flag and variable."""
    variable, value, flag = case
    argv = run_args(tmp_path / "w.duckdb")
    if variable == "ORDERS_BOOTSTRAP_SERVERS":
        del argv[1:3]
    if variable == "ORDERS_TOPIC":
        del argv[3:5]
    monkeypatch.setenv(variable, value)
    line = exits(argv, capsys, 2)
    assert flag in line
    assert f"${variable}" in line


def test_a_flag_on_the_command_line_wins_over_a_bad_environment_value(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A variable is only a default: the flag given replaces it, bad or not."""
    monkeypatch.setenv("ORDERS_BATCH_MAX_SECONDS", "nan")
    argv = run_args(tmp_path / "w.duckdb", "--batch-max-seconds", "2")
    args = cli.build_parser().parse_args(argv)
    assert flags.settings_from_args(args).batch.max_seconds == 2.0


def test_help_lists_every_run_flag_with_its_environment_variable(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`run --help` exits 0 and shows, for each table flag, the ORDERS_ variable it reads."""
    with pytest.raises(SystemExit) as caught:
        cli.main(["run", "--help"])
    assert caught.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    tables = (flags.KAFKA, flags.BATCH, flags.REFERENCE, flags.HTTP, flags.LOGGING, (flags.DB,))
    for flag in (f for table in tables for f in table):
        assert flag.name in text
        assert f"$ORDERS_{flag.dest.upper()}" in text


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
        {"user_id": "u-1", "total_sales": Decimal("34.00")},
        {"user_id": "u-2", "total_sales": Decimal("13.75")},
    ]


def test_query_csv_and_table_print_the_same_rows(
    db: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """CSV has a header and an empty field for the NULL channel; the table shows (null)."""
    cli.main(["query", "sales-by-channel", "--db", str(db), "--format", "csv"])
    assert capsys.readouterr().out.splitlines() == [
        "source,total_sales",
        "web,21.00",
        "app,13.75",
        ",13.00",
    ]
    cli.main(["query", "sales-by-channel", "--db", str(db)])
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["source", "total_sales"]
    assert [line.split() for line in table[2:]] == [
        ["web", "21.00"],
        ["app", "13.75"],
        ["(null)", "13.00"],
    ]


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


# -- run: failures at run time ------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.mark.usefixtures("process_state")
def test_an_unreachable_broker_exits_1_with_one_line_after_the_startup_timeout(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Nothing listens on the bootstrap port: exit 1, one stderr line saying Kafka cannot be
    reached; the logs on stdout are JSON lines recording the failure."""
    db = tmp_path / "w.duckdb"
    argv = run_args(
        db, "--startup-timeout", "1", "--log-format", "json", "--metrics-port", str(free_port())
    )
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 1
    out, err = capsys.readouterr()
    assert len(err.strip().splitlines()) == 1, err
    assert "cannot reach Kafka" in err
    events = [json.loads(line)["event"] for line in out.splitlines()]
    assert "consumer_failed" in events
    # The database was closed on the way out: this process can open it again, read-only.
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM kafka_offsets").fetchall() == [(0,)]


@pytest.mark.usefixtures("process_state")
def test_run_on_a_database_another_process_holds_exits_1_naming_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """One consumer process per file: the second exits 1, one line naming the holder's PID."""
    db = warehouse_with_orders(tmp_path / "w.duckdb")
    with held_by_another_process(db) as pid:
        line = exits(run_args(db, "--log-format", "json"), capsys, 1)
    assert f"PID {pid}" in line


@pytest.mark.usefixtures("process_state")
def test_a_bad_fault_plan_exits_2_before_anything_starts(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A malformed ORDERS_FAULTS is a configuration error naming the variable; no file made."""
    monkeypatch.setenv("ORDERS_FAULTS", "explode@1")
    db = tmp_path / "w.duckdb"
    assert "ORDERS_FAULTS" in exits(run_args(db, "--log-format", "json"), capsys, 2)
    assert not db.exists()


@pytest.mark.usefixtures("process_state")
@pytest.mark.parametrize(
    ("error", "shown"),
    [
        (OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
        (RuntimeError("boom"), "unexpected RuntimeError: boom"),
    ],
)
def test_an_unexpected_failure_is_one_line_and_exit_1(
    error: Exception,
    shown: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """OS errors and bugs alike end as one stderr line and exit 1, never a traceback there."""

    def fail(settings: Any) -> None:
        raise error

    monkeypatch.setattr(wiring, "run", fail)
    assert shown in exits(run_args(tmp_path / "w.duckdb", "--log-format", "json"), capsys, 1)
