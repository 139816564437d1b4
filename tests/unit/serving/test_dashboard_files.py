"""The dashboard's files and ``report --html`` without a broker: the page names no host, every
asset it links is served, and the self-contained file embeds exactly ``query``'s JSON for the
options it was made with, survives a product name that is HTML, and renders offline in headless
Chromium (skipped without it), naming its currency and options."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from consumer.serving.assets import ASSETS
from tests import chromium
from tests.harness import ROOT
from tests.unit.serving import smallwarehouse

DASHBOARD = ROOT / "consumer" / "serving" / "dashboard"
OWN_FILES = ("index.html", "dashboard.js", "charts.js", "dashboard.css")
REPORT_KEYS = {
    "top-users": ("user_id", "total_sales"),
    "top-products": ("sku", "units_sold"),
    "top-countries": ("country", "total_sales"),
    "sales-by-channel": ("source", "total_sales"),
}
WINDOW = ("--since", "2025-01-05", "--until", "2025-03-20T00:00:00Z")
# Every line of the small warehouse is in EUR: in EUR nothing is left unconverted.
OPTIONS = ("--currency", "EUR", "--as-is", "--grain", "month")
EVERY_ROW = ("sales-by-channel", "sales-over-time", "unconverted-sales")


class Links(HTMLParser):
    """src and href values, script elements and their text."""

    def __init__(self) -> None:
        super().__init__()
        self.links: list[str] = []
        self.scripts: list[dict[str, str]] = []
        self.texts: dict[str, str] = {}
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.links += [values[k] for k in ("src", "href") if k in values]
        if tag == "script":
            self.scripts.append(values)
            self._in = values.get("id", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in = None

    def handle_data(self, data: str) -> None:
        if self._in:
            self.texts[self._in] = self.texts.get(self._in, "") + data


def consumer_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "consumer", *args],
        capture_output=True, text=True, timeout=60, cwd=ROOT, check=False,
    )  # fmt: skip


def query_rows(db: Path, name: str, *flags: str) -> list[dict[str, Any]]:
    done = consumer_cli("query", name, "--db", str(db), "--format", "json", *flags)
    assert done.returncode == 0, done.stderr
    rows: list[dict[str, Any]] = json.loads(done.stdout, parse_float=Decimal)
    return rows


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return smallwarehouse.build(tmp_path_factory.mktemp("dash") / "warehouse.duckdb")


@pytest.fixture(scope="module")
def page(warehouse: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("page") / "dashboard.html"
    done = consumer_cli(
        "report", "--html", str(out), "--db", str(warehouse), "--limit", "4", *WINDOW, *OPTIONS
    )
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("name", OWN_FILES)
def test_the_dashboard_names_no_host(name: str) -> None:
    """No absolute or protocol-relative URL, nor url(): the page cannot fetch from elsewhere."""
    assert not chromium.ABSOLUTE_URL.findall((DASHBOARD / name).read_text())


def test_every_asset_the_page_links_is_served_and_shipped() -> None:
    """Each link of index.html is data: or assets/NAME with NAME in the server's whitelist."""
    links = Links()
    links.feed((DASHBOARD / "index.html").read_text())
    assets = [link.removeprefix("assets/") for link in links.links if not link.startswith("data:")]
    assert sorted(assets) == sorted(ASSETS)
    assert all((DASHBOARD / name).is_file() for name in assets)
    assert (DASHBOARD / "chart.js-LICENSE.md").read_text().startswith("The MIT License")


def test_report_html_is_one_file_embedding_query_json(page: Path, warehouse: Path) -> None:
    """Nothing linked, the data script holds query's rows, the warehouse totals and rejects."""
    links = Links()
    links.feed(page.read_text())
    assert all(link.startswith("data:") for link in links.links), links.links
    assert not any("src" in script for script in links.scripts)
    data = json.loads(links.texts["orders-data"], parse_float=Decimal)
    names = [*REPORT_KEYS, "sales-over-time", "unconverted-sales"]
    assert sorted(data["reports"]) == sorted(names)
    for name in names:
        flags = ("--limit", "4") if name not in EVERY_ROW else ()
        expected = query_rows(warehouse, name, *flags, *WINDOW, *OPTIONS)
        assert expected or name == "unconverted-sales", f"{name}: the warehouse should fill it"
        assert data["reports"][name] == expected, name
    assert data["options"] == {"currency": "EUR", "as_is": True, "grain": "month"}
    assert data["totals"] == {
        "loaded": smallwarehouse.ORDERS,
        "duplicate": smallwarehouse.DUPLICATES,
        "rejected": len(smallwarehouse.REASONS),
    }
    assert data["rejected_by_reason"] == dict(Counter(smallwarehouse.REASONS))
    assert data["window"] == {"since": "2025-01-05T00:00:00", "until": "2025-03-20T00:00:00"}


