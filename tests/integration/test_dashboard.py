"""The dashboard in headless Chromium against a real consumer (interface §7, issues 13 and 25): a
simulated stream with its change topics (users who move, rates with weekend gaps, MXN without
rates) on a real broker, a consumer serving ``--metrics-port``, and the page's charts compared
with ``query NAME --format json`` run as a CLI while the consumer holds the file. The reader's
choices (currency, grain, as is) are made in the page's own controls, in one browser session
driven over the DevTools protocol. The page and the ``report --html`` file make no request off
the machine."""

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
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import pytest
from confluent_kafka.admin import AdminClient

from tests import chromium
from tests.harness import ROOT, consumer_command, consumer_env, create_topic
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
EVERY_ROW = ("sales-by-channel", "sales-over-time", "unconverted-sales")
REFERENCE_STREAMS = ("users", "products", "fx")
DEFAULT_OPTIONS = "currency=USD&as_is=0&grain=day"


@dataclass(frozen=True)
class Live:
    url: str
    topic: str
    port: int
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


def sql_json(db: Path, query: str) -> list[dict[str, Any]]:
    """``consumer sql QUERY --format json`` (through the running consumer's local channel)."""
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "sql", query, "--db", str(db), "--format", "json"],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout)
    return rows


def report(db: Path, name: str, *flags: str) -> list[dict[str, Any]]:
    """``consumer query NAME --format json`` with the page's limit and ``flags``, exact decimals."""
    limit = () if name in EVERY_ROW else ("--limit", str(TOP_N))
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "query", name, "--db", str(db), "--format", "json",
         *limit, *flags],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout, parse_float=Decimal)
    return rows


@pytest.fixture(scope="module")
def live(
    kafka_bootstrap: str, kafka_admin: AdminClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """A consumer that has read a 1,500-order simulated stream and its change topics (users,
    products, rates), and keeps running."""
    workdir = tmp_path_factory.mktemp("dashboard")
    topic = create_topic(kafka_admin, partitions=3, prefix="dash")
    streams = {stream: f"{topic}.{stream}" for stream in REFERENCE_STREAMS}
    flags = [arg for s, t in streams.items() for arg in (f"--{s}-topic", t)]
    summary = publish_cli(
        kafka_bootstrap, topic, workdir / "state", "--orders", "1500", "--seed", "31", *flags
    )
    by_kind = summary["reference_by_kind"].items()
    published = {
        t: sum(n for kind, n in by_kind if kind.startswith(f"{s}:")) for s, t in streams.items()
    }
    port, db = free_port(), workdir / "warehouse.duckdb"
    group = f"g-{uuid.uuid4().hex[:12]}"
    command = consumer_command(
        kafka_bootstrap, topic, group, db, "--metrics-port", str(port), *flags
    )
    with (workdir / "consumer.log").open("wb") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=consumer_env())
    try:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            now = stats(port)
            settled = now and now["lag"] and not any(now["lag"].values())
            if settled and sum(now["records"].values()) == summary["records"]:
                # ... and every record of the change topics is in the warehouse's ledger.
                read = sql_json(
                    db, "SELECT topic, sum(next_offset) AS n FROM kafka_offsets GROUP BY topic"
                )
                if {
                    row["topic"]: row["n"] for row in read if row["topic"] in published
                } == published:
                    break
            assert proc.poll() is None, (workdir / "consumer.log").read_text()[-3000:]
            assert time.monotonic() < deadline, f"not settled: {now}"
            time.sleep(0.3)
        yield Live(f"http://127.0.0.1:{port}/", topic, port, db, workdir, summary["records"])
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)
        made = [topic, f"{topic}.dlq", *streams.values()]
        for future in kafka_admin.delete_topics(made).values():
            future.exception(timeout=30)


@pytest.fixture(scope="module")
def browser(live: Live) -> Iterator[chromium.Session]:
    with chromium.Session(live.workdir) as session:
        yield session


def settled(browser: chromium.Session, options: str) -> chromium.Page:
    """The page once every card is drawn from the answers for ``options``."""
    browser.wait(
        "document.body !== null && document.body.dataset.ready === 'true' && "
        f"document.body.dataset.options === {json.dumps(options)}"
    )  # fmt: skip
    return browser.page()


def choose(browser: chromium.Session, control: str, value: str) -> str:
    """What a reader does: pick ``value`` in a select (the change event a pick fires)."""
    chosen: str = browser.evaluate(
        f"(() => {{ const s = document.getElementById({json.dumps(control)}); "
        f"s.value = {json.dumps(value)}; s.dispatchEvent(new Event('change')); "
        "return s.value; })()"
    )
    return chosen


def money_texts(rows: list[dict[str, Any]], value: str) -> list[str]:
    return [f"{row[value]:,.2f}" for row in rows]


