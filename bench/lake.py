"""The DuckLake warehouse with N members of one group on the bench topic: aggregate records per
second, the lake's commit latency, and the files before and after a maintenance pass (with the
reports' query time before and after it).

Each run gets a fresh catalog database on the local PostgreSQL and a fresh data directory; the
members are real ``orders-consumer run`` processes with JSON logs, timed from the first batch
committed by any member to the last.
"""

from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from subprocess import STDOUT, Popen, run
from typing import Any

import duckdb

from consumer.core.windows import EVERYTHING
from consumer.warehouse import lake
from consumer.warehouse.extensions import load_extensions
from consumer.warehouse.reports import REPORTS, report_rows

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LakeRun:
    members: int
    records: int
    seconds: float
    batches: int
    conflicts_retried: int
    write_p50_ms: float  # the lake transaction, its COMMIT included
    write_p99_ms: float
    kafka_commit_p50_ms: float
    files_before: int
    files_after: int
    on_disk_before: int
    on_disk_after: int
    maintain_seconds: float
    reports_ms_before: float  # the four reports, each the median of three, summed
    reports_ms_after: float

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def server_conninfo() -> str:
    return os.environ.get(
        "ORDERS_BENCH_POSTGRES",
        f"host=127.0.0.1 port={os.environ.get('POSTGRES_PORT', '5432')} user=postgres "
        "dbname=postgres",
    )


def _pg(server: str, sql: str) -> None:
    con = duckdb.connect()
    try:
        load_extensions(con)
        con.execute(f"ATTACH '{server}' AS pg (TYPE postgres)")
        con.execute("CALL postgres_execute('pg', ?, use_transaction := false)", [sql])
    finally:
        con.close()


def _events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        with suppress(ValueError):
            out.append(json.loads(line))
    return out


def _member(run_flags: list[str], log: Path) -> Popen[bytes]:
    command = [sys.executable, "-m", "consumer", "run", *run_flags, "--log-format", "json"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with log.open("wb") as out:
        return Popen(command, stdout=out, stderr=STDOUT, cwd=ROOT, env=env)


def _wait_for(log: Path, event: str, process: Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if any(e.get("event") == event for e in _events(log)):
            return
        time.sleep(0.2)


def report_time(catalog: str) -> float:
    """The four reports on a fresh read-only attach: each the median of three, summed (ms)."""
    con = lake.connect(catalog, None, read_only=True)
    try:
        total = 0.0
        for name in REPORTS:
            timings = []
            for _ in range(3):
                started = time.perf_counter()
                report_rows(con, name, None, EVERYTHING)
                timings.append((time.perf_counter() - started) * 1000)
            total += statistics.median(timings)
        return total
    finally:
        con.close()


def _maintain(catalog: str) -> dict[str, Any]:
    done = run(
        [sys.executable, "-m", "consumer", "maintain", "--catalog", catalog,
         "--older-than", "0s", "--log-format", "json"],
        cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True, text=True,
        check=False,
    )  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"maintain failed: {done.stderr.strip()}")
    summary: list[dict[str, Any]] = [
        e for e in map(json.loads, done.stdout.splitlines()) if e.get("event") == "maintenance_done"
    ]
    return summary[-1]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values) or [0.0]
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def measure(bootstrap: str, topic: str, members: int, workdir: Path | None = None) -> LakeRun:
    """N members of a fresh group on a fresh lake, to the end of the topic; then maintenance."""
    server = server_conninfo()
    name = f"bench_lake_{uuid.uuid4().hex[:10]}"
    _pg(server, f'CREATE DATABASE "{name}"')
    kept = [p for p in server.split() if not p.startswith("dbname=")]
    catalog = "postgres:" + " ".join([*kept, f"dbname={name}"])
    try:
        with tempfile.TemporaryDirectory(dir=workdir) as tmp:
            group, data = f"bench-lake-{uuid.uuid4()}", Path(tmp) / "lake"
            logs = [Path(tmp) / f"member-{n}.log" for n in range(members)]
            flags = [
                "--bootstrap-servers", bootstrap, "--topic", topic, "--group-id", group,
                "--group-instance-id", "none", "--catalog", catalog, "--data-path", str(data),
                "--until-idle", "5", "--no-dlq",
            ]  # fmt: skip
            processes = [_member(flags, logs[0])]
            # The first member creates the lake's tables; the others join once they exist.
            _wait_for(logs[0], "consumer_started", processes[0])
            processes += [_member(flags, log) for log in logs[1:]]
            for process, log in zip(processes, logs, strict=True):
                if process.wait() != 0:
                    raise RuntimeError(f"lake member failed:\n{log.read_text()[-3000:]}")
            seen = [e for log in logs for e in _events(log)]
            commits = sorted((e for e in seen if e.get("event") == "batch_committed"), key=_when)
            if len(commits) < 2:
                raise RuntimeError("too few lake batches to time; use a larger topic")
            before = report_time(catalog)
            maintained = _maintain(catalog)
            after = report_time(catalog)
    finally:
        with suppress(duckdb.Error):
            _pg(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return LakeRun(
        members=members,
        records=sum(int(e["records"]) for e in commits[1:]),
        seconds=_when(commits[-1]) - _when(commits[0]),
        batches=len(commits),
        conflicts_retried=sum(
            e.get("event") == "retrying" and e.get("operation") == "warehouse_write" for e in seen
        ),
        write_p50_ms=_percentile([float(e["write_ms"]) for e in commits], 0.5),
        write_p99_ms=_percentile([float(e["write_ms"]) for e in commits], 0.99),
        kafka_commit_p50_ms=_percentile([float(e["commit_ms"]) for e in commits], 0.5),
        files_before=int(maintained["files_before"]),
        files_after=int(maintained["files_after"]),
        on_disk_before=int(maintained["on_disk_before"]),
        on_disk_after=int(maintained["on_disk_after"]),
        maintain_seconds=float(maintained["elapsed_s"]),
        reports_ms_before=before,
        reports_ms_after=after,
    )  # fmt: skip


def _when(event: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00")).timestamp()
