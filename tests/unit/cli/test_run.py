"""`run` failing at run time, in-process through ``consumer.cli.main(argv)``: an unreachable
broker, a database another process holds, a bad fault plan, and unexpected errors -- each one
line on stderr and the documented exit code."""

from __future__ import annotations

import errno
import json
import socket
import sys
from pathlib import Path
from typing import Any

import duckdb
import pytest

from consumer import cli, core, wiring
from tests.unit.cli.clikit import exits, run_args
from tests.unit.warehouse.batchkit import held_by_another_process, warehouse_with_orders

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


@pytest.mark.usefixtures("process_state")
@pytest.mark.parametrize("extension", ["as built", "missing"])
def test_the_startup_line_says_which_parse_tier_runs(
    extension: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """consumer_started names the tier: "native" where the extension file is in consumer/core
    (make install built it) and imports, "python" where it does not."""
    built = any(Path(core.__file__).parent.glob("_native.*.so"))
    if extension == "missing":
        monkeypatch.setitem(sys.modules, "consumer.core._native", None)  # import fails
    expected = "native" if built and extension == "as built" else "python"
    argv = run_args(tmp_path / "w.duckdb", "--startup-timeout", "1", "--log-format", "json")
    with pytest.raises(SystemExit):
        cli.main(argv)
    out = capsys.readouterr().out
    (started,) = [e for e in map(json.loads, out.splitlines()) if e["event"] == "consumer_started"]
    assert started["parse_tier"] == expected