def assert_reports_drawn(page: chromium.Page, db: Path, currency: str, *flags: str) -> None:
    """Each report card shows the rows of `query NAME --format json` with ``flags``, figures
    formatted, and names the reporting currency on its money axis and in its caption."""
    for name, (key, value) in REPORT_KEYS.items():
        rows = report(db, name, *flags)
        assert rows, f"{name} is empty: nothing to compare"
        drawn = page.rendered(f"chart-{name}")
        assert drawn["keys"] == [row[key] for row in rows], name
        assert drawn["values"] == [row[value] for row in rows], name
        if value == "total_sales":
            assert {row["currency"] for row in rows} == {currency}
            assert drawn["texts"] == money_texts(rows, value), name
            assert drawn["axes"]["x"] == f"total sales ({currency})", name
            assert f"({currency})" in page.elements[f"chart-{name}"].text, name
        else:
            assert drawn["texts"] == [f"{row[value]:,}" for row in rows], name
    over = report(db, "sales-over-time", *flags)
    assert len(over) >= 2, "the stream should span several periods"
    drawn = page.rendered("chart-sales-over-time")
    assert drawn["keys"] == [row["period"] for row in over]
    assert drawn["values"] == [row["total_sales"] for row in over]
    assert drawn["orders"] == [row["orders"] for row in over]
    assert (drawn["axes"]["y"], drawn["axes"]["y1"]) == (f"total sales ({currency})", "orders")
    assert (
        f"{sum(r['total_sales'] for r in over):,.2f} {currency}"
        in page.elements["chart-sales-over-time"].text
    )
    unconverted = report(db, "unconverted-sales", *flags)
    box = page.elements["chart-unconverted-sales"]
    drawn = page.rendered("chart-unconverted-sales")
    assert drawn["keys"] == [row["currency"] for row in unconverted]
    assert drawn["values"] == [row["total"] for row in unconverted]
    assert drawn["lines"] == [row["lines"] for row in unconverted]
    assert ("hidden" in box.attrs) == (not unconverted)
    assert f"Not converted into {currency}" in box.text


def assert_rejects_drawn(page: chromium.Page, db: Path) -> None:
    by_reason = sql_json(db, "SELECT reason, count(*) AS n FROM rejected_events GROUP BY reason")
    drawn = page.rendered("chart-rejects")
    assert by_reason, "the simulated stream should hold rejects"
    assert dict(zip(drawn["keys"], drawn["values"], strict=True)) == {
        row["reason"]: row["n"] for row in by_reason
    }


def test_the_live_dashboard_draws_the_numbers_of_query(
    live: Live, browser: chromium.Session
) -> None:
    """Every card drawn: the reports, sales over time and the unconverted lines in USD equal
    `query`'s JSON; rejects, lag in records and in seconds equal the consumer's stats."""
    browser.open(live.url)
    page = settled(browser, DEFAULT_OPTIONS)
    charts = [i for i, e in page.elements.items() if i.startswith("chart-")]
    with_data = [i for i in charts if page.rendered(i)["values"]]
    assert len(with_data) >= 7 and len(charts) == 10, with_data
    assert_reports_drawn(page, live.db, "USD")
    assert page.rendered("chart-unconverted-sales")["keys"], (
        "MXN has no rates: it stays unconverted"
    )
    assert_rejects_drawn(page, live.db)
    lag = page.rendered("chart-lag")
    assert (lag["keys"], lag["values"]) == (["0", "1", "2"], [0, 0, 0])
    now = stats(live.port)
    assert now is not None
    lag_seconds = page.rendered("chart-lag-seconds")
    assert lag_seconds["keys"] == sorted(now["lag_seconds"], key=int) == ["0", "1", "2"]
    assert lag_seconds["values"] == [now["lag_seconds"][p] for p in lag_seconds["keys"]]
    assert lag_seconds["axes"]["y"].startswith("seconds behind")
    loaded = sql_json(live.db, "SELECT count(*) AS n FROM dim_order")[0]["n"]
    assert page.elements["tile-loaded"].text == f"{loaded:,}"
    assert len(page.rendered("chart-throughput")["values"]) >= 1


