"""``orders-consumer`` / ``python -m consumer``: ``run``, ``query``, ``report``, ``sql``,
``audit``, ``maintain``, ``redrive``.

Exit codes: 0 success; 1 run-time failure (broker unreachable, database locked or unwritable);
2 bad usage or configuration. Errors are one line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from consumer import flags, wiring
from consumer.commands import audit, htmlreport, maintain, reading, redrive_cli
from consumer.core.accounting import describe_problems
from consumer.core.windows import Window
from consumer.errors import ConfigError, PipelineError
from consumer.formats import to_csv, to_json, to_table
from consumer.settings import KafkaSettings
from consumer.warehouse.extensions import redact
from consumer.warehouse.reports import REPORTS
from orders_common.exits import EXIT_FAILURE, EXIT_OK, EXIT_USAGE
from orders_common.flags import OneLineParser, fail
from orders_common.logs import configure_logging, get_logger

PROG = "orders-consumer"


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    run = commands.add_parser(
        "run",
        help="consume the topic into the star schema",
        description="Consume order events in micro-batches into the warehouse; SIGTERM/SIGINT "
        "drains, commits and exits 0. Every flag also reads the environment variable shown.",
    )
    flags.add_run_flags(run)
    run.set_defaults(handler=_run)

    query = commands.add_parser(
        "query",
        help="print one of the reports",
        description="Print a report: " + ", ".join(REPORTS) + ". Money is converted into one "
        "reporting currency; lines that cannot be are listed by unconverted-sales.",
    )
    query.add_argument("name", choices=list(REPORTS), help="the report")
    flags.add(query, "warehouse", flags.WAREHOUSE)
    query.add_argument(
        "--format",
        choices=["table", "json", "csv"],
        default="table",
        help="output format (default: table)",
    )
    query.add_argument(
        "--limit",
        type=int,
        metavar="N",
        help="rows to print (default 5; sales-by-channel, sales-over-time and unconverted-sales "
        "list every row)",
    )
    _add_window(query)
    flags.add(query, "reporting", flags.REPORTING)
    query.set_defaults(handler=_query)

    report = commands.add_parser(
        "report",
        help="write the dashboard as one self-contained HTML file",
        description="Write the dashboard (the reports as charts, totals and rejects by "
        "reason) as one HTML file that loads nothing: to open offline or share.",
    )
    report.add_argument("--html", required=True, type=Path, metavar="FILE", help="output file")
    flags.add(report, "warehouse", flags.WAREHOUSE)
    report.add_argument(
        "--limit",
        type=int,
        default=htmlreport.DEFAULT_LIMIT,
        metavar="N",
        help=f"rows of each top-N chart (default {htmlreport.DEFAULT_LIMIT})",
    )
    _add_window(report)
    flags.add(report, "reporting", flags.REPORTING)
    report.set_defaults(handler=_report)

    sql = commands.add_parser(
        "sql",
        help="run one read-only SQL query",
        description="Run one SELECT over the warehouse (also while a consumer runs: through its "
        "local channel); anything but a read is refused.",
    )
    sql.add_argument("query", metavar="SQL", help="one SELECT (WITH, FROM-first, EXPLAIN...)")
    flags.add(sql, "warehouse", flags.WAREHOUSE)
    sql.add_argument(
        "--format", choices=["table", "json", "csv"], default="table", help="output format"
    )
    sql.set_defaults(handler=_sql)

    audit = commands.add_parser(
        "audit",
        help="prove that every offset read is accounted for exactly once",
        description="Per partition: every offset the warehouse has read is in exactly one place "
        "(dim_order, dropped_duplicates or rejected_events), or holds no record for a "
        "read_committed reader (transaction markers, aborted records), with no gap up to the "
        "ledger. Exit 0 when complete, 1 naming the missing or doubled offsets.",
    )
    flags.add(audit, "kafka", (flags.BOOTSTRAP, flags.TOPIC))
    flags.add(audit, "warehouse", flags.WAREHOUSE)
    audit.add_argument("--format", choices=["table", "json"], default="table", help="output format")
    audit.set_defaults(handler=_audit)
    maintain.add_parser(commands)
    redrive_cli.add_parser(commands)
    return parser


def _add_window(parser: argparse.ArgumentParser) -> None:
    for end, text in (("since", "from"), ("until", "up to, not including")):
        parser.add_argument(
            f"--{end}",
            metavar="WHEN",
            help=f"only orders created {text} WHEN (ISO date or timestamp, UTC unless it has an "
            "offset); orders without created_at are left out of a windowed report",
        )


def _run(args: argparse.Namespace) -> int:
    try:
        settings = flags.settings_from_args(args)
    except ConfigError as exc:
        fail(PROG, str(exc), exc.exit_code)
    configure_logging(settings.logging.format, settings.logging.level)
    log = get_logger("consumer")
    try:
        wiring.run(settings)
    except PipelineError as exc:
        log.error("consumer_failed", error=str(exc), error_type=type(exc).__name__)
        fail(PROG, str(exc), exc.exit_code)
    except OSError as exc:
        log.error("consumer_failed", error=str(exc), error_type=type(exc).__name__)
        fail(PROG, f"{exc.strerror or exc}", EXIT_FAILURE)
    except Exception as exc:
        log.exception("consumer_crashed", error=str(exc))
        fail(PROG, f"unexpected {type(exc).__name__}: {exc}", EXIT_FAILURE)
    return EXIT_OK


def _query(args: argparse.Namespace) -> int:
    try:
        window = Window.parse(args.since, args.until)
        target = flags.warehouse_from_args(args)
        options = flags.report_options(args)
        columns, values = reading.report(target, args.name, args.limit, window, options)
    except ValueError as exc:
        fail(PROG, str(exc), EXIT_USAGE)
    except PipelineError as exc:
        fail(PROG, str(exc), exc.exit_code)
    return _print(columns, values, args.format)


def _report(args: argparse.Namespace) -> int:
    try:
        window = Window.parse(args.since, args.until)
        target = flags.warehouse_from_args(args)
        options = flags.report_options(args)
        size = htmlreport.write(args.html, target, args.limit, window, options)
    except ValueError as exc:
        fail(PROG, str(exc), EXIT_USAGE)
    except PipelineError as exc:
        fail(PROG, str(exc), exc.exit_code)
    except OSError as exc:
        fail(PROG, f"cannot write {args.html}: {exc.strerror or exc}", EXIT_FAILURE)
    print(f"{PROG} report: wrote {args.html} ({size:,} bytes)", file=sys.stderr)
    return EXIT_OK


def _sql(args: argparse.Namespace) -> int:
    try:
        columns, values = reading.sql(flags.warehouse_from_args(args), args.query)
    except PipelineError as exc:
        fail(PROG, str(exc), exc.exit_code)
    return _print(columns, values, args.format)


def _print(columns: list[str], values: list[tuple[Any, ...]], output: str) -> int:
    rows = [dict(zip(columns, row, strict=True)) for row in values]
    if output == "json":
        print(to_json(rows))
    elif output == "csv":
        print(to_csv(rows, columns))
    else:
        print(to_table(rows, columns))
    return EXIT_OK


def _audit(args: argparse.Namespace) -> int:
    configure_logging("json", "warning")
    try:
        kafka = KafkaSettings(
            bootstrap_servers=args.bootstrap_servers, group_id="audit", topic=args.topic
        )
        with reading.accounts(flags.warehouse_from_args(args)) as held:
            audits = audit.audit(held, kafka)
    except PipelineError as exc:
        fail(PROG, str(exc), exc.exit_code)
    if args.format == "json":
        print(audit.to_json(audits))
    else:
        print(to_table(audit.rows(audits, detail=False), audit.COLUMNS))
    problems = describe_problems(audits)
    if problems:
        for line in problems:
            print(f"{PROG} audit: {line}", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.handler(args)
    except Exception as exc:  # a failure no layer translated: still one line, never a traceback
        fail(PROG, f"unexpected {type(exc).__name__}: {redact(' '.join(str(exc).split()))}")
    return code


if __name__ == "__main__":
    sys.exit(main())
