"""The dashboard in headless Chromium against a real consumer (interface §7, issue 13): a simulated
stream on a real broker, a consumer serving ``--metrics-port``, and the page's charts compared
with ``query NAME --format json`` run as a CLI while the consumer holds the file. The page and
the ``report --html`` file make no request off the machine."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.admin import AdminClient

from tests import chromium
from tests.harness import ROOT, consumer_command, consumer_env, create_topic, query_json
from tests.integration.simcli import publish_cli
from tools.localkafka import free_port

pytestmark = pytest.mark.integration

WAIT_SECONDS = 90.0
TOP_N = 10  # the page's default limit
REPORT_KEYS = {
    "top-users": ("user_id", "total_sales"),
    "top-products": ("sku", "units_sold"),
    "top-countries": ("country", "total_sales"),
    "sales-by-channel": ("source", "total_sales"),
}


@dataclass(frozen=True)
class Live:
    url: str
    db: Path
    workdir: Path
    records: int


def stats(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/stats", timeout=5) as r:
            value: dict[str, Any] = json.loads(r.read())
            return value
    except OSError:
        return None


@pytest.fixture(scope="module")
def live(
    kafka_bootstrap: str, kafka_admin: AdminClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """A consumer that has read a 1,500-order simulated stream and keeps running."""
    workdir = tmp_path_factory.mktemp("dashboard")
    topic = create_topic(kafka_admin, partitions=3, prefix="dash")
    ref = workdir / "reference"
    summary = publish_cli(
        kafka_bootstrap, topic, workdir / "state", "--orders", "1500", "--seed", "31",
        "--reference-dir", str(ref),
    )  # fmt: skip
    port, db = free_port(), workdir / "warehouse.duckdb"
    command = consumer_command(
        kafka_bootstrap, topic, f"g-{uuid.uuid4().hex[:12]}", db, "--metrics-port", str(port),
        "--users-csv", str(ref / "users.csv"), "--products-csv", str(ref / "products.csv"),
    )  # fmt: skip
    with (workdir / "consumer.log").open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=consumer_env())
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            now = stats(port)
            settled = now and now["lag"] and not any(now["lag"].values())
            if settled and sum(now["records"].values()) == summary["records"]:
                break
            assert proc.poll() is None, (workdir / "consumer.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"not settled: {now}"
            time.sleep(0.3)
        yield Live(f"http://127.0.0.1:{port}/", db, workdir, summary["records"])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
        for future in kafka_admin.delete_topics([topic, f"{topic}.dlq"]).values():
            future.exception(timeout=30)


def sql_json(db: Path, query: str) -> list[dict[str, Any]]:
    """``consumer sql QUERY --format json`` (through the running consumer's local channel)."""
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "sql", query, "--db", str(db), "--format", "json"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def assert_reports_drawn(page: chromium.Page, db: Path) -> None:
    """Each report chart shows the rows of `query NAME --format json`, figures formatted."""
    for name, (key, value) in REPORT_KEYS.items():
        rows = query_json(db, name, None if name == "sales-by-channel" else TOP_N)
        assert rows, f"{name} is empty: nothing to compare"
        drawn = page.rendered(f"chart-{name}")
        assert drawn["keys"] == [row[key] for row in rows], name
        assert drawn["values"] == [row[value] for row in rows], name
        money = value == "total_sales"
        texts = [f"{row[value]:,.2f}" if money else f"{row[value]:,}" for row in rows]
        assert drawn["texts"] == texts, name


def assert_rejects_drawn(page: chromium.Page, db: Path) -> None:
    by_reason = sql_json(db, "SELECT reason, count(*) AS n FROM rejected_events GROUP BY reason")
    drawn = page.rendered("chart-rejects")
    assert by_reason, "the simulated stream should hold rejects"
    assert dict(zip(drawn["keys"], drawn["values"], strict=True)) == {
        row["reason"]: row["n"] for row in by_reason
    }


def test_the_live_dashboard_draws_the_numbers_of_query(live: Live) -> None:
    """Four report charts, rejects, lag and throughput drawn; the reports equal `query`'s JSON."""
    page = chromium.load(live.url, live.workdir)
    assert page.elements["body"].attrs.get("data-ready") == "true", page.dom[-2000:]
    charts = [i for i, e in page.elements.items() if i.startswith("chart-")]
    with_data = [i for i in charts if page.rendered(i)["values"]]
    assert len(with_data) >= 4 and len(charts) == 7, with_data
    assert_reports_drawn(page, live.db)
    assert_rejects_drawn(page, live.db)
    lag = page.rendered("chart-lag")
    assert (lag["keys"], lag["values"]) == (["0", "1", "2"], [0, 0, 0])
    loaded = sql_json(live.db, "SELECT count(*) AS n FROM dim_order")[0]["n"]
    assert page.elements["tile-loaded"].text == f"{loaded:,}"
    assert len(page.rendered("chart-throughput")["values"]) >= 1


def test_the_live_dashboard_requests_nothing_off_the_machine(live: Live) -> None:
    """Every request the page makes goes to 127.0.0.1, and its files name no other host."""
    page = chromium.load(live.url, live.workdir)
    urls = {url for url, _ in page.requests}
    assert {live.url + "api/stats", live.url + "assets/chart.umd.min.js"} <= urls, urls
    assert page.hosts() == {"127.0.0.1"}, page.requests
    for path in ("", "assets/dashboard.js", "assets/dashboard.css"):
        with urllib.request.urlopen(live.url + path, timeout=10) as response:
            assert not chromium.ABSOLUTE_URL.findall(response.read().decode()), path


def test_report_html_from_a_running_consumer_renders_offline(live: Live) -> None:
    """`report --html` while the consumer holds the file: opened from file://, no request at
    all, the same numbers as `query`, and the warehouse totals in the tiles."""
    out = live.workdir / "shared" / "dashboard.html"
    out.parent.mkdir(exist_ok=True)
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "report", "--html", str(out), "--db", str(live.db)],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    screenshot = out.with_suffix(".png")
    chromium.load(out.as_uri(), live.workdir, screenshot=screenshot)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = chromium.load(out.as_uri(), live.workdir)
    assert page.elements["body"].attrs.get("data-ready") == "true"
    assert [url for url, _ in page.requests if not url.startswith("file:")] == []
    assert_reports_drawn(page, live.db)
    assert_rejects_drawn(page, live.db)
    totals = sql_json(
        live.db,
        "SELECT (SELECT count(*) FROM dim_order) AS loaded, "
        "(SELECT count(*) FROM dropped_duplicates) AS duplicate, "
        "(SELECT count(*) FROM rejected_events) AS rejected",
    )[0]
    assert sum(totals.values()) == live.records
    for name, count in totals.items():
        assert page.elements[f"tile-{name}"].text == f"{count:,}"
