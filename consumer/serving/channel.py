"""The local channel of a running consumer: ``query`` and ``sql`` against a DuckDB file that
the consumer holds go through a Unix socket beside the file (``<db>.sock``, mode 0600, so only
the file's owner can open it), answered on the consumer's own read cursor. Never over HTTP.

One JSON request a connection, one JSON answer. Values keep their types: decimals, timestamps,
dates and bytes travel tagged, so that the client prints exactly what an offline query does.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import socketserver
import threading
from collections.abc import Callable
from contextlib import suppress
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from consumer.core.reporting import ReportOptions
from consumer.core.windows import Window
from consumer.errors import ConfigError, DatabaseError, PipelineError
from consumer.warehouse.adhoc import run_sql
from consumer.warehouse.reports import REPORTS, report_rows
from orders_common.logs import get_logger

log = get_logger("consumer")
Cursor = Callable[[], Any]
MAX_REQUEST = 1 << 20


def socket_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".sock")


def _encode(value: Any) -> Any:
    if isinstance(value, Decimal):
        return {"$decimal": str(value)}
    if isinstance(value, datetime):
        return {"$timestamp": value.isoformat()}
    if isinstance(value, date):
        return {"$date": value.isoformat()}
    if isinstance(value, bytes):
        return {"$bytes": base64.b64encode(value).decode()}
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict) and len(value) == 1:
        ((tag, text),) = value.items()
        decoders: dict[str, Callable[[str], Any]] = {
            "$decimal": Decimal,
            "$timestamp": datetime.fromisoformat,
            "$date": date.fromisoformat,
            "$bytes": base64.b64decode,
        }
        if tag in decoders:
            return decoders[tag](text)
    return value


def answer(cursor: Cursor, request: dict[str, Any]) -> dict[str, Any]:
    """Run one request on a fresh read cursor (a consistent snapshot of committed batches)."""
    con = cursor()
    try:
        if request.get("op") == "report":
            name = str(request.get("name"))
            window = Window.parse(request.get("since"), request.get("until"))
            options = ReportOptions.parse(
                request.get("currency"), request.get("as_is"), request.get("grain")
            )
            rows = report_rows(con, name, request.get("limit"), window, options)
            columns, values = list(REPORTS[name]), [tuple(r.values()) for r in rows]
        elif request.get("op") == "sql":
            columns, values = run_sql(con, str(request.get("sql")))
        else:
            raise ConfigError(f"unknown request {request.get('op')!r}")
    except ValueError as exc:
        return {"ok": False, "error": str(exc), "code": 2}
    except PipelineError as exc:
        return {"ok": False, "error": str(exc), "code": exc.exit_code}
    finally:
        con.close()
    return {"ok": True, "columns": columns, "rows": [[_encode(v) for v in r] for r in values]}


class Channel:
    """Serves requests on the socket from a daemon thread until ``close``."""

    def __init__(self, path: Path, cursor: Cursor) -> None:
        self.path = path
        handler = _handler(cursor)
        with suppress(FileNotFoundError):
            path.unlink()  # a socket left by a consumer that died: this one holds the file now
        self._server = socketserver.ThreadingUnixStreamServer(str(path), handler)
        os.chmod(path, 0o600)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="local-channel", daemon=True
        )
        self._thread.start()
        log.info("local_channel_open", socket=str(path))

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        with suppress(FileNotFoundError):
            self.path.unlink()


def _handler(cursor: Cursor) -> type[socketserver.StreamRequestHandler]:
    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            try:
                request = json.loads(self.rfile.readline(MAX_REQUEST))
                reply = answer(cursor, request if isinstance(request, dict) else {})
            except (json.JSONDecodeError, UnicodeDecodeError):
                reply = {"ok": False, "error": "the request is not JSON", "code": 2}
            except Exception as exc:  # one failing request must not take the channel down
                log.exception("local_channel_failed")
                reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}", "code": 1}
            self.wfile.write(json.dumps(reply).encode() + b"\n")

    return Handler


def ask(
    path: Path, request: dict[str, Any], timeout: float = 60.0
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Send one request to the consumer holding the file; raise its error as ours."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(json.dumps(request).encode() + b"\n")
            with sock.makefile("rb") as stream:
                reply = json.loads(stream.readline())
    except (OSError, json.JSONDecodeError) as exc:
        raise DatabaseError(
            f"the consumer holding the file does not answer on {path}: {exc}"
        ) from exc
    if not reply.get("ok"):
        error = ConfigError if reply.get("code") == 2 else DatabaseError
        raise error(str(reply.get("error")))
    rows = [tuple(_decode(v) for v in row) for row in reply["rows"]]
    return list(reply["columns"]), rows
