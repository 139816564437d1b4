"""Ad-hoc read-only SQL over the warehouse (``orders-consumer sql``): one query, nothing else.

A statement is judged by DuckDB's own parser, never by how it starts:
- exactly one statement;
- a query: SELECT, WITH, VALUES, FROM-first, TABLE, DESCRIBE, SHOW, SUMMARIZE (DuckDB's
  ``json_serialize_sql`` serialises queries only, so PRAGMA, CALL, COPY, SET, DDL, DML and
  transaction control are all refused, whatever their statement type says), or EXPLAIN of such
  a query without ANALYZE (EXPLAIN ANALYZE runs the statement);
- no function with a side effect (``checkpoint()``, ``query('...')`` which runs SQL text the
  parser never saw, ``nextval``, DuckLake's maintenance functions, the postgres scanner's
  pass-through functions ...).

That is the first wall. Every path that runs such a query also runs it inside a READ ONLY
transaction on a connection whose external access is off (``read_transaction`` and the
callers in ``commands.reading`` / ``serving.channel``): a statement the parser misjudged can
then neither write a table nor touch a file.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

import duckdb

from consumer.errors import ConfigError

MAX_ROWS = 100_000

# Functions a query may not call: they change state, or run SQL text that skips this check.
SIDE_EFFECTS = frozenset(
    {
        "checkpoint",
        "force_checkpoint",
        "query",
        "nextval",
        "setseed",
        "duckdb_secrets",
        "which_secret",
        "postgres_query",
        "postgres_execute",
        "postgres_attach",
        "postgres_scan",
        "postgres_scan_pushdown",
    }
)
# DuckLake's functions that only read; every other ``ducklake_*`` one is refused.
DUCKLAKE_READS = frozenset(
    {
        "ducklake_snapshots",
        "ducklake_current_snapshot",
        "ducklake_last_committed_snapshot",
        "ducklake_table_info",
        "ducklake_list_files",
        "ducklake_table_changes",
        "ducklake_table_insertions",
        "ducklake_table_deletions",
        "ducklake_options",
        "ducklake_settings",
    }
)
QUERY_STARTS = frozenset(
    {"SELECT", "WITH", "VALUES", "FROM", "TABLE", "DESCRIBE", "SHOW", "SUMMARIZE", "("}
)
ANALYZE = frozenset({"ANALYZE", "ANALYSE"})


def check_read(sql: str) -> None:
    """ConfigError (exit 2, one line) unless ``sql`` is exactly one read (module docstring)."""
    try:
        statements = duckdb.extract_statements(sql)
    except duckdb.Error as exc:
        raise ConfigError(f"sql: {_line(exc)}") from None
    if len(statements) != 1:
        raise ConfigError(f"sql: exactly one statement, please (got {len(statements)})")
    # The text as given: DuckDB rewrites some statements (``PRAGMA version`` becomes a SELECT of
    # ``pragma_version()``), and the rewrite must not be what is judged.
    text = sql
    words = _words(text)
    if statements[0].type == duckdb.StatementType.EXPLAIN:
        text = _explained(text, words)
    elif statements[0].type != duckdb.StatementType.SELECT:
        raise ConfigError(f"sql: only reads are allowed, not {_first_word(words, statements[0])}")
    tree = _serialised(text)
    if tree is None:
        raise ConfigError(f"sql: only reads are allowed, not {_first_word(_words(text), None)}")
    for name in _functions(tree):
        if name in SIDE_EFFECTS or (name.startswith("ducklake_") and name not in DUCKLAKE_READS):
            raise ConfigError(f"sql: only reads are allowed; {name}() is refused")


def run_sql(
    con: Any, sql: str, max_rows: int = MAX_ROWS
) -> tuple[list[str], list[tuple[Any, ...]]]:
    """Column names and rows of one read, in a READ ONLY transaction; ConfigError for anything
    else or a failing query."""
    check_read(sql)
    try:
        with read_transaction(con):
            result = con.execute(sql)
            columns = [d[0] for d in result.description or []]
            rows = result.fetchmany(max_rows + 1)
    except duckdb.Error as exc:
        raise ConfigError(f"sql: {_line(exc)}") from None
    if len(rows) > max_rows:
        raise ConfigError(f"sql: more than {max_rows:,} rows; add a LIMIT or aggregate")
    return columns, rows


@contextmanager
def read_transaction(con: Any) -> Iterator[None]:
    """A READ ONLY transaction, always rolled back: nothing run inside can write a table."""
    con.execute("BEGIN TRANSACTION READ ONLY")
    try:
        yield
    finally:
        with suppress(duckdb.Error):
            con.execute("ROLLBACK")


def _words(text: str) -> list[tuple[int, str]]:
    """Each token's offset and its text (DuckDB's tokenizer skips comments)."""
    tokens = [position for position, _ in duckdb.tokenize(text)]
    ends = [*tokens[1:], len(text)]
    return [(start, text[start:end].strip()) for start, end in zip(tokens, ends, strict=True)]


def _first_word(words: list[tuple[int, str]], statement: Any) -> str:
    if words:
        return words[0][1].split("(")[0].upper() or "this statement"
    return statement.type.name if statement is not None else "this statement"


def _explained(text: str, words: list[tuple[int, str]]) -> str:
    """The query an EXPLAIN explains; ConfigError for EXPLAIN ANALYZE, which runs it."""
    upper = [word.upper() for _, word in words]
    index = 1
    if index < len(upper) and upper[index] in ANALYZE:
        raise ConfigError("sql: EXPLAIN ANALYZE runs the statement; use EXPLAIN without ANALYZE")
    if index + 1 < len(upper) and upper[index] == "(" and upper[index + 1] not in QUERY_STARTS:
        depth = 0
        while index < len(upper):  # EXPLAIN's options, up to their closing parenthesis
            if upper[index] in ANALYZE:
                raise ConfigError(
                    "sql: EXPLAIN (ANALYZE) runs the statement; use EXPLAIN without ANALYZE"
                )
            depth += upper[index] == "("
            depth -= upper[index] == ")"
            index += 1
            if depth == 0:
                break
    if index >= len(words):
        raise ConfigError("sql: EXPLAIN of nothing")
    return text[words[index][0] :]


def _serialised(text: str) -> Any:
    """DuckDB's syntax tree of a query, or None when the text is not exactly one query."""
    con = duckdb.connect(config={"enable_external_access": False})
    try:
        raw = con.execute("SELECT json_serialize_sql(?::VARCHAR)", [text]).fetchone()
    except duckdb.Error:
        return None
    finally:
        con.close()
    tree: dict[str, Any] = json.loads(raw[0]) if raw else {"error": True}
    statements = tree.get("statements")
    if tree.get("error") or not isinstance(statements, list) or len(statements) != 1:
        return None
    return tree


def _functions(node: Any) -> Iterator[str]:
    """Every function name the tree calls (scalar, aggregate and table functions)."""
    if isinstance(node, dict):
        name = node.get("function_name")
        if isinstance(name, str):
            yield name.lower()
        for value in node.values():
            yield from _functions(value)
    elif isinstance(node, list):
        for value in node:
            yield from _functions(value)


def _line(exc: BaseException) -> str:
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
