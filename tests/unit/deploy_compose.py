"""Compose without an engine, for the deployment tests: find the implementations, run them on
docker-compose.yml, and read the normalized configuration.

Two implementations are looked for:

- docker-compose 1.x (Debian's package), which prints ``config`` as YAML only; its output is
  converted by the Python interpreter docker-compose itself runs on, which always has PyYAML (a
  hard dependency of docker-compose 1.x); PyYAML is no dependency here.
- Compose v2: the binary named by ``COMPOSE_V2`` (a ``go build`` of
  github.com/docker/compose/v2/cmd, see docs/operations.md), else ``docker compose`` (the CLI
  plugin), else a ``docker-compose`` on PATH that reports version 2. It prints JSON directly.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
PROFILES = ("monitoring", "lake")
YAML_TO_JSON = "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)"


@dataclass(frozen=True)
class Compose:
    """One compose implementation: the argv that runs it and its major version."""

    argv: tuple[str, ...]
    major: int

    @property
    def name(self) -> str:
        return f"compose-v{self.major}"

    def run(
        self, *args: str, env: dict[str, str] | None = None
    ) -> subprocess.CompletedProcess[str]:
        """Run on docker-compose.yml with no variables set but ``env`` and an empty env file, so
        that the file's own defaults apply unless ``env`` overrides them."""
        environment = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME")}
        with tempfile.TemporaryDirectory() as empty:
            env_file = Path(empty) / "empty.env"
            env_file.write_text("")
            return subprocess.run(
                [*self.argv, "--env-file", str(env_file), "-f", str(COMPOSE_FILE), *args],
                capture_output=True,
                text=True,
                env={**environment, **(env or {})},
                cwd=ROOT,
                timeout=60,
                check=False,
            )

    def config(self, env: dict[str, str] | None = None) -> dict[str, Any]:
        """The normalized configuration with every profile enabled, as a dict."""
        profiles = [word for name in PROFILES for word in ("--profile", name)]
        if self.major == 1:
            result = self.run(*profiles, "config", env=env)
            assert result.returncode == 0, result.stderr
            converted = subprocess.run(
                [_interpreter_of(Path(self.argv[0])), "-c", YAML_TO_JSON],
                input=result.stdout,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert converted.returncode == 0, f"cannot read docker-compose 1.x output: {converted}"
            text = converted.stdout
        else:
            result = self.run(*profiles, "config", "--format", "json", env=env)
            assert result.returncode == 0, result.stderr
            text = result.stdout
        parsed: dict[str, Any] = json.loads(text)
        return parsed

    def help(self, *command: str) -> str:
        """The help text of a (sub)command: its options, to check documented flags against."""
        result = subprocess.run(
            [*self.argv, *command, "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        return result.stdout + result.stderr


def _version_of(argv: list[str]) -> int | None:
    try:
        probe = subprocess.run(
            [*argv, "version", "--short"], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError:
        return None
    text = probe.stdout.strip().lstrip("v")
    if probe.returncode != 0 or not text[:1].isdigit():
        return None
    return int(text.split(".")[0])


def implementations() -> list[Compose]:
    """Every compose implementation found, at most one per major version."""
    candidates: list[list[str]] = []
    if explicit := os.environ.get("COMPOSE_V2"):
        candidates.append([explicit])
    if docker := shutil.which("docker"):
        candidates.append([docker, "compose"])
    if binary := shutil.which("docker-compose"):
        candidates.append([binary])
    found: dict[int, Compose] = {}
    for argv in candidates:
        major = _version_of(argv)
        if major is not None and major not in found:
            found[major] = Compose(tuple(argv), major)
    return [found[major] for major in sorted(found)]


def _interpreter_of(script: Path) -> str:
    first = script.read_bytes().split(b"\n", 1)[0].decode()
    assert first.startswith("#!"), f"{script} is not a Python script; cannot read its YAML"
    words = first[2:].split()
    return words[1] if Path(words[0]).name == "env" else words[0]


# -- normalizers: compose 1 prints short syntax, compose 2 long syntax --------------------------


def mounts(service: dict[str, Any]) -> dict[str, tuple[str, bool]]:
    """target -> (source, read_only)"""
    found = {}
    for volume in service.get("volumes", []):
        if isinstance(volume, str):
            source, target, *mode = volume.split(":")
            found[target] = (source, bool(mode) and "ro" in mode[0].split(","))
        else:
            found[volume["target"]] = (volume["source"], bool(volume.get("read_only")))
    return found


def ports(service: dict[str, Any]) -> set[tuple[str, int, int]]:
    """(host_ip, published, target)"""
    found = set()
    for port in service.get("ports", []):
        if isinstance(port, str):
            ip, published, target = port.split("/")[0].rsplit(":", 2)
            found.add((ip, int(published), int(target)))
        else:
            found.add((port.get("host_ip", ""), int(port["published"]), int(port["target"])))
    return found


def has_healthcheck(service: dict[str, Any]) -> bool:
    check: dict[str, Any] = service.get("healthcheck") or {}
    return bool(check) and not check.get("disable") and check.get("test") not in (["NONE"], None)


def depends_on(service: dict[str, Any]) -> dict[str, str]:
    deps = service.get("depends_on", {})
    if isinstance(deps, list):
        return dict.fromkeys(deps, "service_started")
    return {name: spec.get("condition", "service_started") for name, spec in deps.items()}


def script_of(service: dict[str, Any]) -> str:
    """The shell script of a ``entrypoint: [sh, -euc]`` job, as the container receives it
    (``$$`` is Compose's escape for a literal ``$``; ``config`` prints it escaped)."""
    command = service["command"]
    text = command if isinstance(command, str) else command[0]
    return str(text).replace("$$", "$")
