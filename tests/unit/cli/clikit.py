"""Calling the consumer CLI in-process and checking its one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from consumer import cli

BASE = ["--bootstrap-servers", "127.0.0.1:9", "--topic", "t", "--group-id", "g"]


def ident(value: object) -> str:
    if isinstance(value, list | tuple):
        return " ".join(value)[:40]
    return str(value)


def run_args(db: Path | str, *extra: str) -> list[str]:
    return ["run", *BASE, "--db", str(db), *extra]


def exits(argv: list[str], capsys: pytest.CaptureFixture[str], code: int) -> str:
    """Run main(argv), expect SystemExit(code) and one stderr line without a traceback."""
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]
