"""Classify the SQL a database tool is asked to run, so policy can decide on what the statement *does*.

The statement is parsed with a real SQL parser (sqlglot, PostgreSQL dialect by default), never matched with
regular expressions: comments, quoting and dollar-quoting decide where a statement ends, and only a parser agrees
with the server on that. Fail closed throughout:

- text that does not parse, is empty, too long, or holds more than one statement is refused (`SqlRefused`);
- `read_only` is an allowlist: the statement must be a query (SELECT, set operations, VALUES) and nothing inside it
  may write (data-modifying CTEs, SELECT ... INTO, row locks, anything the parser only knows as an opaque command),
  and every function it calls must be one the parser knows as a standard function, or one the caller allows.
  A function the parser does not know (`pg_sleep`, `nextval`, `set_config`, a user-defined function) can do
  anything, so it makes the statement not read-only and is named in `effects`.

`classify()` returns a plain dict for Rego (`input.context.sql`). This is a policy input, not a sandbox: run database
tools with a read-only role or transaction as well.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

import sqlglot
from sqlglot import exp

from coresdk.errors import InvalidArgument

DEFAULT_MAX_CHARS = 64 * 1024
DEFAULT_DIALECT = "postgres"

# sqlglot logs statements it cannot fully parse, with the text: tool arguments must not reach logs that way.
logging.getLogger("sqlglot").setLevel(logging.ERROR)

_QUERY_ROOTS = (exp.Select, exp.SetOperation, exp.Values, exp.Subquery)
# Node types that write, lock, or escape the parser's understanding, wherever they appear in the tree.
_EFFECTS: tuple[tuple[type[exp.Expr], str], ...] = (
    (exp.DML, "write"),
    (exp.DDL, "ddl"),
    (exp.Command, "command"),
    (exp.Into, "select_into"),
    (exp.Lock, "row_lock"),
    (exp.Drop, "ddl"),
    (exp.Alter, "ddl"),
    (exp.TruncateTable, "write"),
    (exp.Grant, "privileges"),
    (exp.Revoke, "privileges"),
    (exp.Set, "session"),
    (exp.Transaction, "transaction"),
    (exp.Commit, "transaction"),
    (exp.Rollback, "transaction"),
)
_PLAIN_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_$]*")


class SqlRefused(InvalidArgument):
    """The statement cannot be judged, so it is not run. `reason` names why (SQL_UNPARSABLE, SQL_EMPTY,
    SQL_TOO_LONG, SQL_MULTIPLE_STATEMENTS)."""


def _identifier(ident: exp.Expr) -> str:
    name = ident.name
    if isinstance(ident, exp.Identifier) and ident.quoted:
        return name if _PLAIN_IDENTIFIER.fullmatch(name) else '"' + name.replace('"', '""') + '"'
    return name.lower()


def _table_name(table: exp.Table) -> str | None:
    if not isinstance(table.this, exp.Identifier):
        return None  # a function in FROM (generate_series(...)) is not a table
    parts = [table.args.get("catalog"), table.args.get("db"), table.this]
    return ".".join(_identifier(p) for p in parts if isinstance(p, exp.Identifier))


def _function_name(func: exp.Func) -> tuple[str, bool]:
    """(name, opaque): opaque when the parser knows nothing of what the function does."""
    if isinstance(func, exp.Anonymous | exp.AnonymousAggFunc):
        return str(func.name).lower(), True
    return func.sql_name().lower(), False


def _kind(statement: exp.Expr) -> str:
    if isinstance(statement, exp.Command):
        return "command:" + str(statement.this).split()[0].lower() if str(statement.this).strip() else "command"
    return type(statement).__name__.lower()


def _parse(sql: str, dialect: str) -> list[exp.Expr]:
    try:
        parsed = sqlglot.parse(sql, read=dialect)
    except RecursionError:
        raise SqlRefused("SQL_UNPARSABLE", "the statement is nested too deeply") from None
    except Exception as exc:  # any parser failure is a refusal: fail closed, never a stack trace
        first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise SqlRefused("SQL_UNPARSABLE", f"the statement does not parse: {first_line[:160]}") from None
    # Comments after the last ';' come back as Semicolon nodes; they are not statements.
    return [e for e in parsed if e is not None and not isinstance(e, exp.Semicolon)]


def classify(
    sql: Any,
    *,
    dialect: str = DEFAULT_DIALECT,
    max_chars: int = DEFAULT_MAX_CHARS,
    allowed_functions: Iterable[str] = (),
) -> dict[str, Any]:
    """The policy view of one SQL statement, or SqlRefused.

    Keys: read_only (bool), statements (always 1 here), kinds (statement types), tables (names as PostgreSQL
    resolves them, sorted), functions (every function called, sorted), effects (why it is not read-only, sorted;
    empty when read_only)."""
    if not isinstance(sql, str):
        raise SqlRefused("SQL_UNPARSABLE", "the statement must be a string")
    if len(sql) > max_chars:
        raise SqlRefused("SQL_TOO_LONG", f"the statement is longer than {max_chars} characters")
    if "\x00" in sql:
        raise SqlRefused("SQL_UNPARSABLE", "the statement contains a NUL character")
    statements = _parse(sql, dialect)
    if not statements:
        raise SqlRefused("SQL_EMPTY", "no statement")
    if len(statements) > 1:
        raise SqlRefused("SQL_MULTIPLE_STATEMENTS", f"{len(statements)} statements; one is allowed")
    statement = statements[0]
    if not isinstance(statement, _QUERY_ROOTS + tuple(t for t, _ in _EFFECTS)):
        # sqlglot also parses bare expressions (`SELEC` is a column, `LISTEN x` an alias): not a statement.
        raise SqlRefused("SQL_UNPARSABLE", "the text does not parse as a SQL statement")
    allowed = {f.lower() for f in allowed_functions}
    effects: set[str] = set()
    if not isinstance(statement, _QUERY_ROOTS):
        effects.add("statement:" + _kind(statement))
    ctes = {_identifier(c.args["alias"].this) for c in statement.find_all(exp.CTE) if c.args.get("alias")}
    tables: set[str] = set()
    functions: set[str] = set()
    for node in statement.walk():
        for node_type, effect in _EFFECTS:
            if isinstance(node, node_type):
                effects.add(effect)
        if isinstance(node, exp.Table):
            name = _table_name(node)
            if name and not (name in ctes and not node.args.get("db")):
                tables.add(name)
        elif isinstance(node, exp.Func):
            name, opaque = _function_name(node)
            functions.add(name)
            if opaque and name not in allowed:
                effects.add(f"function:{name}")
    return {
        "read_only": not effects,
        "statements": 1,
        "kinds": [_kind(statement)],
        "tables": sorted(tables),
        "functions": sorted(functions),
        "effects": sorted(effects),
    }
