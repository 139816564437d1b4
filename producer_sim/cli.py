"""``orders-sim`` / ``python -m producer_sim``: publish, generate, or write the reference CSVs."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from orders_common.exits import EXIT_USAGE
from orders_common.flags import fail
from orders_common.logs import configure_logging, get_logger
from producer_sim.config import MessRates, Settings
from producer_sim.events import generate_records, write_lines
from producer_sim.flags import PROG, build_parser
from producer_sim.publisher import BrokerUnavailableError
from producer_sim.reference import span_end_text
from producer_sim.runner import prepare_reference, publish
from producer_sim.state import StateError, default_state_dir


def _writable_dir(directory: Path, flag: str) -> None:
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError as error:
        raise ValueError(
            f"{flag} {str(directory)!r} is not a writable directory ({error.strerror or error})"
        ) from None


def _state_dir(given: Path | None) -> Path | None:
    """The flag's directory (it must be writable), else the default one if it can be made."""
    if given is not None:
        _writable_dir(given, "--state-dir")
        return given
    try:
        _writable_dir(default_state_dir(), "--state-dir")
    except ValueError:
        return None  # no home to keep state in: endless runs start at the first record
    return default_state_dir()


def settings_from_args(args: argparse.Namespace) -> Settings:
    """The one Settings of a run; raises ValueError (a usage error) when flags disagree."""
    rates = MessRates(
        **{
            f.name: getattr(args, f"{f.name}_rate")
            for f in dataclasses.fields(MessRates)
            if hasattr(args, f"{f.name}_rate")
        }
    )
    values: dict[str, Any] = {"seed": args.seed, "orders": args.orders, "rates": rates}
    if hasattr(args, "state_dir"):
        values["state_dir"] = _state_dir(args.state_dir)
    for name in ("reference_dir", "late_reference_dir"):
        directory = getattr(args, name)
        if directory is not None:
            _writable_dir(directory, "--" + name.replace("_", "-"))
            values[name] = directory
    for item in dataclasses.fields(Settings):
        if item.name not in values and hasattr(args, item.name):
            values[item.name] = getattr(args, item.name)
    return Settings(**values)


@contextlib.contextmanager
def _stop_on_signals() -> Iterator[threading.Event]:
    """SIGTERM and SIGINT only raise a flag; the run then flushes, reports and exits 0."""
    stop = threading.Event()
    signals = (signal.SIGTERM, signal.SIGINT)
    previous = [signal.signal(sig, lambda *_: stop.set()) for sig in signals]
    try:
        yield stop
    finally:
        for sig, handler in zip(signals, previous, strict=True):
            signal.signal(sig, handler)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code (usage errors and failures exit through ``fail``)."""
    args = build_parser().parse_args(argv)
    prog = f"{PROG} {args.command}"
    try:
        settings = settings_from_args(args)
    except ValueError as error:
        fail(prog, f"{error} (see --help)", EXIT_USAGE)
    # Records written to stdout must not be interleaved with informational log lines.
    quiet = (
        args.command == "generate" and args.output == "-" and args.log_level in ("debug", "info")
    )
    configure_logging(args.log_format, "warning" if quiet else args.log_level)
    log = get_logger("producer_sim.cli")
    try:
        if args.command == "reference":
            reference = prepare_reference(settings)
            print(
                f"{prog}: wrote {len(reference.users):,} users and {len(reference.products):,} "
                f"products as of {span_end_text(settings.days)}, and their exchange rates",
                file=sys.stderr,
            )
            return 0
        if args.command == "generate":
            return _generate(settings, args.output, prog)
        with _stop_on_signals() as stop:
            report = publish(settings, stop=stop)
    except StateError as error:
        fail(prog, str(error), EXIT_USAGE)
    except BrokerUnavailableError as error:
        log.error("broker_unavailable", error=str(error))
        fail(prog, str(error), 1)
    except OSError as error:
        log.error("io_failed", error=str(error))
        fail(prog, str(error), 1)
    except KeyboardInterrupt:  # only `generate` and `reference`; publish stops on a flag
        return 130
    except Exception as error:
        # The traceback goes to the JSON log; stderr gets one line, as for every failure.
        log.exception("run_failed")
        fail(prog, f"{type(error).__name__}: {error}", 1)
    if (failure := report.failure()) is not None:
        fail(prog, failure, report.exit_code)  # one line; the full summary is in the log
    print(f"{prog}: {report.summary()}", file=sys.stderr)
    return 0


def _generate(settings: Settings, output: str, prog: str) -> int:
    reference = prepare_reference(settings)
    records = generate_records(settings, reference)
    topics = {s: str(settings.topic_of(s)) for s in settings.reference_streams}
    if output == "-":
        try:
            counts = write_lines(records, sys.stdout, topics)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader (say, `head`) has had enough: stop quietly, as Unix tools do.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
    else:
        with open(output, "w", encoding="utf-8") as out:
            counts = write_lines(records, out, topics)
    print(f"{prog}: wrote {sum(counts.values()):,} records", file=sys.stderr)
    return 0
