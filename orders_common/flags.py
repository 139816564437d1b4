"""Command-line plumbing shared by both services: a declarative flag table whose every flag
also reads an environment variable, value parsers that name the flag and the variable, and
usage errors reported as one line with exit code 2."""

from __future__ import annotations

import argparse
import math
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple, NoReturn, cast

from orders_common.exits import EXIT_FAILURE, EXIT_USAGE


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are a single line on stderr and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


class Flag(NamedTuple):
    """One row of a flag table. ``env`` defaults to the table's prefix plus the flag's name;
    ``default`` to the settings default of the same name."""

    name: str
    help: str
    parse: Callable[[str], Any] | None = None
    metavar: str = "N"
    env: str | Sequence[str] | None = None
    default: Any = None
    required: bool = False
    switch: bool = False  # ``--flag`` alone means true; ``--flag false`` and the env var work too

    @property
    def dest(self) -> str:
        return self.name.lstrip("-").replace("-", "_")


def number(
    kind: Callable[[str], Any],
    low: float | None = None,
    high: float | None = None,
    *,
    above: bool = False,
    what: str = "",
) -> Callable[[str], Any]:
    """A parser of finite numbers within ``[low, high]`` (``(low, high]`` with ``above``)."""

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            message = f"{text!r} is not a valid {what or kind.__name__}"
            raise argparse.ArgumentTypeError(message) from None
        if isinstance(value, float) and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text!r}")
        too_low = low is not None and (value <= low if above else value < low)
        if too_low or (high is not None and value > high):
            if high is not None:
                bounds = f"between {low:g} and {high:g}"
            else:
                bounds = f"greater than {low:g}" if above else f"at least {low:g}"
            raise argparse.ArgumentTypeError(f"must be {bounds}, got {text}")
        return value

    return parse


def choice(*options: str) -> Callable[[str], str]:
    """A parser of one of ``options`` (a type, not argparse ``choices``: argparse does not
    check choices on values that come from the environment)."""

    def parse(text: str) -> str:
        if text not in options:
            raise argparse.ArgumentTypeError(f"must be one of {', '.join(options)}, got {text!r}")
        return text

    return parse


def boolean(text: str) -> bool:
    """true/false, yes/no, on/off, 1/0 (empty is false)."""
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"must be true or false, got {text!r}")


def checked(check: Callable[[str], Any]) -> Callable[[str], Any]:
    """A parser from a function that raises ValueError with a readable reason."""

    def parse(text: str) -> Any:
        try:
            return check(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    return parse


def add_env_flag(
    parser: argparse.ArgumentParser,
    flag: str,
    *,
    env: str | Sequence[str],
    help: str,
    required: bool = False,
    default: Any = None,
    type: Callable[[str], Any] | None = None,
    **kwargs: Any,
) -> None:
    """Add ``flag`` whose default comes from the first set variable of ``env``.

    argparse converts string defaults with ``type``, so a bad environment value is reported
    like a bad flag, and the message names the variable it came from.
    """
    names = [env] if isinstance(env, str) else list(env)
    source = next((name for name in names if os.environ.get(name)), None)
    value = os.environ[source] if source is not None else default
    shown = " or ".join(f"${name}" for name in names)
    suffix = f" [env: {shown}]" if value is None else f" [env: {shown}; default: %(default)s]"
    if type is not None:
        kwargs["type"] = _naming(type, source or names[0], value if source else None)
    parser.add_argument(
        flag, default=value, required=required and value is None, help=help + suffix, **kwargs
    )


def _naming(
    parse: Callable[[str], Any], variable: str, from_env: str | None
) -> Callable[[str], Any]:
    """Errors name the environment variable too: where the bad value came from, or where the
    setting may also be given."""

    def wrapped(given: str) -> Any:
        try:
            return parse(given)
        except argparse.ArgumentTypeError as error:
            where = "from" if from_env is not None and given == from_env else "env"
            raise argparse.ArgumentTypeError(f"{error} ({where} ${variable})") from None

    wrapped.__name__ = getattr(parse, "__name__", "value")
    return wrapped


def add_flags(
    parser: argparse.ArgumentParser,
    title: str,
    flags: Sequence[Flag],
    *,
    env_prefix: str,
    defaults: Mapping[str, Any],
) -> None:
    """Add a table of flags as one argument group."""
    # add_env_flag only calls add_argument, which argument groups have as well.
    group = cast(argparse.ArgumentParser, parser.add_argument_group(title))
    for flag in flags:
        default = flag.default
        if default is None and not flag.required:
            default = defaults.get(flag.dest)
        extra: dict[str, Any] = {"nargs": "?", "const": True} if flag.switch else {}
        add_env_flag(
            group,
            flag.name,
            env=flag.env or env_prefix + flag.dest.upper(),
            help=flag.help,
            required=flag.required,
            default=default,
            metavar=flag.metavar,
            type=flag.parse,
            **extra,
        )


def fail(prog: str, message: str, code: int = EXIT_FAILURE) -> NoReturn:
    """Report a failure as one line on stderr and exit with ``code``."""
    print(f"{prog}: error: {message}", file=sys.stderr)
    sys.exit(code)
