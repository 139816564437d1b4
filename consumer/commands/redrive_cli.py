"""orders-consumer redrive: read rejected records again under today's rules, and load those
that pass now (docs/interface.md §5). Exit 0 with a summary; 2 for bad usage; 1 when the
warehouse cannot be reached or a chunk keeps failing."""

from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from typing import Any

from consumer import flags
from consumer.commands.redrive import DEFAULT_CHUNK, redrive, relax_from_env
from consumer.core.windows import Window
from consumer.errors import ConfigError, DatabaseLockedError, PipelineError
from consumer.faults import Faults
from consumer.formats import to_table
from consumer.serving.channel import ask_redrive, socket_path
from consumer.settings import WarehouseSettings
from consumer.warehouse.duckdb_file import DuckDBWarehouse
from consumer.warehouse.lake import LakeWarehouse
from consumer.warehouse.protocol import Warehouse
from consumer.warehouse.redrive import Selection, Tally
from orders_common.exits import EXIT_OK, EXIT_USAGE
from orders_common.flags import Flag, checked, fail, number
from orders_common.kafka import check_topic
from orders_common.logs import configure_logging

PROG = "orders-consumer redrive"
OPTIONS = (
    Flag("--topic", "the topic whose rejects are read again", checked(check_topic), "T",
         default="orders"),
    Flag("--since", "only records rejected from WHEN (ISO date or timestamp, UTC unless it "
         "has an offset)", None, "WHEN"),
    Flag("--until", "only records rejected before WHEN", None, "WHEN"),
    Flag("--chunk", "rejects read again per transaction", number(int, 1, 100_000), "N",
         default=DEFAULT_CHUNK),
)  # fmt: skip


def add_parser(commands: Any) -> None:
    parser = commands.add_parser(
        "redrive",
        help="read rejected records again under today's rules; load those that pass now",
        description=__doc__ + " A record that passes is loaded at its own offset (or dropped as "
        "an identical re-send of an order loaded meanwhile) and leaves rejected_events in the "
        "same transaction; audit counts it as redriven. Safe while consumers run.",
    )
    flags.add(parser, "warehouse", flags.WAREHOUSE)
    flags.add(parser, "selection", OPTIONS)
    parser.add_argument(
        "--reason", action="append", metavar="REASON",
        help="only rejects of this reason (repeatable; default: every reason of an order record)",
    )  # fmt: skip
    parser.add_argument(
        "--dry-run", action="store_true",
        help="count what would become of the selected rejects; write nothing",
    )  # fmt: skip
    parser.add_argument("--format", choices=["table", "json"], default="table")
    flags.add(parser, "logging", flags.LOGGING)
    # The summary is the command's output (stdout); its progress goes to stderr, and its JSON
    # log lines only from warnings up unless asked.
    parser.set_defaults(handler=_handle, log_level="warning")


def _handle(args: argparse.Namespace) -> int:
    configure_logging(args.log_format, args.log_level)
    try:
        relax_from_env()
        target = flags.warehouse_from_args(args)
        window = Window.parse(args.since, args.until)
        selection = Selection(args.topic, tuple(args.reason or ()), window.since, window.until)
        summary = _redrive(target, selection, args.chunk, args.dry_run)
        print(f"{PROG}: done", file=sys.stderr)
    except ValueError as exc:
        fail(PROG, str(exc), EXIT_USAGE)
    except PipelineError as exc:
        fail(PROG, str(exc), exc.exit_code)
    if args.format == "json":
        print(json.dumps({"dry_run": args.dry_run, **summary}, indent=1))
    else:
        row = {k: v for k, v in summary.items() if k != "still_rejected_by_reason"}
        print(to_table([row], list(row)))
        for reason, count in dict(summary["still_rejected_by_reason"]).items():
            print(f"  still {reason}: {count:,}")
        if args.dry_run:
            print(f"{PROG}: dry run: nothing was written", file=sys.stderr)
    return EXIT_OK


def _redrive(
    target: WarehouseSettings, selection: Selection, chunk: int, dry_run: bool
) -> dict[str, Any]:
    faults = Faults.from_env()  # (tests: a kill in the middle of a chunk)
    warehouse: Warehouse
    if target.catalog is not None:
        member = f"redrive-{socket.gethostname()}-{os.getpid()}"
        warehouse = LakeWarehouse(target.catalog, target.data_path, member=member, faults=faults)
    else:
        assert target.db_path is not None
        if not target.db_path.is_file():
            raise ConfigError(f"--db {target.db_path} does not exist")
        try:
            warehouse = DuckDBWarehouse(target.db_path, faults=faults)
        except DatabaseLockedError:
            # A consumer holds the file: the redrive runs in it, beside its batches.
            request = {"topic": selection.topic, "reasons": list(selection.reasons),
                       "since": _iso(selection.since), "until": _iso(selection.until),
                       "chunk": chunk, "dry_run": dry_run}  # fmt: skip
            return ask_redrive(socket_path(target.db_path), request)
    try:
        tally = redrive(warehouse, selection, chunk=chunk, dry_run=dry_run, progress=_progress)
        return tally.summary()
    finally:
        warehouse.close()


def _progress(tally: Tally) -> None:
    print(
        f"{PROG}: {tally.examined:,} read again: {tally.loaded:,} loaded, {tally.duplicate:,} "
        f"identical re-sends, {sum(tally.rejected.values()):,} still rejected",
        file=sys.stderr,
    )


def _iso(value: Any) -> str | None:
    return None if value is None else str(value.isoformat())
