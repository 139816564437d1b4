"""``orders-consumer report --html FILE``: the dashboard as one self-contained HTML file to share.

The page is the live dashboard's own ``index.html`` with its stylesheet, the vendored chart
library and its script inlined, and the data embedded as JSON: every report exactly as
``query NAME --format json`` prints it (in one reporting currency, as was or as is), and the
warehouse's totals (orders loaded, identical re-sends dropped, rejects by reason) in place of
the live rates. It loads nothing and does not refresh. The rows are read like ``query`` reads
them, so a file a consumer holds works too.
"""

from __future__ import annotations

import json
import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from consumer.commands import reading
from consumer.core.reporting import DEFAULT_OPTIONS, ReportOptions
from consumer.core.windows import EVERYTHING, Window
from consumer.formats import to_json
from consumer.serving.assets import asset
from consumer.settings import WarehouseSettings
from consumer.warehouse.reports import REPORTS, UNLIMITED

DEFAULT_LIMIT = 10  # the live page's default too (dashboard.js DEFAULT_LIMIT)
DATA_TAG = '<script id="orders-data" type="application/json">null</script>'
INLINED = {
    '<link rel="stylesheet" href="assets/dashboard.css">': ("style", "dashboard.css"),
    '<script src="assets/chart.umd.min.js"></script>': ("script", "chart.umd.min.js"),
    '<script src="assets/charts.js"></script>': ("script", "charts.js"),
    '<script src="assets/dashboard.js"></script>': ("script", "dashboard.js"),
}
TOTALS_SQL = (
    "SELECT (SELECT count(*) FROM dim_order) AS loaded, "
    "(SELECT count(*) FROM dropped_duplicates) AS duplicate, "
    "(SELECT count(*) FROM rejected_events) AS rejected"
)
REASONS_SQL = "SELECT reason, count(*) AS records FROM rejected_events GROUP BY reason"


def _dashboard_file(name: str) -> str:
    return asset(name).decode("utf-8")


def snapshot_json(
    db: WarehouseSettings, limit: int, window: Window, options: ReportOptions = DEFAULT_OPTIONS
) -> str:
    """The embedded data: report rows as exact JSON numbers, totals and rejects by reason."""
    reports = []
    for name in REPORTS:
        shown = None if name in UNLIMITED else limit
        columns, values = reading.report(db, name, shown, window, options)
        rows = [dict(zip(columns, row, strict=True)) for row in values]
        reports.append(f"{json.dumps(name)}: {to_json(rows)}")
    columns, values = reading.sql(db, TOTALS_SQL)
    totals = {c: int(v) for c, v in zip(columns, values[0], strict=True)}
    by_reason = {str(reason): int(n) for reason, n in reading.sql(db, REASONS_SQL)[1]}
    meta = {
        "warehouse": str(db.db_path or db.data_path or "ducklake"),
        "generated_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "window": {k: None if v is None else v.isoformat() for k, v in window.params().items()},
        "options": options.params(),
        "totals": totals,
        "rejected_by_reason": by_reason,
    }
    parts = [f"{json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in meta.items()]
    parts.append('"reports": {' + ", ".join(reports) + "}")
    return "{" + ", ".join(parts) + "}"


def _inline(html: str, tag: str, replacement: str) -> str:
    if html.count(tag) != 1:
        raise RuntimeError(f"dashboard index.html must hold {tag!r} exactly once")
    return html.replace(tag, replacement)


def render(data_json: str) -> str:
    """index.html with every asset inlined and ``data_json`` embedded."""
    html = _dashboard_file("index.html")
    for tag, (element, name) in INLINED.items():
        text = _dashboard_file(name)
        if f"</{element}" in text.lower():
            raise RuntimeError(f"{name} holds '</{element}' and cannot be inlined")
        html = _inline(html, tag, f"<{element}>\n{text}\n</{element}>")
    # "<" only occurs inside JSON strings, where \u003c means the same; this keeps a product
    # name such as "</script>" from ending the element early.
    embedded = data_json.replace("<", "\\u003c")
    return _inline(html, DATA_TAG, DATA_TAG.replace(">null<", f">{embedded}<"))


def write(
    path: Path,
    db: WarehouseSettings,
    limit: int = DEFAULT_LIMIT,
    window: Window = EVERYTHING,
    options: ReportOptions = DEFAULT_OPTIONS,
) -> int:
    """Write the self-contained page to ``path`` (atomically); return its size in bytes."""
    page = render(snapshot_json(db, limit, window, options)).encode("utf-8")
    directory = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(page)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(page)
