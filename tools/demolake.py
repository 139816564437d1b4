"""``make demo-lake``: three consumers of one group write one DuckLake warehouse (catalog in the
local PostgreSQL, Parquet files under ./data/lake, or with ``--s3`` (``make demo-lake S3=1``) in
a bucket of the local S3 server, ``make s3-up``) while a simulator publishes the orders and the
change topics of users, products and rates, and the reports are read while they write; then
the final reports (as was and as is, in USD and EUR, over time), an audit, the batches redone
after a conflict by cause, and a maintenance pass.

The members' JSON logs go to ./data/lake-demo/member-N.log; this prints what a user would type
and a summary of each member. Run again, it publishes the same stream again: every record is
then a re-send, and the reports do not change (like ``make demo``).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import duckdb
from confluent_kafka.admin import AdminClient, NewTopic  # type: ignore[attr-defined]

from consumer.warehouse.extensions import load_extensions
from consumer.warehouse.objectstore import S3Settings
from tools.locals3 import LocalS3

ROOT = Path(__file__).resolve().parent.parent
MEMBERS = 3
REPORTS = (
    ("top-users",), ("top-products",), ("top-countries",), ("top-countries", "--as-is"),
    ("top-countries", "--currency", "EUR"), ("sales-by-channel",),
    ("sales-over-time", "--grain", "week"), ("unconverted-sales",),
)  # fmt: skip
LIVE_SQL = (
    "SELECT count(*) AS orders_loaded, (SELECT count(*) FROM fact_sales) AS fact_rows, "
    "(SELECT count(*) FROM load_batches) AS batches FROM dim_order"
)


def create_database(server: str, name: str, *, fresh: bool) -> None:
    """CREATE DATABASE unless it exists, through DuckDB's postgres extension (no psql); with
    ``fresh``, drop it first (its Parquet files are gone: ``make clean``, or a first run)."""
    con = duckdb.connect()
    try:
        load_extensions(con)
        con.execute(f"ATTACH '{server}' AS pg (TYPE postgres)")
        found = con.execute(
            "SELECT 1 FROM postgres_query('pg', 'SELECT datname FROM pg_database') "
            "WHERE datname = ?",
            [name],
        ).fetchall()
        if found and fresh:
            con.execute(
                "CALL postgres_execute('pg', ?, use_transaction := false)",
                [f'DROP DATABASE "{name}" WITH (FORCE)'],
            )
            print(f"dropped the catalog database {name}: its data files are gone")
        if not found or fresh:
            con.execute(
                "CALL postgres_execute('pg', ?, use_transaction := false)",
                [f'CREATE DATABASE "{name}"'],
            )
            print(f"created the catalog database {name}")
    finally:
        con.close()


def s3_lake(bucket: str) -> tuple[str, dict[str, str], bool]:
    """The demo's data path in a bucket of the local S3 server (``make s3-up``), the members'
    environment for it, and whether the lake has files there already."""
    server = LocalS3.default()
    if server.pid() is None:
        raise SystemExit("demolake: no local S3 server runs: make s3-up (or make demo-lake S3=1)")
    server.create_bucket(bucket)
    env = server.env()
    data_path = f"s3://{bucket}/lake"
    con = duckdb.connect()
    try:
        load_extensions(con, remote=True)
        con.execute(S3Settings.from_env(env).secret_sql())
        found = con.execute("SELECT count(*) FROM glob(?)", [f"{data_path}/**"]).fetchone()
    finally:
        con.close()
    exports = " ".join(f"{k}={v}" for k, v in env.items() if k != "AWS_SECRET_ACCESS_KEY")
    print(f"$ export {exports}" + (" AWS_SECRET_ACCESS_KEY=..." if server.credentials else ""))
    return data_path, env, bool(found and found[0])


def create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic in admin.list_topics(timeout=30).topics:
        return
    admin.create_topics([NewTopic(topic, num_partitions=partitions, replication_factor=1)])[
        topic
    ].result(timeout=30)


def show(command: list[str]) -> None:
    names = {"consumer": "orders-consumer", "producer_sim": "orders-sim"}
    shown = [names.get(c, c) for c in command[2:]]
    print("$ " + shlex.join(shown), flush=True)


def cli(*args: str) -> list[str]:
    return [sys.executable, "-m", *args]


def events(log: Path) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out


def member_summary(n: int, log: Path) -> str:
    seen = events(log)
    owned: list[int] = []
    for event in seen:
        if event.get("event") in ("partitions_assigned", "partitions_revoked"):
            owned = event.get("owned", owned) if event["event"] == "partitions_assigned" else owned
    stopped = next((e for e in seen if e.get("event") == "consumer_stopped"), {})
    batches = [e for e in seen if e.get("event") == "batch_committed"]
    retries = sum(1 for e in seen if e.get("event") == "retrying")
    passes = [e for e in seen if e.get("event") == "maintenance_done"]
    writes = sorted(e["write_ms"] for e in batches) or [0.0]
    return (
        f"member-{n}: partitions {owned}, {stopped.get('batches', len(batches))} batches, "
        f"{stopped.get('records', 0):,} records ({stopped.get('loaded', 0):,} loaded, "
        f"{stopped.get('duplicates', 0):,} duplicates, {stopped.get('rejected', 0):,} rejected), "
        f"lake write+commit p50 {writes[len(writes) // 2]:.0f} ms, {retries} retried conflicts, "
        f"{len(passes)} maintenance passes"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.demolake", description=__doc__)
    parser.add_argument("--bootstrap-servers", default="127.0.0.1:9092")
    parser.add_argument("--postgres-port", type=int, default=5432)
    parser.add_argument("--database", default="orders_demo_lake")
    parser.add_argument("--topic", default="orders-lake")
    parser.add_argument("--orders", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rate", type=float, default=1_000.0, help="records/s published")
    parser.add_argument("--data", type=Path, default=ROOT / "data")
    parser.add_argument(
        "--s3", action="store_true", help="the Parquet files in a bucket of the local S3 server"
    )
    parser.add_argument("--bucket", default="orders-demo", help="the bucket (with --s3)")
    args = parser.parse_args(argv)

    # (relative as given: the commands shown then carry no path of this machine)
    data, bootstrap = args.data, args.bootstrap_servers
    logs, reference = data / "lake-demo", data / "reference"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    if args.s3:
        data_path, s3_env, found = s3_lake(args.bucket)
        env |= s3_env
        fresh, database = not found, f"{args.database}_s3"
    else:
        data_path, fresh, database = str(data / "lake"), not (data / "lake").exists(), args.database
    changes = {kind: f"{args.topic}.{kind}" for kind in ("users", "products", "fx")}
    topics = [flag for kind, topic in changes.items() for flag in (f"--{kind}-topic", topic)]
    server = f"host=127.0.0.1 port={args.postgres_port} user=postgres"
    create_database(f"{server} dbname=postgres", database, fresh=fresh)
    catalog = ["--catalog", f"postgres:{server} dbname={database}"]
    lake = [*catalog, "--data-path", data_path]
    create_topic(bootstrap, args.topic, MEMBERS)
    publish = cli(
        "producer_sim", "publish", "--bootstrap-servers", bootstrap, "--topic", args.topic,
        "--orders", str(args.orders), "--seed", str(args.seed), "--reference-dir",
        str(reference), *topics, "--rate", str(args.rate), "--log-format", "json",
        "--progress", "never",
    )  # fmt: skip
    members = []
    print(f"\n== three members of group orders-demo-lake, logs in {logs}/member-N.log")
    for n in range(1, MEMBERS + 1):
        command = cli(
            "consumer", "run", "--bootstrap-servers", bootstrap, "--topic", args.topic,
            "--group-id", "orders-demo-lake", "--group-instance-id", "none", *lake, *topics,
            "--batch-max-seconds", "1", "--maintain-every", "10", "--log-format", "json",
        )  # fmt: skip
        show(command)
        log = logs / f"member-{n}.log"
        with log.open("wb") as out:
            members.append(
                (n, log, subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env))
            )
        if n == 1:
            # The first member creates the lake's tables; the others join once they exist.
            wait_for(log, "consumer_started", members[0][2])
    wait_for_assignments([log for _, log, _ in members], members)
    print(f"\n== publishing {args.orders:,} orders at {args.rate:,.0f} records/s")
    show(publish)
    published = logs / "publisher.log"
    with published.open("wb") as out:
        publisher = subprocess.Popen(
            publish, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
    started = time.monotonic()
    while not all_committed(publisher, published, [log for _, log, _ in members]):
        if any(p.poll() is not None for _, _, p in members) or time.monotonic() > started + 600:
            break
        print(f"\n== while they write (t={time.monotonic() - started:.0f}s)", flush=True)
        for command in (
            cli("consumer", "sql", LIVE_SQL, *catalog),
            cli("consumer", "query", "top-users", *catalog, "--limit", "3"),
        ):
            show(command)
            subprocess.run(command, env=env, check=False)
        time.sleep(1)
    publisher.wait()
    print("\n== every record is committed: SIGTERM to the members (they drain and exit 0)")
    for _, _, process in members:
        process.send_signal(signal.SIGTERM)
    for _, _, process in members:
        process.wait(timeout=120)
    failed = [n for n, _, p in members if p.returncode != 0]
    print("\n== members")
    for n, log, _ in members:
        print(member_summary(n, log))
    if failed:
        for n, log, _ in members:
            if n in failed:
                print(f"member-{n} failed; the end of its log:\n{log.read_text()[-2000:]}")
        return 1
    print("\n== batches redone after a conflict, by cause")
    print(redone([log for _, log, _ in members]))
    print("\n== the final reports")
    for report in REPORTS:
        command = cli("consumer", "query", *report, *catalog)
        show(command)
        subprocess.run(command, env=env, check=True)
    print("\n== audit and a maintenance pass")
    audit = cli("consumer", "audit", "--bootstrap-servers", bootstrap, "--topic", args.topic)
    show([*audit, *catalog])
    subprocess.run([*audit, *catalog], env=env, check=True)
    maintain = cli("consumer", "maintain", *catalog, "--older-than", "0s", "--log-format", "json")
    show(maintain)
    done = subprocess.run(maintain, env=env, check=True, capture_output=True, text=True)
    for event in map(json.loads, done.stdout.splitlines()):
        if event.get("event") == "maintenance_done":
            print(
                f"files {event['files_before']} -> {event['files_after']} "
                f"({'on the bucket' if args.s3 else 'on disk'} {event['on_disk_before']} -> "
                f"{event['on_disk_after']}), "
                f"{event['snapshots_expired']} snapshots expired, in {event['elapsed_s']}s"
            )
    return 0


def all_committed(publisher: subprocess.Popen[bytes], published: Path, logs: list[Path]) -> bool:
    """Whether the publisher is done and the members' commits hold every record it sent."""
    if publisher.poll() is None:
        return False
    summary = [e for e in events(published) if e.get("event") == "publish_summary"]
    sent = int(summary[-1]["records"]) if summary else 0
    changes = sum(summary[-1].get("reference_by_kind", {}).values()) if summary else 0
    committed = [e for log in logs for e in events(log) if e.get("event") == "batch_committed"]
    orders = sum(int(e["records"]) for e in committed)
    reference = sum(int(e.get("reference_records", 0)) for e in committed)
    return orders >= sent and reference >= changes


