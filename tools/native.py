"""Build the parse's native tier (native/, Rust) into consumer/core, where it can be built.

    python -m tools.native                  # build if the sources changed; quick otherwise
    python -m tools.native --retry          # try again a build that failed before
    python -m tools.native --require        # a build that fails exits 2 (the image's build)
    python -m tools.native --refresh-pins   # re-resolve, then write native/Cargo.pins

The native tier is optional. Without cargo, with a Rust older than native/Cargo.toml's
rust-version, offline, or whatever else fails the build, it warns with one line on stderr,
removes a build of older sources, and exits 0: the Python tiers then parse everything (the same
rows, slower; see docs/performance.md). The failure is remembered for these
sources and this toolchain, so the next runs (every make target runs make install) neither try
again nor warn again until native/ or the toolchain changes, or --retry is given.

No committed file names a registry, so Cargo.lock is not committed: native/Cargo.pins lists
every crate (direct and transitive) at its exact version, and Cargo.lock is derived from it only
when the lock is missing or does not match the pins. Otherwise the lock is used as it is, and
the build (--locked) needs no resolution, nor the network once the crates are downloaded.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.machinery
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CRATE = ROOT / "native"
PINS = CRATE / "Cargo.pins"
LOCK = CRATE / "Cargo.lock"
TARGET = ROOT / "consumer" / "core" / f"_native{importlib.machinery.EXTENSION_SUFFIXES[0]}"
STAMP = CRATE / "target" / "built-from"
FAILED = CRATE / "target" / "failed-for"
NO_CARGO = "cargo is not installed"


class BuildError(Exception):
    pass


def sources_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted([CRATE / "Cargo.toml", PINS, *(CRATE / "src").rglob("*.rs")]):
        digest.update(path.relative_to(CRATE).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def toolchain() -> str:
    """What would build: cargo's and rustc's versions (a failure to tell is an answer too)."""
    if shutil.which("cargo") is None:
        return NO_CARGO
    answers = []
    for tool in ("cargo", "rustc"):
        try:
            result = subprocess.run(
                [tool, "--version"], cwd=CRATE, capture_output=True, text=True, check=False
            )
        except OSError as exc:
            answers.append(f"{tool}: {exc}")
            continue
        said = (result.stdout or result.stderr).strip().splitlines()
        answers.append(said[0] if said else f"{tool}: exit {result.returncode}")
    return "\n".join(answers)


def pins() -> list[tuple[str, str]]:
    found = []
    for line in PINS.read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split()
            found.append((name, version))
    return found


def cargo(*args: str) -> str:
    result = subprocess.run(
        ["cargo", *args], cwd=CRATE, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines() or ["(no output)"]
        # cargo's own "error: ..." line says why; what follows it is advice and context.
        said = next((line for line in lines if line.startswith("error")), lines[-1])
        raise BuildError(f"cargo {' '.join(args)} failed: {said}")
    return result.stdout


def locked_versions() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    name = None
    for line in LOCK.read_text().splitlines():
        if line.startswith("name = "):
            name = line.split('"')[1]
        elif line.startswith("version = ") and name is not None:
            if name != "orders_native":
                found.append((name, line.split('"')[1]))
            name = None
    return sorted(found)


def lock_matches_pins() -> bool:
    return LOCK.exists() and locked_versions() == sorted(pins())


def derive_lock() -> None:
    """Cargo.lock with every crate at its pin, resolved afresh (this needs the registry)."""
    LOCK.unlink(missing_ok=True)
    cargo("generate-lockfile", "--quiet")
    for name, version in pins():
        if f'name = "{name}"\nversion = "{version}"' not in LOCK.read_text():
            cargo("update", "--quiet", "--package", name, "--precise", version)
    if not lock_matches_pins():
        raise BuildError(
            "native/Cargo.pins does not resolve to itself; run python -m tools.native "
            "--refresh-pins"
        )


def build() -> None:
    if not lock_matches_pins():
        derive_lock()
    cargo("build", "--release", "--locked", "--quiet")
    shutil.copyfile(CRATE / "target" / "release" / "lib_native.so", TARGET)


def refresh_pins() -> None:
    LOCK.unlink(missing_ok=True)
    cargo("generate-lockfile", "--quiet")
    header = [line for line in PINS.read_text().splitlines() if line.startswith("#")]
    body = [f"{name} {version}" for name, version in locked_versions()]
    PINS.write_text("\n".join(header + body) + "\n")


def fall_back(reason: str, remembered: str) -> None:
    """Leave no build of other sources behind (it could disagree with the Python tiers), and
    remember the failure."""
    TARGET.unlink(missing_ok=True)
    STAMP.unlink(missing_ok=True)
    FAILED.parent.mkdir(parents=True, exist_ok=True)
    FAILED.write_text(remembered)
    print(
        f"native: warning: {reason}; the parse runs in the Python tiers (the same rows, slower). "
        "Not tried again until native/ or the toolchain changes (python -m tools.native --retry)",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.native", description=__doc__)
    parser.add_argument("--refresh-pins", action="store_true")
    parser.add_argument("--retry", action="store_true", help="try a failed build again")
    parser.add_argument("--require", action="store_true", help="a failed build exits 2")
    args = parser.parse_args(argv)
    digest = sources_digest()
    if TARGET.exists() and STAMP.exists() and STAMP.read_text() == digest and not args.refresh_pins:
        return 0
    tools = toolchain()
    remembered = f"{digest}\n{tools}"
    if not (args.retry or args.require) and FAILED.exists() and FAILED.read_text() == remembered:
        return 0  # warned when it failed
    try:
        if tools == NO_CARGO:
            raise BuildError(NO_CARGO)
        if args.refresh_pins:
            refresh_pins()
        print("native: building the parse's native tier (cargo build --release) ...", flush=True)
        build()
    except (BuildError, OSError) as exc:
        if args.require:
            print(f"native: error: {exc}", file=sys.stderr)
            return 2
        fall_back(str(exc), remembered)
        return 0
    STAMP.write_text(digest)
    FAILED.unlink(missing_ok=True)
    print(f"native: built {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
