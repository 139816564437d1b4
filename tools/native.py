"""Build the parse's native tier (native/, Rust) into consumer/core, where cargo exists.

    python -m tools.native                  # build if the sources changed; quick otherwise
    python -m tools.native --refresh-pins   # re-resolve, then write native/Cargo.pins

Without cargo it says so and exits 0: the Python tiers then parse everything (slower; see the
README's Throughput section). A failed build exits 2 with one line. No committed file names a
registry, so Cargo.lock is not committed: it is resolved from native/Cargo.pins, which lists
every crate (direct and transitive) at its exact version, and the build runs with --locked.
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
TARGET = ROOT / "consumer" / "core" / f"_native{importlib.machinery.EXTENSION_SUFFIXES[0]}"
STAMP = CRATE / "target" / "built-from"


class BuildError(Exception):
    pass


def sources_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted([CRATE / "Cargo.toml", PINS, *(CRATE / "src").rglob("*.rs")]):
        digest.update(path.relative_to(CRATE).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


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
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise BuildError(f"cargo {' '.join(args)} failed: {last}")
    return result.stdout


def resolve_lock() -> None:
    """Cargo.lock with every crate at its pin."""
    (CRATE / "Cargo.lock").unlink(missing_ok=True)
    cargo("generate-lockfile", "--quiet")
    for name, version in pins():
        if f'name = "{name}"\nversion = "{version}"' not in (CRATE / "Cargo.lock").read_text():
            cargo("update", "--quiet", "--package", name, "--precise", version)


def locked_versions() -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    name = None
    for line in (CRATE / "Cargo.lock").read_text().splitlines():
        if line.startswith("name = "):
            name = line.split('"')[1]
        elif line.startswith("version = ") and name is not None:
            if name != "orders_native":
                found.append((name, line.split('"')[1]))
            name = None
    return sorted(found)


def build() -> None:
    resolve_lock()
    if locked_versions() != sorted(pins()):
        raise BuildError(
            "native/Cargo.pins does not resolve to itself; run python -m tools.native "
            "--refresh-pins"
        )
    cargo("build", "--release", "--locked", "--quiet")
    shutil.copyfile(CRATE / "target" / "release" / "lib_native.so", TARGET)


def refresh_pins() -> None:
    (CRATE / "Cargo.lock").unlink(missing_ok=True)
    cargo("generate-lockfile", "--quiet")
    header = [line for line in PINS.read_text().splitlines() if line.startswith("#")]
    body = [f"{name} {version}" for name, version in locked_versions()]
    PINS.write_text("\n".join(header + body) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.native", description=__doc__)
    parser.add_argument("--refresh-pins", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("cargo") is None:
        print(
            "native: cargo is not installed; the parse runs in Python alone (slower)",
            file=sys.stderr,
        )
        return 0
    try:
        if args.refresh_pins:
            refresh_pins()
        digest = sources_digest()
        if TARGET.exists() and STAMP.exists() and STAMP.read_text() == digest:
            return 0
        print("native: building the parse's native tier (cargo build --release) ...", flush=True)
        build()
        STAMP.write_text(digest)
    except BuildError as exc:
        print(f"native: error: {exc}", file=sys.stderr)
        return 2
    print(f"native: built {TARGET.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
