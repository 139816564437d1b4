"""``orders-consumer maintain``: compact a DuckLake warehouse while its members write to it
(flush inlined rows, merge adjacent files, expire old snapshots, delete unused and orphaned
files), once or every ``--every`` seconds."""

from __future__ import annotations

import argparse
import signal
from datetime import timedelta
from typing import Any

from consumer import flags
from consumer.errors import ConfigError, PipelineError
from consumer.runtime.maintainer import Maintainer
from consumer.warehouse.maintenance import MaintainSettings
from orders_common.exits import EXIT_OK
from orders_common.flags import Flag, fail
from orders_common.logs import configure_logging, get_logger

PROG = "orders-consumer maintain"
OPTIONS = (
    Flag("--older-than", "expire snapshots older than this (90s, 30m, 1h, 2d): readers and "
         "pinned snapshots older than that break; orphaned files are deleted only past "
         "max(this, 10m)", flags.duration_seconds, "DURATION", default=3600.0),
    Flag("--every", "run a pass every SECONDS until SIGTERM/SIGINT (default: once)",
         flags.SECONDS, "SECONDS"),
)  # fmt: skip


def add_parser(commands: Any) -> None:
    maintain = commands.add_parser(
        "maintain",
        help="compact a lake: merge files, expire snapshots, clean up",
        description=__doc__,
    )
    flags.add(maintain, "warehouse", (flags.CATALOG, flags.DATA_PATH))
    flags.add(maintain, "maintenance", OPTIONS)
    flags.add(maintain, "logging", flags.LOGGING)
    maintain.set_defaults(handler=_maintain)


def _maintain(args: argparse.Namespace) -> int:
    if not args.catalog:
        fail(PROG, "give the lake as --catalog postgres:CONNINFO (a DuckDB file needs no "
             "maintenance)", 2)  # fmt: skip
    try:
        settings = MaintainSettings(older_than=timedelta(seconds=args.older_than))
    except ConfigError as exc:
        fail(PROG, str(exc), exc.exit_code)
    configure_logging(args.log_format, args.log_level)
    log = get_logger("maintenance")
    maintainer = Maintainer(args.catalog, args.data_path, settings)
    try:
        if args.every is None:
            maintainer.once()
        else:
            _stop_on_signals(maintainer)
            maintainer.every(args.every, fail_fast=True)
    except PipelineError as exc:
        log.error("maintenance_failed", error=str(exc), error_type=type(exc).__name__)
        fail(PROG, str(exc), exc.exit_code)
    finally:
        maintainer.stop()
    return EXIT_OK


def _stop_on_signals(maintainer: Maintainer) -> None:
    def stop(_signum: int, _frame: object) -> None:
        maintainer.request_stop()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
