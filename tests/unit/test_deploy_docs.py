"""Every compose and `docker run` command in docs/operations.md (and any in the README, which
links there) works with the files: service names, profiles, subcommands, flags, variables and
ports.

Commands are read from fenced code blocks and inline code spans; pipelines and `&&` chains are
split. Each compose command is checked against every compose implementation found (its own
``--help`` lists its subcommands' flags) and against the normalized configuration; a command
whose line says "(Compose v2" is checked against Compose v2 only. Commands run in a service
(`run`, `exec`) are checked against the CLI of that service's image, installed in this venv.
"""

from __future__ import annotations

import functools
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.unit.deploy_compose import (
    COMPOSE_FILE,
    PROFILES,
    ROOT,
    Compose,
    implementations,
    ports,
)

IMPLEMENTATIONS = implementations()
pytestmark = pytest.mark.skipif(not IMPLEMENTATIONS, reason="no compose (see test_deploy_compose)")
OPERATIONS = ROOT / "docs" / "operations.md"
README = ROOT / "README.md"
#: Global compose options that take a value.
GLOBAL_WITH_VALUE = {"-f", "--file", "--profile", "-p", "--project-name", "--env-file"}
#: Subcommands whose positional arguments are service names.
SERVICE_ARGS = {"up", "ps", "logs", "stop", "start", "restart", "rm", "kill", "pull", "build"}


def documents() -> list[tuple[str, str]]:
    return [("docs/operations.md", OPERATIONS.read_text()), ("README.md", README.read_text())]


def split_markdown(text: str) -> tuple[list[str], list[str]]:
    """(code block lines, prose lines), fences paired in order; continuation lines joined."""
    code: list[str] = []
    prose: list[str] = []
    fenced = False
    for line in text.replace("\\\n", " ").splitlines():
        if line.lstrip().startswith("```"):
            fenced = not fenced
            continue
        (code if fenced else prose).append(line)
    return code, prose


def commands(text: str) -> Iterator[tuple[str, str]]:
    """(command, its source line) for every shell command in code blocks and code spans."""
    code, prose = split_markdown(text)
    for line in code:
        if not line.lstrip().startswith("#"):
            yield from ((part, line) for part in split_shell(re.sub(r"\s+#\s.*$", "", line)))
    for line in prose:
        for span in re.findall(r"`([^`]+)`", line):
            yield from ((part, line) for part in split_shell(span))


def split_shell(code: str) -> list[str]:
    """The simple commands of a line: split at |, ||, &&, ; outside quotes."""
    parts, current, quote = [], "", ""
    i = 0
    while i < len(code):
        char = code[i]
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif code.startswith(("&&", "||"), i) or char in "|;":
            parts.append(current)
            current = ""
            i += 2 if code.startswith(("&&", "||"), i) else 1
            continue
        current += char
        i += 1
    return [part.strip() for part in [*parts, current] if part.strip()]


def compose_commands() -> list[tuple[str, str, str]]:
    """(document, command, source line) of every `docker compose` / `docker-compose` command."""
    found = []
    for name, text in documents():
        for command, line in commands(text):
            words = re.sub(r"^(\w+=\S+\s+)+", "", command)  # VAR=value prefixes
            if re.match(r"(docker compose|docker-compose)\s", words):
                found.append((name, words, line))
    return found


@functools.cache
def configuration() -> dict[str, Any]:
    parsed: dict[str, Any] = IMPLEMENTATIONS[-1].config()
    return parsed


@functools.cache
def help_of(compose: Compose) -> str:
    return compose.help()


@functools.cache
def flags_of(compose: Compose, subcommand: str) -> dict[str, bool]:
    """Options of a subcommand from its --help: flag -> takes a value."""
    text = compose.help(subcommand)
    table: dict[str, bool] = {}
    for match in re.finditer(r"^\s+(-\w)?,?\s*(--[\w-]+)(?:[ =]([^\s-]\S*))?", text, flags=re.M):
        short, long, value = match.groups()
        takes = value is not None and not value.startswith("(")
        table[long] = takes
        if short:
            table[short] = takes
    return table


