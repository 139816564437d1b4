"""Three consumers of one group on one DuckLake warehouse whose Parquet files are on a real
S3-compatible server (SeaweedFS with credentials, or ORDERS_TEST_S3): SIGKILLs, a member killed
mid-batch, misrouted re-sends, a reader throughout, maintenance, and the S3 server restarted
mid-run. Every scenario ends with the lake equal to the oracle, read back through `query` and
`audit`, and the dead letters complete."""

from __future__ import annotations

import os
import random
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from consumer.warehouse import lakeconn, maintenance
from consumer.warehouse.maintenance import MaintainSettings, file_counts, files_on_disk, maintain
from tests.conftest import S3Server
from tests.harness import log_events
from tests.lakecheck import Reader, assert_complete
from tests.lakeharness import (
    Background,
    Lake,
    Members,
    accounted,
    cli,
    finish,
    killed_at_end,
    placed,
    produce,
    reference_files,
    wait_for,
    wait_until,
    with_misrouted_copies,
)
from tests.reliability.harness import Figures, events
from tests.reliability.streams import hostile_stream

pytestmark = [pytest.mark.integration, pytest.mark.reliability]

PARTITIONS = 6
MEMBERS = 3
# make soak (RELIABILITY_SCALE=soak): the run, 40,000 orders, 6 random SIGKILLs and a
# misrouted copy of every fifth order; make test: small enough for its time budget.
SOAK = os.environ.get("RELIABILITY_SCALE") == "soak"
ORDERS, KILLS, MISROUTED_EVERY, TRICKLE_S = (40_000, 6, 5, 120) if SOAK else (1200, 3, 25, 15)
# Batches of more than DuckLake's 10 inlined rows, so that they write Parquet files to S3.
FLAGS = (
    "--batch-max-records", "300", "--batch-max-seconds", "0.5",
    "--kafka-option", "session.timeout.ms=6000",
)  # fmt: skip
Report = Callable[[Figures], None]


@pytest.fixture
def started() -> Iterator[list[Members]]:
    yield from killed_at_end()


def members_for(bootstrap: str, topic: str, lake: Lake, workdir: Path, *extra: str) -> Members:
    return Members(bootstrap, topic, f"g-{uuid.uuid4().hex[:10]}", lake, workdir, (*FLAGS, *extra))


# Every row of the order and fact tables, in one order: maintenance must change none.
EVERY_ROW = (
    "SELECT 'o', order_id, NULL, amount::VARCHAR FROM dim_order UNION ALL "
    "SELECT 'f', order_id, line_number, unit_price::VARCHAR FROM fact_sales ORDER BY ALL"
)


def orphans(lake: Lake) -> list[str]:
    """Parquet files on the store that no snapshot of the catalog knows (DuckLake's dry run,
    which wants a writable attach)."""
    con = lakeconn.connect(lake.catalog, None, read_only=False)
    try:
        rows = con.execute(
            "FROM ducklake_delete_orphaned_files('lake', dry_run => true, older_than => now())"
        ).fetchall()
    finally:
        con.close()
    return [str(row[0]) for row in rows]


