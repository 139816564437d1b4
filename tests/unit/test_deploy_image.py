"""The Dockerfile builds the image issue 7 asks for, from a build context that holds what it copies.

No Docker engine is needed: the Dockerfile and .dockerignore are read as text, and the image's
HEALTHCHECK command is run here against the consumer's real /healthz server.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

from consumer.serving import http
from consumer.serving.metrics import Metrics

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    logical, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").rstrip() + " " if line.endswith("\\") else line
        if not line.endswith("\\"):
            logical.append(current.strip())
            current = ""
    parsed = []
    for line in logical:
        word, _, rest = line.partition(" ")
        parsed.append((word.upper(), rest.strip()))
    return parsed


def final_stage() -> list[tuple[str, str]]:
    steps = instructions()
    last_from = max(i for i, (word, _) in enumerate(steps) if word == "FROM")
    return steps[last_from:]


def build_args() -> dict[str, str]:
    args: dict[str, str] = {}
    for word, rest in instructions():
        if word == "ARG" and "=" in rest:
            name, _, value = rest.partition("=")
            args.setdefault(name, value)
    return args


def exec_form(rest: str) -> list[str]:
    parsed = json.loads(rest)
    assert isinstance(parsed, list), rest
    return [str(item) for item in parsed]


def dockerignore_excludes(path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    rules = []
    for raw in DOCKERIGNORE.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").strip("/")
        rules.append((negate, re.compile(_glob_regex(pattern))))
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for negate, regex in rules:
        if any(regex.fullmatch(candidate) for candidate in candidates):
            excluded = not negate
    return excluded


def _glob_regex(pattern: str) -> str:
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        elif pattern[i] == "[":
            end = pattern.index("]", i)
            out, i = out + pattern[i : end + 1], end + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return out


def test_image_is_slim_python_non_root_with_consumer_entrypoint() -> None:
    """python:3.11-slim, non-root USER, orders-consumer run, port 9108 on all interfaces."""
    assert build_args()["PYTHON_IMAGE"] == "python:3.11-slim"
    froms = [rest for word, rest in instructions() if word == "FROM"]
    # Every stage is the image's Python, but the one the Rust toolchain is copied from.
    assert all(
        rest.startswith("${PYTHON_IMAGE}") for rest in froms if rest != "${RUST_IMAGE} AS rust"
    )
    stage = final_stage()
    users = [rest for word, rest in stage if word == "USER"]
    assert users, "the runtime stage runs as root"
    uid = users[-1].split(":")[0]
    uid = build_args().get(uid.strip("${}"), uid)
    assert uid.isdigit() and int(uid) != 0
    assert [exec_form(rest) for word, rest in stage if word == "ENTRYPOINT"] == [
        ["orders-consumer"]
    ]
    assert [exec_form(rest) for word, rest in stage if word == "CMD"] == [["run"]]
    assert any(word == "EXPOSE" and "9108" in rest.split() for word, rest in stage)
    env = " ".join(rest for word, rest in stage if word == "ENV")
    assert "ORDERS_METRICS_HOST=0.0.0.0" in env.split(), "the HTTP server would bind 127.0.0.1"


def test_no_volume_instruction_makes_anonymous_volumes() -> None:
    """No VOLUME: every container of the image (the simulator's too) would get an unused one."""
    assert not [rest for word, rest in instructions() if word == "VOLUME"]


def test_runtime_carries_no_pip_or_setuptools_and_dev_pins_come_after_the_runtime_layer() -> None:
    """The venv is made without pip, the base image's setuptools is removed, and a change of
    requirements-dev.lock does not invalidate the layer that installs requirements.lock."""
    steps = instructions()
    runs = [rest for word, rest in steps if word == "RUN"]
    assert any(re.search(r"-m venv\b.*--without-pip.* /opt/venv", run) for run in runs), runs
    runtime_runs = [rest for word, rest in final_stage() if word == "RUN"]
    assert any(re.search(r"pip uninstall .*\bsetuptools\b", run) for run in runtime_runs)
    install = next(
        i for i, (w, rest) in enumerate(steps) if w == "RUN" and "-r requirements.lock" in rest
    )
    dev_copy = next(
        i for i, (w, rest) in enumerate(steps) if w == "COPY" and "requirements-dev.lock" in rest
    )
    assert dev_copy > install, "requirements-dev.lock is copied before the runtime install"
    assert "--python /opt/venv/bin/python" in steps[install][1]


def test_dependencies_come_from_the_lock_without_urls() -> None:
    """pip installs requirements.lock, whose lines are exact pins without URLs."""
    runs = " ".join(rest for word, rest in instructions() if word == "RUN")
    assert re.search(r"pip (--python \S+ )?install [^&]*-r requirements\.lock", runs)
    pins = [
        line.strip()
        for line in (ROOT / "requirements.lock").read_text().splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    ]
    assert pins
    for pin in pins:
        assert re.fullmatch(r"[A-Za-z0-9._-]+(\[[\w,-]+\])?==[\w.!+-]+(\s*;.*)?", pin), pin
        assert "://" not in pin and " @ " not in pin, pin


def test_build_context_holds_what_the_dockerfile_copies_and_nothing_local() -> None:
    """Every COPY source is in the build context; .venv, data, caches and git are not."""
    for word, rest in instructions():
        if word != "COPY" or rest.startswith("--from"):
            continue
        *sources, _target = rest.split()
        for source in sources:
            matches = [p for p in ROOT.glob(source.rstrip("/")) if p.exists()]
            if not any(ch in source for ch in "*?["):
                assert matches, f"COPY {source}: not in the repository"
            for match in matches:
                files = [match] if match.is_file() else [p for p in match.rglob("*") if p.is_file()]
                for file in files:
                    relative = file.relative_to(ROOT).as_posix()
                    if "__pycache__" in relative or relative.endswith(".so"):
                        continue  # caches, and the native tier built for the host's Python
                    assert not dockerignore_excludes(relative), f"{relative} is .dockerignored"
    for local in (
        ".venv/bin/python",
        "data/warehouse.duckdb",
        "warehouse.duckdb",
        ".git/HEAD",
        ".pytest_cache/README.md",
        ".mypy_cache/3.11/x.json",
        "consumer/__pycache__/app.cpython-311.pyc",
        "tests/conftest.py",
        "bench-results/run.json",
        "consumer/core/_native.cpython-311-x86_64-linux-gnu.so",
        "native/Cargo.lock",
        "native/target/release/lib_native.so",
        "native/target/built-from",
        "tools/localkafka.py",
    ):
        assert dockerignore_excludes(local), f"{local} would be sent to the Docker daemon"


def test_healthcheck_command_probes_healthz_of_a_real_metrics_server() -> None:
    """The image's HEALTHCHECK command exits 0 while /healthz is 200 and 1 when it is 503."""
    (healthcheck,) = [rest for word, rest in final_stage() if word == "HEALTHCHECK"]
    command = exec_form(healthcheck.split(" CMD ", 1)[1])
    assert command[:2] == ["python", "-c"]
    assert "/healthz" in command[2]
    for alive, expected_exit in ((True, 0), (False, 1)):
        metrics = Metrics(liveness_timeout=60.0 if alive else 0.0)
        server = http.serve(metrics, 0, "127.0.0.1", None)
        try:
            port = server.server_address[1]
            probe = subprocess.run(
                [sys.executable, "-c", command[2]],
                env={"ORDERS_METRICS_PORT": str(port)},
                capture_output=True,
                timeout=30,
                check=False,
            )
        finally:
            server.shutdown()
            server.server_close()
        assert probe.returncode == expected_exit, probe.stderr


def stages() -> dict[str, list[tuple[str, str]]]:
    """Each named stage's instructions, FROM first, in the Dockerfile's order."""
    named: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for word, rest in instructions():
        if word == "FROM":
            _base, _, name = rest.partition(" AS ")
            assert name, f"FROM {rest}: every stage has a name"
            current = named.setdefault(name.strip(), [])
        if current is not None:
            current.append((word, rest))
    return named


def copies_from(stage: list[tuple[str, str]]) -> list[tuple[str, list[str]]]:
    """(source stage, [paths...]) of each COPY --from=STAGE of a stage."""
    found = []
    for word, rest in stage:
        if word == "COPY" and rest.startswith("--from="):
            source, *paths = rest.split()
            found.append((source.removeprefix("--from="), paths))
    return found


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_the_native_tier_is_built_in_a_rust_stage_and_shipped_in_the_runtime_image() -> None:
    """A multi-stage build: a Rust toolchain at least native/Cargo.toml's rust-version builds
    the extension for the image's own Python (a failed build fails the image's build), the
    build stage puts it in the venv beside consumer/core/native.py, and the runtime stage,
    which gets the venv, refuses to finish without it."""
    named = stages()
    order = list(named)
    rust_image = build_args()["RUST_IMAGE"]
    match = re.fullmatch(r"rust:(\d+\.\d+(?:\.\d+)?)(?:-[a-z]+)*", rust_image)
    assert match, f"RUST_IMAGE={rust_image}: an official rust image of a stated version"
    crate = tomllib.loads((ROOT / "native" / "Cargo.toml").read_text())["package"]
    assert version(match.group(1)) >= version(crate["rust-version"]), (rust_image, crate)
    assert named["rust"][0] == ("FROM", "${RUST_IMAGE} AS rust")

    native = named["native"]
    assert native[0] == ("FROM", "${PYTHON_IMAGE} AS native"), "built for another Python"
    toolchain = {
        path for source, paths in copies_from(native) if source == "rust" for path in paths
    }
    assert {"/usr/local/cargo", "/usr/local/rustup"} <= toolchain, toolchain
    runs = [rest for word, rest in native if word == "RUN"]
    assert any("python -m tools.native --require" in run for run in runs), runs

    build = named["build"]
    shipped = [paths for source, paths in copies_from(build) if source == "native"]
    assert shipped == [["/src/consumer/core/", "/native/"]], shipped
    install = next(i for i, (w, rest) in enumerate(build) if w == "RUN" and "pip wheel" in rest)
    placed = [
        i
        for i, (word, rest) in enumerate(build)
        if word == "RUN" and "/native/_native*.so" in rest and "consumer.core" in rest
    ]
    assert placed and placed[0] > install, "the extension is not put into the installed package"

    runtime = named[order[-1]]
    assert ("build", ["/opt/venv", "/opt/venv"]) in copies_from(runtime)
    checks = " ".join(rest for word, rest in runtime if word == "RUN")
    assert "native.decoder() is not None" in checks, "the image would ship without the tier"
    for name, stage in named.items():
        for source, _paths in copies_from(stage):
            assert order.index(source) < order.index(name), f"{name} copies from {source}"


def test_the_native_stage_copies_what_tools_native_reads() -> None:
    """tools/native.py digests Cargo.toml, Cargo.pins and src/*.rs: all are in the stage."""
    native = stages()["native"]
    copied = " ".join(rest for word, rest in native if word == "COPY")
    for needed in (
        "tools/__init__.py",
        "tools/native.py",
        "native/Cargo.toml",
        "native/Cargo.pins",
        "native/src/",
    ):
        assert needed in copied.split(), needed