def test_the_controls_switch_currency_grain_and_countries_and_the_url_keeps_them(
    live: Live, browser: chromium.Session
) -> None:
    """The currency select offers USD and every currency with rates; picking EUR redraws every
    money card in EUR (rows and axis titles), the grain select redraws sales over time by
    week, the country select as is; each choice is in the URL and survives a reload."""
    browser.open(live.url)
    settled(browser, DEFAULT_OPTIONS)
    rated = sql_json(live.db, "SELECT DISTINCT currency FROM fx_rates")
    offered = browser.evaluate(
        "Array.from(document.getElementById('currency').options, o => o.value)"
    )
    assert offered == sorted({"USD", *(row["currency"] for row in rated)})
    assert "EUR" in offered and "MXN" not in offered, offered

    assert choose(browser, "currency", "EUR") == "EUR"
    page = settled(browser, "currency=EUR&as_is=0&grain=day")
    assert browser.evaluate("location.search") == "?currency=EUR"
    assert_reports_drawn(page, live.db, "EUR", "--currency", "EUR")

    assert choose(browser, "grain", "week") == "week"
    page = settled(browser, "currency=EUR&as_is=0&grain=week")
    weeks = report(live.db, "sales-over-time", "--currency", "EUR", "--grain", "week")
    drawn = page.rendered("chart-sales-over-time")
    assert drawn["keys"] == [row["period"] for row in weeks]
    assert all(date.fromisoformat(week).isoweekday() == 1 for week in drawn["keys"])
    assert drawn["values"] == [row["total_sales"] for row in weeks]
    assert drawn["axes"]["x"] == "week, from its Monday (UTC)"

    as_was = report(live.db, "top-countries", "--currency", "EUR")
    as_is = report(live.db, "top-countries", "--currency", "EUR", "--as-is")
    assert as_was != as_is, "users who moved should change the countries' totals"
    assert page.rendered("chart-top-countries")["values"] == [r["total_sales"] for r in as_was]
    assert choose(browser, "as-is", "1") == "1"
    page = settled(browser, "currency=EUR&as_is=1&grain=week")
    assert page.rendered("chart-top-countries")["values"] == [r["total_sales"] for r in as_is]

    browser.evaluate("document.body.removeAttribute('data-ready')")
    browser.send("Page.reload")
    page = settled(browser, "currency=EUR&as_is=1&grain=week")
    search = browser.evaluate("location.search").removeprefix("?")
    assert dict(parse_qsl(search)) == {"currency": "EUR", "grain": "week", "as_is": "1"}
    controls = browser.evaluate(
        "['currency', 'grain', 'as-is'].map(id => document.getElementById(id).value)"
    )
    assert controls == ["EUR", "week", "1"]
    assert_reports_drawn(page, live.db, "EUR", "--currency", "EUR", "--as-is", "--grain", "week")


def test_the_live_dashboard_requests_nothing_off_the_machine(live: Live) -> None:
    """Every request the page makes goes to 127.0.0.1, and its files name no other host."""
    page = chromium.load(live.url, live.workdir)
    urls = {url for url, _ in page.requests}
    assert {live.url + "api/stats", live.url + "api/currencies", live.url + "assets/charts.js",
            live.url + "assets/chart.umd.min.js"} <= urls, urls  # fmt: skip
    assert page.hosts() == {"127.0.0.1"}, page.requests
    for path in ("", "assets/dashboard.js", "assets/charts.js", "assets/dashboard.css"):
        with urllib.request.urlopen(live.url + path, timeout=10) as response:
            assert not chromium.ABSOLUTE_URL.findall(response.read().decode()), path


def test_report_html_from_a_running_consumer_renders_offline(live: Live) -> None:
    """`report --html --currency GBP --grain week` while the consumer holds the file: opened
    from file://, no request at all, the same numbers as `query` with those options, named on
    the page, and the warehouse totals in the tiles."""
    out = live.workdir / "shared" / "dashboard.html"
    out.parent.mkdir(exist_ok=True)
    options = ("--currency", "GBP", "--grain", "week")
    done = subprocess.run(
        [sys.executable, "-m", "consumer", "report", "--html", str(out), "--db", str(live.db),
         *options],
        capture_output=True, text=True, timeout=120, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    screenshot = out.with_suffix(".png")
    chromium.load(out.as_uri(), live.workdir, screenshot=screenshot)
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    page = chromium.load(out.as_uri(), live.workdir)
    assert page.elements["body"].attrs.get("data-ready") == "true"
    assert page.elements["body"].attrs.get("data-options") == "currency=GBP&as_is=0&grain=week"
    assert [url for url, _ in page.requests if not url.startswith("file:")] == []
    assert_reports_drawn(page, live.db, "GBP", *options)
    assert "money in GBP" in page.elements["options"].text
    assert "--currency GBP --grain week" in page.elements["options"].text
    assert_rejects_drawn(page, live.db)
    totals = sql_json(
        live.db,
        "SELECT (SELECT count(*) FROM dim_order) AS loaded, "
        "(SELECT count(*) FROM dropped_duplicates) AS duplicate, "
        "(SELECT count(*) FROM rejected_events) AS rejected",
    )[0]
    of_orders = sql_json(
        live.db,
        f"SELECT (SELECT count(*) FROM dim_order) + (SELECT count(*) FROM dropped_duplicates "
        f"WHERE topic = '{live.topic}') + (SELECT count(*) FROM rejected_events "
        f"WHERE topic = '{live.topic}') AS n",
    )[0]["n"]
    assert of_orders == live.records  # the rest are records of the change topics
    for name, count in totals.items():
        assert page.elements[f"tile-{name}"].text == f"{count:,}"
