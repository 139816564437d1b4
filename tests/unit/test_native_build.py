"""tools/native.py: the native tier is optional for real. A build that cannot happen (no cargo,
an old Rust, offline) warns once and leaves the Python tiers to parse; make install goes on;
Cargo.lock is derived from native/Cargo.pins only when it is missing or does not match them.

Each test runs the real tools/native.py on a copy of native/ in a directory of its own, with a
stand-in cargo on PATH that answers as cargo does (it logs its calls) where a real toolchain
would not fail on demand.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BUILT = "_native" + __import__("importlib.machinery").machinery.EXTENSION_SUFFIXES[0]

# cargo as it answers: versions, and per $FAKE_CARGO the failure of an old Rust, of no network,
# or a build that works (it writes the library cargo would).
FAKE_CARGO = """#!/bin/sh
echo "$*" >> "$CARGO_LOG"
case "$1" in
  --version) echo "cargo $FAKE_RUST (stand-in)"; exit 0;;
esac
case "$FAKE_CARGO/$1" in
  old/build)
    printf '%s %s\\n' "error: package \\`orders_native v0.1.0\\` cannot be built because it" \\
      "requires rustc 1.87 or newer, while the currently active rustc version is $FAKE_RUST" >&2
    echo "Either upgrade rustc or select compatible dependency versions with" >&2
    exit 101;;
  offline/generate-lockfile|offline/build)
    echo "    Updating crates index" >&2
    printf '%s %s\\n' "error: failed to get \\`blake2b_simd\\` as a dependency of package" \\
      "\\`orders_native v0.1.0\\`" >&2
    echo "Caused by: network unreachable" >&2
    exit 101;;
  ok/build)
    mkdir -p target/release && echo built > target/release/lib_native.so; exit 0;;
