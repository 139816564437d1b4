"""The consumer's HTTP server (docs/interface.md): Prometheus metrics, health probes, the JSON
reports API and the dashboard. It only reads: there is no SQL over HTTP. It binds 127.0.0.1
unless told otherwise (the container image binds all interfaces)."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from consumer.core.reporting import DEFAULT_CURRENCY, ReportOptions
from consumer.core.windows import Window
from consumer.errors import PipelineError
from consumer.formats import to_json
from consumer.serving.assets import ASSETS, asset
from consumer.serving.metrics import Metrics
from consumer.warehouse.adhoc import read_transaction
from consumer.warehouse.reports import REPORTS, report_rows
from orders_common.logs import get_logger

log = get_logger("consumer")
Cursor = Callable[[], Any]
MAX_TARGET = 2048  # longest request target answered; longer ones get 414
REPORT_PARAMS = frozenset({"limit", "since", "until", "currency", "as_is", "grain"})
# The currencies a report can usefully be converted into: those with a rate (and USD, which is
# always 1). Validated on the way in (three capital letters), like every fx record.
CURRENCIES_SQL = "SELECT DISTINCT currency FROM fx_rates"


class HttpError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def report_json(cursor: Cursor, name: str, query: dict[str, list[str]]) -> str:
    """The JSON of ``query NAME --format json``, for the API's parameters."""
    if name not in REPORTS:
        raise HttpError(404, f"no report {name!r}; reports: {', '.join(REPORTS)}")
    unknown = set(query) - REPORT_PARAMS
    if unknown:
        raise HttpError(400, f"unknown parameter {sorted(unknown)[0]!r}")
    if any(len(values) > 1 for values in query.values()):
        raise HttpError(400, "each parameter at most once")
    one = {k: v[0] for k, v in query.items()}
    limit = None
    if "limit" in one:
        if not (one["limit"].isascii() and one["limit"].isdigit()):  # int() refuses "²"
            raise HttpError(400, f"limit must be a whole number >= 0, got {one['limit']!r}")
        limit = int(one["limit"])
    try:
        window = Window.parse(one.get("since"), one.get("until"))
        options = ReportOptions.parse(one.get("currency"), one.get("as_is"), one.get("grain"))
        con = cursor()
        try:
            rows = report_rows(con, name, limit, window, options)
        finally:
            con.close()
    except ValueError as exc:
        raise HttpError(400, str(exc)) from None
    except PipelineError as exc:
        raise HttpError(400 if exc.exit_code == 2 else 503, str(exc)) from None
    return to_json(rows)


def currencies_json(cursor: Cursor, query: dict[str, list[str]]) -> str:
    """``GET /api/currencies``: USD and every currency with a rate, sorted, as a JSON list."""
    if query:
        raise HttpError(400, f"unknown parameter {sorted(query)[0]!r}; this takes none")
    try:
        con = cursor()
        try:
            with read_transaction(con):
                codes = {str(code) for (code,) in con.execute(CURRENCIES_SQL).fetchall()}
        finally:
            con.close()
    except PipelineError as exc:
        raise HttpError(503, str(exc)) from None
    return json.dumps(sorted({DEFAULT_CURRENCY, *codes}))


def _query(text: str) -> dict[str, list[str]]:
    try:
        return parse_qs(text, keep_blank_values=True, max_num_fields=10)
    except ValueError:
        raise HttpError(400, "too many parameters") from None


def serve(metrics: Metrics, port: int, host: str, cursor: Cursor | None) -> ThreadingHTTPServer:
    """Serve from a daemon thread; ``cursor`` opens a read connection (None: no reports)."""
    server = ThreadingHTTPServer((host, port), _handler(metrics, cursor))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    log.info("http_listening", host=host, port=server.server_address[1])
    return server


def _handler(metrics: Metrics, cursor: Cursor | None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            try:
                self._route()
            except HttpError as exc:
                body = json.dumps({"error": str(exc)}) + "\n"
                self._send(exc.status, body.encode(), "application/json")
            except Exception as exc:  # a defect: one log line and a clean 500, not a traceback
                log.exception("http_request_failed", path=self.path[:200], error=str(exc))
                self._send(500, b'{"error": "internal error"}\n', "application/json")

        def _route(self) -> None:
            if len(self.path) > MAX_TARGET:
                raise HttpError(414, f"request target longer than {MAX_TARGET} characters")
            target = urlsplit(self.path)
            path = unquote(target.path)
            if path == "/metrics":
                self._send(200, generate_latest(metrics.registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._probe(metrics.alive)
            elif path == "/readyz":
                self._probe(metrics.ready)
            elif path.startswith("/api/reports/") or path == "/api/currencies":
                if cursor is None:
                    raise HttpError(503, "this consumer serves no reports")
                query = _query(target.query)
                if path == "/api/currencies":
                    body = currencies_json(cursor, query)
                else:
                    body = report_json(cursor, path.removeprefix("/api/reports/"), query)
                self._send(200, body.encode(), "application/json")
            elif path == "/api/stats":
                body = json.dumps(metrics.snapshot())
                self._send(200, body.encode(), "application/json")
            elif path in ("/", "/index.html"):
                self._send(200, asset("index.html"), "text/html; charset=utf-8")
            elif path.startswith("/assets/") and path.removeprefix("/assets/") in ASSETS:
                name = path.removeprefix("/assets/")
                self._send(200, asset(name), ASSETS[name])
            else:
                raise HttpError(404, "not found")

        def _refuse(self) -> None:
            self._send(405, b'{"error": "read-only: GET only"}\n', "application/json")

        do_POST = do_PUT = do_DELETE = do_PATCH = _refuse  # noqa: N815

        def _probe(self, ok: bool) -> None:
            self._send(200 if ok else 503, b"ok\n" if ok else b"unavailable\n", "text/plain")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            """Scrapes are not worth a log line each."""

    return Handler
