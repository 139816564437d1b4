"""The package's layering, read from the source: what each layer may import."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What may build, serve or run a command sits above the engine: nothing below imports it.
ABOVE = {"consumer.wiring", "consumer.cli", "consumer.commands", "consumer.serving"}
SERVERS = {"http.server", "socketserver"}
FORBIDDEN = {
    "consumer/core": {"confluent_kafka", "duckdb", "consumer.kafka", "consumer.warehouse",
                      "consumer.runtime", "prometheus_client", *ABOVE, *SERVERS},
    "consumer/warehouse": {"confluent_kafka", "consumer.kafka", "consumer.runtime", *ABOVE,
                           *SERVERS},
    "consumer/kafka": {"duckdb", "consumer.warehouse", "consumer.runtime", *ABOVE, *SERVERS},
    # The engine serves nothing: it counts into the metrics, which the server exposes.
    "consumer/runtime": {*ABOVE, *SERVERS},
    "consumer/serving": {"confluent_kafka", "consumer.kafka", "consumer.runtime",
                         "consumer.commands", "consumer.wiring", "consumer.cli"},
    "consumer/commands": {"consumer.wiring", "consumer.cli", *SERVERS},
    "orders_common": {"consumer", "producer_sim", "duckdb", "polars"},
    "producer_sim": {"consumer"},
}  # fmt: skip
ALLOWED = {"consumer/runtime": {"consumer.serving.metrics"}}


def imported_modules(path: Path, package: str | None = None) -> set[str]:
    """Every module the file imports, relative imports resolved against its package (by
    default, the folder it is in); for ``from X import name``, both X and X.name (the name may
    be a module)."""
    parts = list(path.relative_to(ROOT).parts[:-1]) if package is None else package.split(".")
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = parts[: len(parts) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
    return names


def breaks(module: str, forbidden: set[str], allowed: frozenset[str] = frozenset()) -> bool:
    def under(names: set[str] | frozenset[str]) -> bool:
        return any(module == f or module.startswith(f + ".") for f in names)

    return under(forbidden) and not under(allowed)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_each_layer_imports_only_what_it_may(layer: str) -> None:
    """The core imports neither Kafka nor DuckDB; the warehouse and Kafka layers do not import
    each other or the runtime; the runtime serves nothing and imports neither the commands
    nor the wiring; serving does not reach into the engine or Kafka; the shared package and
    the simulator import no service."""
    files = sorted((ROOT / layer).rglob("*.py"))
    assert files
    offences = {
        f"{path.relative_to(ROOT)}: {module}"
        for path in files
        for module in imported_modules(path)
        if breaks(module, FORBIDDEN[layer], frozenset(ALLOWED.get(layer, ())))
    }
    assert not offences


def test_a_forbidden_import_is_noticed(tmp_path: Path) -> None:
    """The checker itself sees both import forms."""
    source = tmp_path / "m.py"
    source.write_text("import duckdb.typing\nfrom confluent_kafka import Consumer\n")
    found = imported_modules(source, "consumer.core")
    assert breaks("duckdb.typing", {"duckdb"}) and "confluent_kafka" in found


def test_a_relative_import_is_read_as_the_module_it_names(tmp_path: Path) -> None:
    """``from . import x`` and ``from ..y import z`` resolve against the file's package, so a
    relative import cannot slip past a layer's rule."""
    source = tmp_path / "m.py"
    source.write_text("from . import loop\nfrom ..serving.http import serve\nfrom .x import y\n")
    found = imported_modules(source, "consumer.runtime")
    assert {"consumer.runtime.loop", "consumer.serving.http", "consumer.runtime.x.y"} <= found
    assert any(
        breaks(m, FORBIDDEN["consumer/runtime"], frozenset(ALLOWED["consumer/runtime"]))
        for m in found
    )
    assert not breaks(
        "consumer.serving.metrics",
        FORBIDDEN["consumer/runtime"],
        frozenset(ALLOWED["consumer/runtime"]),
    )


def test_pyproject_lists_every_python_package_folder() -> None:
    """pyproject lists every folder with an __init__.py (data folders: the next test)."""
    listed = set(
        tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]
    )
    folders = {
        ".".join(init.parent.relative_to(ROOT).parts)
        for top in ("consumer", "orders_common", "producer_sim")
        for init in (ROOT / top).rglob("__init__.py")
    }
    assert folders <= listed


def test_the_wheel_holds_every_module_sql_file_and_dashboard_asset(tmp_path: Path) -> None:
    """The wheel that the image installs, built from a copy of the sources, holds every Python
    module, every SQL file (as consumer/sql/..., where sql_dir() reads them) and every dashboard
    asset: none is left behind for an installed consumer to miss at run time."""
    source = tmp_path / "src"
    junk = shutil.ignore_patterns("__pycache__", "*.so", "*.pyc", "*.duckdb*")
    for top in ("consumer", "orders_common", "producer_sim", "sql"):
        shutil.copytree(ROOT / top, source / top, ignore=junk)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--no-index", "--wheel-dir", str(tmp_path / "wheel"), str(source)],
        capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    (wheel,) = (tmp_path / "wheel").glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        held = set(archive.namelist())
    wanted = {
        path.relative_to(source).as_posix()
        for top in ("consumer", "orders_common", "producer_sim")
        for path in (source / top).rglob("*")
        if path.is_file() and (path.suffix == ".py" or "dashboard" in path.parts)
    }
    wanted |= {
        "consumer/" + path.relative_to(source).as_posix()
        for path in (source / "sql").rglob("*.sql")
    }
    assert wanted - held == set()


def test_no_module_is_over_300_lines() -> None:
    """Modules stay small enough to read in one sitting."""
    long = {
        str(path.relative_to(ROOT)): n
        for top in ("consumer", "orders_common", "producer_sim")
        for path in (ROOT / top).rglob("*.py")
        if (n := len(path.read_text().splitlines())) > 300
    }
    assert not long
