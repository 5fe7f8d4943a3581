"""auditlint.analysis.sql: string expressions to SQL text, masking, statements, verbs, refreshes."""

from __future__ import annotations

import libcst as cst
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from auditlint.analysis.sql import (
    HOLE,
    is_write,
    mask,
    matview_refreshes,
    split_statements,
    sql_text,
    statement_verb,
    statement_verbs,
    text_call_argument,
)


def _text(code: str) -> str:
    found = sql_text(cst.parse_expression(code))
    assert found is not None
    return found.text


@pytest.mark.parametrize(
    ("code", "value"),
    [
        ('"SELECT 1"', "SELECT 1"),
        ("'a' \"b\"  'c'", "abc"),
        ('r"\\d+"', "\\d+"),
        ('"tab\\there"', "tab\there"),
        ('"a\\\nb"', "ab"),
        ('"\\x41\\u0042\\101"', "ABA"),
        ('f"x = {x} and {{y}}"', f"x = {HOLE} and {{y}}"),
        ('"SELECT " f"{cols}" " FROM t"', f"SELECT {HOLE} FROM t"),
        ('"""\nSELECT 1\n"""', "\nSELECT 1\n"),
    ],
)
def test_sql_text_values(code: str, value: str) -> None:
    assert _text(code) == value


@pytest.mark.parametrize("code", ['b"SELECT 1"', "b'a' b'b'", "name", "1 + 2"])
def test_sql_text_rejects(code: str) -> None:
    assert sql_text(cst.parse_expression(code)) is None


def test_holes_map_to_expressions() -> None:
    text = sql_text(cst.parse_expression('f"SELECT {a} FROM {b.c}"'))
    assert text is not None
    first = text.text.index(HOLE)
    second = text.text.index(HOLE, first + 1)
    assert isinstance(text.hole_at(first), cst.Name)
    assert isinstance(text.hole_at(second), cst.Attribute)
    assert text.hole_at(0) is None


@pytest.mark.parametrize(
    ("code", "after", "expected"),
    [
        ('"REFRESH VIEW x"', "VIEW", '"REFRESH VIEW! x"'),
        ('r"A\\n VIEW x"', "VIEW", 'r"A\\n VIEW! x"'),
        ('"A\\n VIEW x"', "VIEW", '"A\\n VIEW! x"'),
        ('"REFRESH " "VIEW" " x"', "VIEW", '"REFRESH " "VIEW!" " x"'),
        ('f"{{a}} VIEW {x}"', "VIEW", 'f"{{a}} VIEW! {x}"'),
    ],
)
def test_insert_after_maps_value_offsets_to_source(code: str, after: str, expected: str) -> None:
    expr = cst.parse_expression(code)
    text = sql_text(expr)
    assert text is not None
    offset = text.text.index(after) + len(after) - 1
    changes = text.insert_after([(offset, "!")])
    assert changes is not None
    module = cst.parse_module(f"x = {code}\n")
    assign = module.body[0].body[0]  # type: ignore[attr-defined]
    # Re-run on the module's own node so the change map keys are nodes of that tree.
    text = sql_text(assign.value)
    assert text is not None
    changes = text.insert_after([(offset, "!")])
    assert changes is not None

    class Apply(cst.CSTTransformer):
        def on_leave(self, original: cst.CSTNode, updated: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
            return changes.get(original, updated)  # type: ignore[union-attr]

    new = module.visit(Apply())
    assert new.code == f"x = {expected}\n"


def test_insert_after_refuses_holes() -> None:
    text = sql_text(cst.parse_expression('f"{a}b"'))
    assert text is not None and text.insert_after([(0, "!")]) is None


def test_mask_blanks_comments_and_literals_keeping_offsets() -> None:
    sql = "SELECT 'a;b', \"x;y\" -- c;\n/* d; /* nested */ e; */ $q$ f; $q$ E'g\\';h'"
    masked = mask(sql)
    assert len(masked) == len(sql)
    assert ";" not in masked.replace('"x;y"', "")
    assert '"x;y"' in masked
    assert masked.startswith("SELECT 'xxx'")


@pytest.mark.parametrize(
    ("sql", "verbs"),
    [
        ("INSERT INTO t VALUES (1); select 1;; -- x;\n", ["INSERT", "SELECT"]),
        ("WITH x AS (SELECT 1) UPDATE t SET a = 1", ["UPDATE"]),
        ("WITH RECURSIVE x AS (SELECT 1 UNION SELECT 2) SELECT * FROM x", ["SELECT"]),
        ("/* hi */ (SELECT 1)", ["SELECT"]),
        ("'not a statement'", [None]),
        ("", []),
    ],
)
def test_statement_verbs(sql: str, verbs: list[str | None]) -> None:
    assert statement_verbs(sql) == verbs
    assert statement_verb(sql) == (verbs[0] if verbs else None)


def test_is_write() -> None:
    assert is_write("SELECT 1; DELETE FROM t")
    assert is_write("with x as (select 1) insert into t select * from x")
    assert not is_write("SELECT 'DELETE FROM t' -- UPDATE t")
    assert not is_write("CREATE TABLE t (a int)")


def test_split_statements_offsets() -> None:
    sql = "SELECT 1; SELECT ';'; SELECT 2"
    parts = [sql[s.start : s.end].strip() for s in split_statements(sql)]
    assert parts == ["SELECT 1", "SELECT ';'", "SELECT 2"]


def test_text_call_argument() -> None:
    call = cst.parse_expression('sa.text("SELECT 1")')
    assert isinstance(text_call_argument(call, lambda n: "sqlalchemy.text"), cst.SimpleString)
    assert text_call_argument(call, lambda n: "other.text") is call


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("REFRESH MATERIALIZED VIEW a", [(False, False, "a")]),
        ("refresh materialized view concurrently s.a", [(True, False, None)]),
        ("REFRESH MATERIALIZED VIEW a WITH NO DATA", [(False, True, "a")]),
        ("REFRESH MATERIALIZED VIEW %s", [(False, False, None)]),
        (f"REFRESH MATERIALIZED VIEW {HOLE} {HOLE}", [(None, False, None)]),
        ("CREATE MATERIALIZED VIEW a AS SELECT 1", []),
        ("-- REFRESH MATERIALIZED VIEW a\nSELECT 1", []),
        ("SELECT 'REFRESH MATERIALIZED VIEW a'", []),
    ],
)
def test_matview_refreshes(sql: str, expected: list[tuple[bool | None, bool, str | None]]) -> None:
    assert [(r.concurrently, r.with_no_data, r.view) for r in matview_refreshes(sql)] == expected


statement = st.sampled_from(
    ["SELECT 1", "INSERT INTO t VALUES ('a;b')", "UPDATE t SET a = 1 -- x;y\n", "DELETE FROM t /* ; */"]
)


@settings(max_examples=100, deadline=None)
@given(parts=st.lists(statement, min_size=1, max_size=6))
def test_split_round_trips(parts: list[str]) -> None:
    sql = ";\n".join(parts)
    assert [sql[s.start : s.end].strip() for s in split_statements(sql)] == [p.strip() for p in parts]
    assert statement_verbs(sql) == [p.split()[0] for p in parts]
