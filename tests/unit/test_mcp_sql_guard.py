"""The SQL guard: only a single statement that provably only reads is read-only; everything it cannot judge is
refused. Generated cases cover the class (every write form, every way of hiding a second statement), not examples."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from coresdk.mcp.sql_guard import SqlRefused, classify

READS = [
    "SELECT * FROM orders",
    "SELECT id, total FROM public.orders WHERE total > 10 ORDER BY id LIMIT 5",
    "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY c.id",
    "WITH recent AS (SELECT * FROM orders WHERE created > now() - interval '1 day') SELECT * FROM recent",
    "SELECT 1 UNION ALL SELECT 2",
    "VALUES (1, 'a'), (2, 'b')",
    "TABLE orders",
    "SELECT lower(name), coalesce(note, '') FROM customers",
    "SELECT * FROM orders WHERE id IN (SELECT order_id FROM lines)",
]
WRITES = [
    "DROP TABLE orders",
    "DROP TABLE IF EXISTS orders CASCADE",
    "DELETE FROM orders",
    "DELETE FROM orders WHERE id = 1 RETURNING *",
    "UPDATE orders SET total = 0",
    "INSERT INTO orders (id) VALUES (1)",
    "INSERT INTO orders SELECT * FROM orders",
    "MERGE INTO orders o USING staged s ON o.id = s.id WHEN MATCHED THEN DELETE",
    "CREATE TABLE x (id int)",
    "CREATE TABLE x AS SELECT * FROM orders",
    "CREATE INDEX i ON orders (id)",
    "ALTER TABLE orders ADD COLUMN x int",
    "ALTER ROLE app SUPERUSER",
    "TRUNCATE orders",
    "GRANT ALL ON orders TO public",
    "REVOKE SELECT ON orders FROM app",
    "COPY orders TO '/tmp/orders.csv'",
    "COPY orders FROM PROGRAM 'id'",
    "SET ROLE postgres",
    "SET search_path = evil",
    "RESET ALL",
    "BEGIN",
    "COMMIT",
    "VACUUM FULL orders",
    "REFRESH MATERIALIZED VIEW v",
    "CALL do_things()",
    "DO $$ BEGIN DELETE FROM orders; END $$",
    "EXPLAIN ANALYZE DELETE FROM orders",
    "PREPARE p AS DELETE FROM orders",
    "EXECUTE p",
    "LOCK TABLE orders",
    "DISCARD ALL",
    "NOTIFY channel",
    "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
    "WITH u AS (UPDATE orders SET total = 0 RETURNING id) SELECT count(*) FROM u",
    "WITH i AS (INSERT INTO audit VALUES (1) RETURNING *) SELECT 1",
    "WITH a AS (SELECT 1), d AS (DELETE FROM orders RETURNING *) SELECT * FROM a",
    "SELECT * INTO stolen FROM orders",
    "SELECT * FROM orders UNION (SELECT * INTO z FROM customers)",
    "SELECT * FROM orders FOR UPDATE",
    "SELECT * FROM orders FOR SHARE SKIP LOCKED",
    "SELECT pg_sleep(30)",
    "SELECT pg_catalog.pg_sleep(30)",
    "SELECT nextval('orders_id_seq')",
    "SELECT setval('orders_id_seq', 1)",
    "SELECT set_config('role', 'postgres', false)",
    "SELECT lo_import('/etc/passwd')",
    "SELECT pg_terminate_backend(123)",
    "SELECT dblink_exec('dbname=x', 'DROP TABLE orders')",
    "SELECT query_to_xml('DELETE FROM orders RETURNING *', true, false, '')",
    "SELECT * FROM orders WHERE my_function(id)",
]
SEPARATORS = [";", "; ", ";\n", " ;\t", ";/* c */", ";-- c\n", ";\r\n", "/* a */;/* b */"]


def refused(sql: str) -> str:
    with pytest.raises(SqlRefused) as err:
        classify(sql)
    assert "Traceback" not in err.value.message
    return err.value.reason


@pytest.mark.parametrize("sql", READS)
def test_single_reads_are_read_only(sql: str) -> None:
    result = classify(sql)
    assert result["read_only"] is True and result["statements"] == 1 and result["effects"] == []


@pytest.mark.parametrize("sql", WRITES)
def test_every_kind_of_write_is_not_read_only_or_refused(sql: str) -> None:
    try:
        result = classify(sql)
    except SqlRefused as err:
        assert err.reason == "SQL_UNPARSABLE"
        return
    assert result["read_only"] is False and result["effects"], result


def test_the_classification_names_kinds_tables_functions_and_effects() -> None:
    assert classify('SELECT u.id FROM Public.Users u JOIN "Orders" o ON true JOIN "lines" l ON true') == {
        "read_only": True,
        "statements": 1,
        "kinds": ["select"],
        "tables": ['"Orders"', "lines", "public.users"],  # as PostgreSQL resolves them: unquoted folds to lower case
        "functions": [],
        "effects": [],
    }
    cte = classify("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d")
    assert cte["tables"] == ["orders"] and cte["effects"] == ["write"]  # the CTE name `d` is not a table
    sleep = classify("SELECT pg_sleep(10), count(*) FROM t")
    assert sleep["functions"] == ["count", "pg_sleep"] and sleep["effects"] == ["function:pg_sleep"]
    assert classify("SELECT * INTO n FROM t")["effects"] == ["select_into"]
    assert classify("SELECT * FROM t FOR UPDATE")["effects"] == ["row_lock"]
    assert classify("DROP TABLE t")["kinds"] == ["drop"]
    assert classify("VACUUM")["kinds"] == ["command:vacuum"]


def test_functions_the_caller_allows_keep_a_statement_read_only() -> None:
    sql = "SELECT jsonb_build_object('id', id) FROM orders"
    assert classify(sql)["read_only"] is False
    assert classify(sql, allowed_functions=["JSONB_BUILD_OBJECT"])["read_only"] is True


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("", "SQL_EMPTY"),
        ("   ", "SQL_EMPTY"),
        (";", "SQL_EMPTY"),
        ("-- only a comment", "SQL_EMPTY"),
        ("/* only a comment */", "SQL_EMPTY"),
        ("SELEC * FROM t", "SQL_UNPARSABLE"),
        ("SELECT * FROM", "SQL_UNPARSABLE"),
        ("SELECT (((1)", "SQL_UNPARSABLE"),
        ("SELEC", "SQL_UNPARSABLE"),  # parses as a bare column, not a statement
        ("LISTEN x", "SQL_UNPARSABLE"),  # parses as an alias, not a statement
        ("SELECT 'unterminated", "SQL_UNPARSABLE"),
        ("SELECT 1\x00; DROP TABLE t", "SQL_UNPARSABLE"),
        ("SELECT " + "(" * 5000 + "1" + ")" * 5000, "SQL_UNPARSABLE"),
        ("SELECT 1 FROM t WHERE x = '" + "a" * 70000 + "'", "SQL_TOO_LONG"),
        ("SELECT 1; SELECT 2", "SQL_MULTIPLE_STATEMENTS"),
        # standard_conforming_strings (on by default): '\' is a whole string, so PostgreSQL runs the DROP
        ("SELECT '\\'; DROP TABLE t; --'", "SQL_MULTIPLE_STATEMENTS"),
        # `$` belongs to an identifier, so `a$$` opens no dollar quote and PostgreSQL runs the DROP
        ("SELECT a$$; DROP TABLE t; --$$ FROM x", "SQL_MULTIPLE_STATEMENTS"),
    ],
)
def test_what_cannot_be_judged_is_refused(sql: str, reason: str) -> None:
    assert refused(sql) == reason


def test_a_statement_that_is_not_text_is_refused() -> None:
    for value in (None, 1, ["SELECT 1"], {"sql": "SELECT 1"}):
        assert refused(value) == "SQL_UNPARSABLE"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1 /* ; DROP TABLE t */",
        "SELECT 1 -- ; DROP TABLE t",
        "SELECT 1 /* /* nested */ ; DROP TABLE t */",
        "SELECT '; DROP TABLE t; --'",
        "SELECT $$ ; DROP TABLE t; $$",
        "SELECT $tag$ ; DROP TABLE t; $tag$",
        "SELECT E'\\'; DROP TABLE t; --'",
        'SELECT "a""; DROP TABLE t; --" FROM x',
        "SELECT 1;",
        "SELECT 1; -- trailing comment",
    ],
)
def test_text_inside_comments_and_strings_is_not_a_statement(sql: str) -> None:
    """Each of these is one statement to PostgreSQL too (tests/integration/test_mcp_sql_differential.py checks)."""
    assert classify(sql)["read_only"] is True


def _recase(text: str, flips: list[bool]) -> str:
    return "".join(c.upper() if flips[i % len(flips)] else c.lower() for i, c in enumerate(text))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(READS + WRITES),
    st.sampled_from(SEPARATORS),
    st.sampled_from(WRITES + READS),
    st.sampled_from(["", ";", "; -- done", "\n"]),
    st.lists(st.booleans(), min_size=1, max_size=7),
)
def test_a_second_statement_is_refused_however_it_is_joined(
    first: str, separator: str, second: str, tail: str, flips: list[bool]
) -> None:
    sql = first + separator + second + tail
    if "$$" not in sql and "'" not in sql:  # case changes keep string and dollar-quote contents meaningful
        sql = _recase(sql, flips)
    assert refused(sql) in ("SQL_MULTIPLE_STATEMENTS", "SQL_UNPARSABLE")


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(WRITES),
    st.sampled_from(["", " ", "\n", "/* x */ ", "-- x\n"]),
    st.lists(st.booleans(), min_size=1, max_size=5),
)
def test_a_write_is_never_read_only_whatever_its_spelling(write: str, prefix: str, flips: list[bool]) -> None:
    sql = prefix + (write if "$$" in write or "'" in write else _recase(write, flips))
    try:
        result = classify(sql)
    except SqlRefused:
        return
    assert result["read_only"] is False


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_is_classified_or_refused_never_an_error(text: str) -> None:
    try:
        result = classify(text)
    except SqlRefused as err:
        assert err.reason in ("SQL_EMPTY", "SQL_UNPARSABLE", "SQL_MULTIPLE_STATEMENTS", "SQL_TOO_LONG")
        return
    assert result["statements"] == 1 and isinstance(result["read_only"], bool)
    assert result["read_only"] == (result["effects"] == [])