@functools.cache
def cli_help(program: str, subcommand: str) -> str:
    binary = Path(sys.executable).with_name(program)
    result = subprocess.run(
        [str(binary), subcommand, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, f"{program} has no subcommand {subcommand!r}"
    return result.stdout


def check_service_command(service: dict[str, Any], argv: list[str], where: str) -> None:
    """The arguments `run` passes to the service's entrypoint are valid for its CLI."""
    entrypoint = service.get("entrypoint") or ["orders-consumer"]
    program = Path(entrypoint[0]).name
    assert program in ("orders-consumer", "orders-sim"), where
    subcommand, *rest = argv
    text = cli_help(program, subcommand)
    for word in rest:
        if word.startswith("--"):
            assert re.search(rf"{re.escape(word.split('=')[0])}\b", text), f"{where}: {word}"
        elif not rest or word == rest[0]:
            choices = re.findall(r"\{([\w,-]+)\}", text)
            if choices:
                assert any(word in group.split(",") for group in choices), f"{where}: {word}"


def check_compose_command(compose: Compose, command: str, where: str) -> None:
    services = configuration()["services"]
    words = shlex.split(command)
    words = words[2:] if words[0] == "docker" else words[1:]
    while words and words[0].startswith("-"):
        option = words.pop(0)
        if option == "--profile":
            assert words[0] in PROFILES, f"{where}: no profile {words[0]!r}"
        if option in GLOBAL_WITH_VALUE:
            words.pop(0)
    subcommand, *rest = words
    assert subcommand in help_of(compose), f"{where}: {compose.name} has no {subcommand!r}"
    known = flags_of(compose, subcommand)
    positionals = []
    while rest:
        word = rest.pop(0)
        if word.startswith("-"):
            flag = word.split("=")[0]
            assert flag in known, f"{where}: {compose.name} {subcommand} has no {flag}"
            if known[flag] and "=" not in word:
                rest.pop(0)
            continue
        positionals.append(word)
        if subcommand in ("run", "exec"):
            positionals += rest
            break
    if subcommand in SERVICE_ARGS:
        for name in positionals:
            assert name in services, f"{where}: no service {name!r}"
    if subcommand == "run":
        name, *argv = positionals
        assert name in services, f"{where}: no service {name!r}"
        if argv:
            check_service_command(services[name], argv, where)
    if subcommand == "cp":
        remote = [word for word in positionals if ":" in word]
        assert remote and all(word.split(":")[0] in services for word in remote), where


@pytest.mark.parametrize("compose", IMPLEMENTATIONS, ids=lambda c: c.name)
def test_documented_compose_commands_match_the_file_and_the_cli(compose: Compose) -> None:
    """Each documented compose command names real services and profiles, and uses subcommands
    and flags this compose has; `run` commands use the service's own CLI correctly."""
    found = compose_commands()
    assert len(found) >= 20, found  # the reader finds the commands at all
    for document, command, line in found:
        if "(Compose v2" in line and compose.major != 2:
            continue
        check_compose_command(compose, command, f"{document}: {command}")


def test_log_pipelines_drop_the_prefix_and_do_not_buffer() -> None:
    """A compose `logs` command piped into jq has --no-log-prefix; a piped grep is line-buffered."""
    pipes = [
        line
        for _, text in documents()
        for line in split_markdown(text)[0]
        if " logs " in line and "|" in line
    ]
    assert pipes, "no documented log pipeline"
    for line in pipes:
        if "jq" in line:
            assert "--no-log-prefix" in line, line
        for grep in re.findall(r"\|\s*grep\b[^|]*", line):
            assert "--line-buffered" in grep, line


def test_compose_variables_table_lists_exactly_the_files_variables() -> None:
    """The variables table of docs/operations.md names every ${VAR} of the file, and no other."""
    lines = [
        line for line in COMPOSE_FILE.read_text().splitlines() if not line.lstrip().startswith("#")
    ]
    used = set(re.findall(r"(?<!\$)\$\{(\w+)", "\n".join(lines)))  # $${X} is the shell's
    text = OPERATIONS.read_text()
    section = text[text.index("### Compose variables") : text.index("### The image on its own")]
    rows = [line.split("|")[1] for line in section.splitlines() if line.startswith("| `")]
    documented = {name for cell in rows for name in re.findall(r"`(\w+)`", cell)}
    assert used - documented == set(), "undocumented"
    assert documented - used == set(), "documented but not in docker-compose.yml"
    for _, text in documents():
        for command, _ in commands(text):
            prefix = re.match(r"((?:\w+=\S+\s+)+)docker[ -]compose\b", command)
            for name in re.findall(r"(\w+)=", prefix.group(1)) if prefix else []:
                assert name in used, f"{command}: {name} is not read by docker-compose.yml"


def test_documented_host_ports_are_published_by_the_stack() -> None:
    """Each localhost:PORT of the compose docs is a port the stack publishes by default."""
    published = {
        port for service in configuration()["services"].values() for _, port, _ in ports(service)
    }
    text = OPERATIONS.read_text()
    compose_docs = text[: text.index("## Without Docker")]
    mentioned = {int(port) for port in re.findall(r"localhost:(\d+)", compose_docs)}
    assert {9108, 9111, 9112, 9113, 9092, 3000, 9090} <= mentioned, mentioned
    assert mentioned <= published, mentioned - published


def test_docker_run_examples_of_the_image_use_init_and_fit_the_image() -> None:
    """`docker run` of the image has --init; the simulator's has --no-healthcheck; the
    consumer's mounts /data (the image has no VOLUME); every flag exists in `docker run`."""
    runs = [
        command
        for _, text in documents()
        for command, _ in commands(text)
        if command.startswith("docker run") and "orders-pipeline" in command
    ]
    assert len(runs) >= 3, runs
    docker = shutil.which("docker")
    run_help = (
        subprocess.run(
            [docker, "run", "--help"], capture_output=True, text=True, check=False
        ).stdout
        if docker
        else ""
    )
    for command in runs:
        words = shlex.split(command.replace("...", "X"))
        assert "--init" in words, command
        if "--entrypoint" in words and "orders-sim" in words:
            assert "--no-healthcheck" in words, command
        else:
            mounts = [words[i + 1] for i, word in enumerate(words) if word == "-v"]
            assert any(mount.endswith(":/data") for mount in mounts), command
        for flag in (word.split("=")[0] for word in words if word.startswith("--")):
            if run_help and words.index(flag) < words.index("orders-pipeline:local"):
                assert f"{flag} " in run_help or f"{flag}\n" in run_help, f"{command}: {flag}"


def test_docs_make_no_claims_the_files_contradict() -> None:
    """No "admin/admin to edit" while the dashboard is read-only; the rate is in records/s,
    as `orders-sim publish --help` says, not orders/s; compose-check covers every profile."""
    provider = next((ROOT / "deploy/grafana/provisioning/dashboards").glob("*.yml")).read_text()
    compose_docs = OPERATIONS.read_text()
    if "allowUiUpdates: false" in provider:
        assert not re.search(r"admin`?\s*/\s*`?admin`?\)?\s*to edit", compose_docs)
        assert not re.search(r"admin`?\s*/\s*`?admin`? to edit", compose_docs)
    assert "records per second" in cli_help("orders-sim", "publish")
    assert not re.search(r"orders (per second|/s)", compose_docs)
    makefile = (ROOT / "Makefile").read_text()
    target = makefile[makefile.index("compose-check:") :].split("\n\n")[0]
    for profile in PROFILES:
        assert f"--profile {profile}" in target, f"make compose-check skips profile {profile}"
