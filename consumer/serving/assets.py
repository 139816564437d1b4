"""The dashboard's files, shipped in the package (``dashboard/``): served by ``serving.http``
and inlined by ``report --html``."""

from __future__ import annotations

from importlib import resources

# The files the server hands out under /assets/, with their content types (a whitelist: no
# other path under /assets/ is answered).
ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
    "chart.umd.min.js": "text/javascript; charset=utf-8",
}


def asset(name: str) -> bytes:
    """A file of the dashboard, shipped in the package."""
    return (resources.files("consumer.serving") / "dashboard" / name).read_bytes()
