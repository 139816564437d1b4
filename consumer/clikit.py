"""Command-line plumbing shared by both services: flags that also read environment variables,
and usage errors reported as one line with exit code 2."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

EXIT_USAGE = 2


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are a single line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def add_env_flag(
    parser: argparse.ArgumentParser,
    flag: str,
    *,
    env: str | Sequence[str],
    help: str,
    required: bool = False,
    default: Any = None,
    **kwargs: Any,
) -> None:
    """Add ``flag`` whose default comes from the first set variable of ``env``.

    argparse converts string defaults with ``type``, so a bad environment value is reported
    exactly like a bad flag.
    """
    names = [env] if isinstance(env, str) else list(env)
    from_env = next((os.environ[name] for name in names if os.environ.get(name)), None)
    value = from_env if from_env is not None else default
    shown = " or ".join(f"${name}" for name in names)
    suffix = f" [env: {shown}]" if value is None else f" [env: {shown}; default: %(default)s]"
    parser.add_argument(
        flag,
        default=value,
        required=required and value is None,
        help=help + suffix,
        **kwargs,
    )


def fail(prog: str, message: str, code: int = 1) -> NoReturn:
    """Report a run-time failure as one line on stderr and exit with ``code``."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(code)