def redone(logs: list[Path]) -> str:
    """The batches redone after a conflict, counted by the table or the cause DuckLake names."""
    causes: dict[str, int] = {}
    for log in logs:
        for event in events(log):
            if event.get("event") == "retrying" and event.get("operation") == "warehouse_write":
                error = str(event.get("error", ""))
                cause = error.split("Transaction conflict - ", 1)[-1][:90] if error else "?"
                causes[cause] = causes.get(cause, 0) + 1
    if not causes:
        return "none"
    return "\n".join(f"{n} x {cause}" for cause, n in sorted(causes.items(), key=lambda c: -c[1]))


def wait_for(log: Path, event: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        if any(e.get("event") == event for e in events(log)):
            return
        time.sleep(0.3)


def wait_for_assignments(logs: list[Path], members: list[Any], timeout: float = 90.0) -> None:
    """Until every member owns a partition (so the run shows three writers from the start)."""
    deadline, last = time.monotonic() + timeout, -1
    while time.monotonic() < deadline:
        owners = 0
        for log in logs:
            assigned = [e for e in events(log) if e.get("event") == "partitions_assigned"]
            owners += bool(assigned and assigned[-1].get("owned"))
        if owners != last:
            print(f"  {owners} of {len(logs)} members own partitions", flush=True)
            last = owners
        if owners == len(logs) or any(p.poll() is not None for _, _, p in members):
            return
        time.sleep(0.5)


if __name__ == "__main__":
    sys.exit(main())