esac
echo "error: unexpected: $*" >&2
exit 101
"""
FAKE_RUSTC = """#!/bin/sh
echo "rustc $FAKE_RUST (stand-in)"
"""


def tree(tmp_path: Path) -> Path:
    """A copy of what tools/native.py reads and writes: tools/, native/ (no build, no lock)."""
    root = tmp_path / "repo"
    (root / "tools").mkdir(parents=True)
    for name in ("__init__.py", "native.py"):
        shutil.copy(ROOT / "tools" / name, root / "tools" / name)
    shutil.copytree(
        ROOT / "native", root / "native", ignore=shutil.ignore_patterns("target", "Cargo.lock")
    )
    (root / "consumer" / "core").mkdir(parents=True)
    return root


def fake_bin(tmp_path: Path) -> str:
    """A PATH whose cargo and rustc are the stand-ins (the system's tools after them)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for name, script in (("cargo", FAKE_CARGO), ("rustc", FAKE_RUSTC)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    return os.pathsep.join((str(bin_dir), "/usr/bin", "/bin"))


def pinned_lock(root: Path) -> None:
    """A Cargo.lock holding exactly the pins, as one derived from them would."""
    packages = ['[[package]]\nname = "orders_native"\nversion = "0.1.0"\n']
    for line in (root / "native" / "Cargo.pins").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split()
            packages.append(f'[[package]]\nname = "{name}"\nversion = "{version}"\n')
    (root / "native" / "Cargo.lock").write_text("version = 4\n\n" + "\n".join(packages))


def run(
    root: Path, path: str, *args: str, mode: str = "ok", rust: str = "1.80.0"
) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": path,
        "HOME": str(root),
        "CARGO_LOG": str(root / "cargo.log"),
        "FAKE_CARGO": mode,
        "FAKE_RUST": rust,
    }
    return subprocess.run(
        [sys.executable, "-m", "tools.native", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def calls(root: Path) -> list[str]:
    log = root / "cargo.log"
    return log.read_text().splitlines() if log.exists() else []


def test_without_cargo_it_warns_once_removes_a_stale_build_and_exits_0(tmp_path: Path) -> None:
    root = tree(tmp_path)
    stale = root / "consumer" / "core" / BUILT
    stale.write_text("a build of other sources")
    empty = tmp_path / "empty"
    empty.mkdir()
    first = run(root, str(empty))
    assert first.returncode == 0, first.stderr
    lines = first.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("native: warning: cargo is not installed")
    assert "Python tiers" in lines[0]
    assert not stale.exists(), "a build of older sources would disagree with the Python tiers"
    again = run(root, str(empty))
    assert (again.returncode, again.stdout, again.stderr) == (0, "", ""), "warned twice"
    retried = run(root, str(empty), "--retry")
    assert retried.returncode == 0 and "cargo is not installed" in retried.stderr


def test_an_old_rust_warns_with_cargos_reason_once_until_the_toolchain_changes(
    tmp_path: Path,
) -> None:
    root = tree(tmp_path)
    pinned_lock(root)
    path = fake_bin(tmp_path)
    first = run(root, path, mode="old")
    assert first.returncode == 0, first.stderr
    lines = first.stderr.splitlines()
    assert len(lines) == 1, lines
    assert "requires rustc 1.87 or newer" in lines[0] and "Python tiers" in lines[0], lines
    assert not (root / "consumer" / "core" / BUILT).exists()
    again = run(root, path, mode="old")
    assert again.returncode == 0 and again.stderr == "", "warned twice for the same toolchain"
    upgraded = run(root, path, mode="ok", rust="1.95.0")
    assert upgraded.returncode == 0, upgraded.stderr
    assert (root / "consumer" / "core" / BUILT).read_text() == "built\n"


def test_require_makes_a_failed_build_exit_2_with_one_line(tmp_path: Path) -> None:
    """What the image's build runs: it must not ship without the native tier."""
    root = tree(tmp_path)
    pinned_lock(root)
    result = run(root, fake_bin(tmp_path), "--require", mode="old")
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("native: error: "), lines


def test_offline_without_a_lock_warns_and_falls_back(tmp_path: Path) -> None:
    root = tree(tmp_path)
    result = run(root, fake_bin(tmp_path), mode="offline")
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "failed to get `blake2b_simd`" in lines[0], lines
    assert [c for c in calls(root) if c != "--version"] == ["generate-lockfile --quiet"]


def test_a_lock_that_matches_the_pins_is_used_without_resolving_again(tmp_path: Path) -> None:
    """No generate-lockfile or update when Cargo.lock already holds the pins: the build reads
    no index (and, with the crates downloaded, needs no network)."""
    root = tree(tmp_path)
    pinned_lock(root)
    lock = (root / "native" / "Cargo.lock").read_bytes()
    result = run(root, fake_bin(tmp_path))
    assert result.returncode == 0, result.stderr
    assert [c for c in calls(root) if c != "--version"] == ["build --release --locked --quiet"]
    assert (root / "native" / "Cargo.lock").read_bytes() == lock
    assert run(root, fake_bin(tmp_path)).stdout == "", "rebuilt unchanged sources"


def test_a_lock_that_does_not_match_the_pins_is_derived_again(tmp_path: Path) -> None:
    root = tree(tmp_path)
    pinned_lock(root)
    lock = root / "native" / "Cargo.lock"
    lock.write_text(lock.read_text().replace('version = "0.7.0"', 'version = "0.8.0"'))
    run(root, fake_bin(tmp_path), mode="offline")
    assert next(c for c in calls(root) if c != "--version") == "generate-lockfile --quiet"


def test_make_install_goes_on_when_the_build_fails(tmp_path: Path) -> None:
    """The Makefile's install target, with the virtualenv already up to date and a cargo that
    fails: make exits 0, after one warning."""
    root = tree(tmp_path)
    pinned_lock(root)
    locks = ("requirements.lock", "requirements-dev.lock", "pyproject.toml")
    for name in ("Makefile", *locks):
        shutil.copy(ROOT / name, root / name)
    venv = root / ".venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "python").symlink_to(sys.executable)
    lock_hash = hashlib.sha256(b"".join((root / n).read_bytes() for n in locks)).hexdigest()
    (venv / f".installed-{lock_hash[:16]}").touch()
    env = {
        "PATH": fake_bin(tmp_path),
        "HOME": str(root),
        "CARGO_LOG": str(root / "cargo.log"),
        "FAKE_CARGO": "old",
        "FAKE_RUST": "1.80.0",
    }
    make = subprocess.run(
        ["make", "install"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert make.returncode == 0, make.stdout + make.stderr
    assert "pip install" not in make.stdout, "the stand-in virtualenv was not taken as current"
    warnings = [line for line in make.stderr.splitlines() if line.startswith("native: warning")]
    assert len(warnings) == 1, make.stderr