def test_members_on_s3_lose_and_double_nothing_under_kills_and_misrouted_resends(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    lake_catalog: str,
    s3_data_path: str,
    *,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    report: Report,
    started: list[Members],
) -> None:
    """Three members, one of them SIGKILLed inside its first batch with rejects (its Parquet
    files written, not committed), then random SIGKILLs while misrouted copies arrive and a
    reader runs `sql` and `query`. The lake equals the oracle through `query` and `audit`;
    `report --html` writes the dashboard; `maintain` merges the files on the bucket and keeps
    the killed batch's fresh orphans, which a pass deletes once they are old enough; no row
    changes."""
    topic = topic_factory(PARTITIONS)
    lake = Lake(lake_catalog, s3_data_path)
    users, products, ref_flags = reference_files(tmp_path, ORDERS)
    stream = with_misrouted_copies(
        placed(hostile_stream(ORDERS, seed=61), PARTITIONS), PARTITIONS, every=MISROUTED_EVERY
    )
    head, tail = stream[:400], stream[400:]
    produce(kafka_bootstrap, topic, head)  # a backlog: the first batches are full ones
    members = members_for(kafka_bootstrap, topic, lake, tmp_path, *ref_flags)
    started.append(members)
    # Member 0 kills itself in its first batch with rejects, after that batch's inserts.
    members.start(0, faults="kill_during_dlq@" + "+".join(map(str, range(1, 50))))
    for m in range(1, MEMBERS):
        members.start(m)
    reader = Reader(lake)
    trickle = Background(lambda: produce(kafka_bootstrap, topic, tail, seconds=TRICKLE_S))
    trickle.start()
    wait_until("member 0 dies inside a batch", lambda: members.procs[0].poll() is not None, 120)
    members.start(0)
    reader.start()
    rng = random.Random(5)
    figures = Figures("lake on S3: 3 members, SIGKILLs")
    figures.kills["kill mid-batch"] += 1
    for _ in range(KILLS):
        time.sleep(rng.uniform(2.0, 4.0) * (TRICKLE_S / 15) / (KILLS / 3))
        victim = rng.randrange(MEMBERS)
        members.kill(victim)
        figures.kills["random SIGKILL"] += 1
        members.start(victim)
    trickle.join_checked()
    finish(members, lake, len(stream), timeout=1800 if SOAK else 240)
    reader.stop()
    reader.check()
    expected = assert_complete(lake, kafka_bootstrap, topic, users, products)
    assert expected.ambiguous_order_ids, "no order arrived on two partitions"

    page = tmp_path / "lake.html"
    html = cli("report", "--html", str(page), "--catalog", lake.catalog)
    assert html.returncode == 0 and page.stat().st_size > 0, html.stderr
    rows = lake.rows(EVERY_ROW)

    # `maintain` merges on the bucket, and keeps the killed batch's files: they are younger
    # than ten minutes, so they could belong to a batch in flight.
    left = orphans(lake)
    assert left, "the batch killed before its commit left no file on the bucket"
    done = cli("maintain", "--catalog", lake.catalog, "--older-than", "0s", "--log-format", "json")
    assert done.returncode == 0, done.stderr
    summary = next(e for e in log_events(done.stdout) if e["event"] == "maintenance_done")
    assert summary["files_after"] < summary["files_before"], summary
    assert summary["orphans_deleted"] == 0 and sorted(orphans(lake)) == sorted(left)
    # Once they are old enough (here: at once), a pass deletes them from the bucket.
    monkeypatch.setattr(maintenance, "ORPHAN_MIN_AGE", timedelta(0))
    con = lakeconn.connect(lake.catalog, None, read_only=False)
    try:
        # (no member writes any more: the files the merge replaced may go at once too)
        settings = MaintainSettings(older_than=timedelta(0), min_age=timedelta(0))
        deleted = maintain(con, settings).orphans_deleted
        in_catalog, on_store = sum(file_counts(con).values()), files_on_disk(con)
    finally:
        con.close()
    assert deleted == len(left) and not orphans(lake)
    assert on_store == in_catalog, (on_store, in_catalog)
    assert lake.rows(EVERY_ROW) == rows
    figures.records = len(expected.loaded) + len(expected.duplicates) + len(expected.rejected)
    figures.rejected_expected = figures.rejected_actual = len(expected.rejected)
    report(figures)
    files = (summary["files_before"], summary["files_after"])
    print("files", files, "orphans deleted:", deleted, "reads:", len(reader.snapshots))


def test_an_s3_server_restart_mid_run_is_retried_by_every_member_without_loss(
    kafka_bootstrap: str,
    topic_factory: Callable[..., str],
    lake_catalog: str,
    s3_data_path: str,
    *,
    s3_server: S3Server,
    tmp_path: Path,
    report: Report,
    started: list[Members],
) -> None:
    """The S3 server stops for three seconds while three members write: the batches that
    fail on the store are retried, nobody exits, and the lake equals the oracle."""
    if s3_server.local is None:
        pytest.skip("needs the native server, which the test can restart")
    topic = topic_factory(PARTITIONS)
    lake = Lake(lake_catalog, s3_data_path)
    users, products, ref_flags = reference_files(tmp_path, 800)
    stream = placed(hostile_stream(800, seed=71), PARTITIONS)
    members = members_for(kafka_bootstrap, topic, lake, tmp_path, *ref_flags)
    started.append(members)
    for m in range(MEMBERS):
        members.start(m)
    for m in range(MEMBERS):
        wait_for(members.log(m), "consumer_started", timeout=120)
    trickle = Background(lambda: produce(kafka_bootstrap, topic, stream, seconds=12))
    trickle.start()
    wait_until("a fifth of the stream is in", lambda: accounted(lake) > len(stream) / 5, 120, 0.5)
    s3_server.local.stop()
    time.sleep(3.0)
    s3_server.local.start()
    trickle.join_checked()
    finish(members, lake, len(stream))
    retried = members.retries()
    on_store = [
        e["error"]
        for log in members.all_logs()
        for e in events(log)
        if e.get("event") == "retrying" and s3_server.env["ORDERS_S3_ENDPOINT"] in e["error"]
    ]
    assert on_store, f"no batch failed on the store and was retried: {dict(retried)}"
    assert all(len(members.lives[m]) == 1 for m in range(MEMBERS)), "a member was restarted"
    expected = assert_complete(lake, kafka_bootstrap, topic, users, products)
    figures = Figures("lake on S3: server restart")
    figures.records = len(expected.loaded) + len(expected.duplicates) + len(expected.rejected)
    figures.rejected_expected = figures.rejected_actual = len(expected.rejected)
    report(figures)
    print("retries:", dict(retried))