def test_a_product_name_that_is_html_stays_text(page: Path) -> None:
    """The name "</script><b>..." cannot end the data script or add an element."""
    text = page.read_text()
    assert "</script><b>" not in text
    links = Links()
    links.feed(text)
    assert len(links.scripts) == 4  # the chart library, the data, the page's two scripts


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (["--since", "soon"], 2, "since 'soon'"),
        (["--limit", "-1"], 2, "limit"),
        (["--db", "/nonexistent/w.duckdb"], 2, "does not exist"),
        (["--html", "/nonexistent/dir/out.html"], 1, "cannot write"),
    ],
)
def test_report_errors_are_one_line(
    warehouse: Path, tmp_path: Path, args: list[str], code: int, words: str
) -> None:
    """Bad usage exits 2, an unwritable output 1, each with one line on stderr."""
    base = {"--html": str(tmp_path / "out.html"), "--db": str(warehouse)}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    done = consumer_cli("report", *[x for kv in base.items() for x in kv])
    assert done.returncode == code, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and words in done.stderr
    assert not (tmp_path / "out.html").exists()


def test_report_html_renders_offline_in_chromium(page: Path, warehouse: Path) -> None:
    """Opened from file://, every chart draws query's numbers for the file's options, money
    with 2 decimals under axes and captions that name EUR; sales over time by month; no
    unconverted card (nothing is); the options named in the page."""
    shown = chromium.load(page.as_uri(), page.parent)
    assert shown.elements["body"].attrs.get("data-ready") == "true"
    assert shown.elements["body"].attrs.get("data-options") == "currency=EUR&as_is=1&grain=month"
    assert not [url for url, _ in shown.requests if not url.startswith(("file:", "data:"))]
    assert "<b>" not in shown.dom.split("<script")[0]
    for name, (key, value) in REPORT_KEYS.items():
        flags = ("--limit", "4") if name != "sales-by-channel" else ()
        rows = query_rows(warehouse, name, *flags, *WINDOW, *OPTIONS)
        drawn = shown.rendered(f"chart-{name}")
        assert drawn["keys"] == [row[key] for row in rows]
        assert drawn["values"] == [row[value] for row in rows]
        money = value == "total_sales"
        assert drawn["texts"] == [
            f"{row[value]:,.2f}" if money else f"{row[value]:,}" for row in rows
        ]
        if money:
            assert drawn["axes"]["x"] == "total sales (EUR)"
            assert "(EUR)" in shown.elements[f"chart-{name}"].text
    months = query_rows(warehouse, "sales-over-time", *WINDOW, *OPTIONS)
    drawn = shown.rendered("chart-sales-over-time")
    assert drawn["keys"] == [row["period"] for row in months] == ["2025-01-01", "2025-02-01",
                                                                  "2025-03-01"]  # fmt: skip
    assert drawn["values"] == [row["total_sales"] for row in months]
    assert drawn["orders"] == [row["orders"] for row in months]
    assert drawn["axes"] == {"x": "month (UTC)", "y": "total sales (EUR)", "y1": "orders"}
    assert query_rows(warehouse, "unconverted-sales", *WINDOW, *OPTIONS) == []
    assert "hidden" in shown.elements["chart-unconverted-sales"].attrs
    assert shown.rendered("chart-unconverted-sales")["keys"] == []
    options = shown.elements["options"].text
    assert "money in EUR" in options and "as is" in options and "--as-is --grain month" in options
    assert shown.elements["tile-loaded"].text == f"{smallwarehouse.ORDERS:,}"
    for live_only in ("chart-lag", "chart-lag-seconds", "chart-throughput"):
        assert "data-rendered" not in shown.elements[live_only].attrs


def test_the_browser_check_sees_a_request_off_the_machine(tmp_path: Path) -> None:
    """The net-log reader finds a page's request to another host (so its silence means none)."""
    canary = tmp_path / "canary.html"
    canary.write_text(
        '<!doctype html><body><img src="http://canary.invalid/pixel.png">'
        "<script>fetch('https://other.invalid/x').catch(() => {});</script></body>"
    )
    shown = chromium.load(canary.as_uri(), tmp_path, budget_ms=3000)
    assert {"canary.invalid", "other.invalid"} <= shown.hosts()
