"""`maintain` and `run --maintain-every`: their flags, and the retry of a conflicting step."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import duckdb
import pytest

from consumer.errors import DatabaseError
from consumer.warehouse.maintenance import MaintainSettings, Report, _Steps, duration
from tests.unit.cli.clikit import exits, run_args

CONFLICT = (
    "TransactionContext Error: Failed to commit: Failed to commit DuckLake transaction.\n"
    'Transaction conflict - attempting to compact table with index "3" - but another '
    "transaction has deleted from it"
)


class FlakyCommit:
    """A connection whose first ``failures`` COMMITs raise ``error``."""

    def __init__(self, failures: int, error: duckdb.Error) -> None:
        self.failures, self.error = failures, error
        self.calls: list[str] = []

    def execute(self, sql: str, *_: Any) -> FlakyCommit:
        self.calls.append(sql)
        if sql == "COMMIT" and self.failures:
            self.failures -= 1
            raise self.error
        return self

    def fetchall(self) -> list[tuple[Any, ...]]:
        return [("main", "fact_sales", 12, 1)]


def test_a_step_that_meets_a_commit_conflict_is_redone(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two conflicts, then success: the step's rows come back and the conflicts are counted."""
    monkeypatch.setattr("time.sleep", lambda _s: None)
    con = FlakyCommit(2, duckdb.TransactionException(CONFLICT))
    report = Report()
    rows = _Steps(con, MaintainSettings(), report)("merge", "fact_sales", "merge()")  # type: ignore[arg-type]
    assert rows == [("main", "fact_sales", 12, 1)]
    assert report.conflicts == 2 and con.calls.count("CALL merge()") == 3


def test_a_step_gives_up_after_its_attempts_and_other_errors_are_not_retried(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Conflicts past the attempts, and any other error at once, end in one error line."""
    monkeypatch.setattr("time.sleep", lambda _s: None)
    settings = MaintainSettings(conflict_attempts=3)
    always = FlakyCommit(99, duckdb.TransactionException(CONFLICT))
    with pytest.raises(Exception, match="maintenance step merge of t failed") as caught:
        _Steps(always, settings, Report())("merge", "t", "m()")  # type: ignore[arg-type]
    assert "\n" not in str(caught.value) and always.calls.count("CALL m()") == 3
    broken = FlakyCommit(1, duckdb.IOException("disk full"))
    with pytest.raises(DatabaseError):
        _Steps(broken, settings, Report())("merge", "t", "m()")  # type: ignore[arg-type]
    assert broken.calls.count("CALL m()") == 1


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172800)]
)
def test_durations_read_as_a_data_engineer_writes_them(text: str, seconds: int) -> None:
    """--older-than accepts plain seconds and s/m/h/d suffixes."""
    assert duration(text) == timedelta(seconds=seconds)


def test_maintain_without_a_catalog_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    """A DuckDB file needs no maintenance: `maintain` without --catalog is a usage error."""
    assert "--catalog" in exits(["maintain"], capsys, 2)


def test_a_bad_older_than_exits_2_naming_it(capsys: pytest.CaptureFixture[str]) -> None:
    """An unreadable duration is refused before anything is attached."""
    line = exits(["maintain", "--catalog", "postgres:host=x", "--older-than", "soon"], capsys, 2)
    assert "--older-than" in line and "soon" in line


def test_maintain_every_goes_with_a_lake_only(capsys: pytest.CaptureFixture[str]) -> None:
    """`run --db F --maintain-every 60` is refused: only a lake is maintained."""
    line = exits(run_args("w.duckdb", "--maintain-every", "60"), capsys, 2)
    assert "--maintain-every" in line
