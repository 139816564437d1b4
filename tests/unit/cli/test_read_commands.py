"""The read commands in-process: ``sql``, ``report --html`` and ``audit`` over a real file."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from consumer.cli import main
from consumer.commands import audit
from tests.unit.commands.test_audit import Reader
from tests.unit.warehouse.batchkit import ORDERS, TOPIC, warehouse_with_orders

# `audit` configures logging for the process: keep no logger bound to this test's stdout.
pytestmark = pytest.mark.usefixtures("process_state")


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = int(exit_.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_sql_prints_one_read_in_each_format_and_refuses_a_write(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """JSON, CSV and table output of one SELECT; a DELETE is exit 2 with one line."""
    db = str(warehouse_with_orders(tmp_path / "w.duckdb"))
    code, out, _ = run(["sql", "SELECT count(*) AS n FROM dim_order", "--db", db, "--format",
                        "json"], capsys)  # fmt: skip
    assert code == 0 and json.loads(out)[0]["n"] > 0
    code, out, _ = run(["sql", "SELECT 1 AS one", "--db", db, "--format", "csv"], capsys)
    assert code == 0 and out.splitlines() == ["one", "1"]
    code, _, err = run(["sql", "DELETE FROM dim_order", "--db", db], capsys)
    assert code == 2 and err.count("\n") == 1 and "only reads" in err


def test_report_html_writes_one_file_with_the_reports_data(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The file embeds the same rows as ``query --format json`` and says what it wrote."""
    db = str(warehouse_with_orders(tmp_path / "w.duckdb"))
    page = tmp_path / "dashboard.html"
    code, _, err = run(["report", "--html", str(page), "--db", db], capsys)
    assert code == 0 and "wrote" in err
    html = page.read_text()
    code, out, _ = run(["query", "top-users", "--db", db, "--format", "json", "--limit", "10"],
                       capsys)  # fmt: skip
    first_user = json.loads(out)[0]["user_id"]
    assert first_user in html and "<script" in html and "http://" not in html
    code, _, err = run(["report", "--html", str(page), "--db", db, "--since", "x"], capsys)
    assert code == 2 and "not an ISO date" in err


def test_audit_prints_the_table_and_exits_1_naming_a_missing_offset(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Complete: exit 0 and a table; a deleted order: exit 1 and its offset on stderr."""
    monkeypatch.setattr(audit, "TopicReader", Reader)
    monkeypatch.setattr(audit, "AdminClient", lambda config: None)
    monkeypatch.setattr(audit.cluster, "topic_id", lambda admin, topic: None)
    db = warehouse_with_orders(tmp_path / "w.duckdb")
    argv = ["audit", "--bootstrap-servers", "127.0.0.1:9", "--topic", TOPIC, "--db", str(db)]
    code, out, _ = run(argv, capsys)
    assert code == 0 and "complete" in out and str(len(ORDERS)) in out

    with duckdb.connect(str(db)) as con:
        con.execute("DELETE FROM dim_order WHERE kafka_offset = 0")
    code, out, err = run([*argv, "--format", "json"], capsys)
    assert code == 1 and json.loads(out)[0]["missing"] == [0]
    assert "partition 0: 1 missing: 0" in err
