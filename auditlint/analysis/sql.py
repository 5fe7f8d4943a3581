"""SQL held in Python string expressions: the text the database sees, its statements and verbs.

Two layers. `sql_text(node)` turns a string expression (a plain string, implicitly concatenated
pieces, an f-string) into a `SqlText`: the joined value, with each interpolated expression
replaced by `HOLE`, and a map back to the source so a fix can insert text at a value offset.
The string functions (`mask`, `split_statements`, `statement_verb`, `statement_verbs`,
`is_write`, `matview_refreshes`) then reason about SQL text only: comments, quoted literals and
dollar-quoted bodies are masked out, so a keyword inside them never counts and a `;` inside
them never splits a statement.

Typical use::

    text = sql_text(call.args[0].value)            # None when not a (str) string expression
    if text is not None and is_write(text.text):   # INSERT / UPDATE / DELETE / MERGE ...
        ...
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Optional, Sequence, Union

import libcst as cst

#: Stands for one interpolated expression (`{x}` in an f-string) in `SqlText.text`.
HOLE = "\ue000"

#: Verbs of statements that write rows (the first keyword, or the main one after a `WITH`).
WRITE_VERBS = frozenset({"INSERT", "UPDATE", "DELETE", "MERGE", "REPLACE", "UPSERT", "TRUNCATE", "COPY"})
#: Verbs of statements that only read.
READ_VERBS = frozenset({"SELECT", "VALUES", "TABLE", "SHOW", "EXPLAIN"})
#: Qualified names of the SQLAlchemy `text()` constructors, whose first argument is SQL.
TEXT_CONSTRUCTORS = frozenset(
    {"sqlalchemy.text", "sqlalchemy.sql.text", "sqlalchemy.sql.expression.text", "sqlmodel.text"}
)

_ESCAPE_SINGLE = frozenset("\\'\"abfnrtv")
_HEX_LENGTHS = {"x": 2, "u": 4, "U": 8}


@dataclass(frozen=True)
class Piece:
    """One literal fragment of a string expression and where its characters sit in the source."""

    node: Union[cst.SimpleString, cst.FormattedStringText]
    #: Offset in `SqlText.text` of the piece's first character.
    start: int
    #: For each value character (and one past the end), its offset in the node's `value` code.
    code_offsets: tuple[int, ...]

    @property
    def end(self) -> int:
        return self.start + len(self.code_offsets) - 1


@dataclass(frozen=True)
class SqlText:
    """The value of a string expression as the database would receive it."""

    node: cst.BaseExpression
    #: The joined value; each interpolated expression is one `HOLE` character.
    text: str
    pieces: tuple[Piece, ...]
    #: The interpolated expressions, in the order of the `HOLE`s in `text`.
    holes: tuple[cst.BaseExpression, ...]

    def hole_at(self, offset: int) -> Optional[cst.BaseExpression]:
        """The expression interpolated at `offset` (which must hold a `HOLE`), else None."""
        if not 0 <= offset < len(self.text) or self.text[offset] != HOLE:
            return None
        return self.holes[self.text.count(HOLE, 0, offset)]

    def insert_after(self, edits: Sequence[tuple[int, str]]) -> Optional[dict[cst.CSTNode, cst.CSTNode]]:
        """Changes that insert each `(offset, addition)`'s text right after the value character
        at `offset`. Additions must be plain text (no quotes, braces or backslashes). None when
        an offset does not fall on literal text (an interpolation)."""
        by_piece: dict[int, list[tuple[int, str]]] = {}
        for offset, addition in edits:
            index = next((i for i, p in enumerate(self.pieces) if p.start <= offset < p.end), None)
            if index is None:
                return None
            piece = self.pieces[index]
            by_piece.setdefault(index, []).append((piece.code_offsets[offset - piece.start + 1], addition))
        changes: dict[cst.CSTNode, cst.CSTNode] = {}
        for index, inserts in by_piece.items():
            node = self.pieces[index].node
            code = node.value
            head = _prefix_and_quote_length(code) if isinstance(node, cst.SimpleString) else 0
            # From the end, so earlier code offsets stay valid.
            for at, addition in sorted(inserts, reverse=True):
                code = code[: head + at] + addition + code[head + at :]
            changes[node] = node.with_changes(value=code)
        return changes


# ---- Python string expressions -----------------------------------------------------------------


def _prefix_and_quote_length(code: str) -> int:
    prefix = len(code) - len(code.lstrip("rRbBuUfF"))
    quote = 3 if code[prefix : prefix + 3] in ('"""', "'''") else 1
    return prefix + quote


def _decode(body: str, raw: bool, braces: bool) -> Optional[tuple[str, list[int]]]:
    """The value of a string body and the code offset of each value character (plus the end).

    `braces` decodes the `{{` / `}}` of f-string text. None for escapes we do not model.
    """
    out: list[str] = []
    offsets: list[int] = []
    i = 0
    n = len(body)
    while i < n:
        ch = body[i]
        if braces and ch in "{}" and body[i + 1 : i + 2] == ch:
            out.append(ch)
            offsets.append(i)
            i += 2
            continue
        if ch != "\\" or raw:
            out.append(ch)
            offsets.append(i)
            i += 1
            continue
        nxt = body[i + 1 : i + 2]
        if nxt == "\n":
            i += 2
            continue
        if nxt == "\r":
            i += 3 if body[i + 2 : i + 3] == "\n" else 2
            continue
        offsets.append(i)
        if nxt in _ESCAPE_SINGLE:
            out.append(
                {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}.get(nxt, nxt)
            )
            i += 2
        elif nxt in _HEX_LENGTHS:
            digits = body[i + 2 : i + 2 + _HEX_LENGTHS[nxt]]
            try:
                out.append(chr(int(digits, 16)))
            except ValueError:
                return None
            i += 2 + len(digits)
        elif nxt.isdigit() and nxt < "8":
            j = i + 1
            while j < n and j < i + 4 and body[j] in "01234567":
                j += 1
            out.append(chr(int(body[i + 1 : j], 8)))
            i = j
        elif nxt == "N":
            close = body.find("}", i)
            if close < 0:
                return None
            out.append("\ufffd")  # a named character is never SQL syntax
            i = close + 1
        else:
            # An unknown escape keeps its backslash.
            out.append("\\")
            i += 1
    offsets.append(n)
    return "".join(out), offsets


def _pieces_of(node: cst.BaseExpression) -> Optional[list[Union[cst.SimpleString, cst.FormattedString]]]:
    if isinstance(node, cst.ConcatenatedString):
        left = _pieces_of(node.left)
        right = _pieces_of(node.right)
        return None if left is None or right is None else left + right
    if isinstance(node, (cst.SimpleString, cst.FormattedString)):
        return [node]
    return None


def sql_text(node: cst.BaseExpression) -> Optional[SqlText]:
    """The text of a `str` string expression: a plain string, implicitly concatenated pieces
    (judged as one string) or an f-string. None for bytes and for anything else."""
    parts = _pieces_of(node)
    if parts is None:
        return None
    text: list[str] = []
    pieces: list[Piece] = []
    holes: list[cst.BaseExpression] = []
    length = 0
    for part in parts:
        if isinstance(part, cst.SimpleString):
            code = part.value
            head = _prefix_and_quote_length(code)
            prefix = code[: len(code) - len(code.lstrip("rRbBuUfF"))].lower()
            if "b" in prefix:
                return None
            decoded = _decode(code[head : len(code) - (head - len(prefix))], "r" in prefix, False)
            if decoded is None:
                return None
            value, offsets = decoded
            if value != part.evaluated_value:
                return None
            pieces.append(Piece(part, length, tuple(offsets)))
            text.append(value)
            length += len(value)
            continue
        raw = "r" in part.prefix.lower()
        for item in part.parts:
            if isinstance(item, cst.FormattedStringText):
                decoded = _decode(item.value, raw, True)
                if decoded is None:
                    return None
                value, offsets = decoded
                pieces.append(Piece(item, length, tuple(offsets)))
                text.append(value)
                length += len(value)
            elif isinstance(item, cst.FormattedStringExpression):
                holes.append(item.expression)
                text.append(HOLE)
                length += 1
    return SqlText(node, "".join(text), tuple(pieces), tuple(holes))


def text_call_argument(
    node: cst.BaseExpression, qualname: Callable[[cst.BaseExpression], Optional[str]]
) -> cst.BaseExpression:
    """The SQL argument of `text("...")` (resolved with `qualname`), else `node` itself."""
    if isinstance(node, cst.Call) and node.args and node.args[0].keyword is None and not node.args[0].star:
        if qualname(node.func) in TEXT_CONSTRUCTORS:
            return node.args[0].value
    return node


# ---- SQL text ------------------------------------------------------------------------------------


def mask(sql: str) -> str:
    """`sql` with comments blanked to spaces and the contents of quoted literals (`'...'`,
    `E'...'`, `$tag$...$tag$`) replaced by `x`, keeping every offset. Quoted identifiers
    (`"My View"`) are kept. An unterminated comment or literal is masked to the end."""
    out = list(sql)
    i = 0
    n = len(sql)
    while i < n:
        ch = sql[i]
        if ch == "-" and sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            out[i:end] = " " * (end - i)
            i = end
        elif ch == "/" and sql.startswith("/*", i):
            depth = 0
            j = i
            while j < n:
                if sql.startswith("/*", j):
                    depth += 1
                    j += 2
                elif sql.startswith("*/", j):
                    depth -= 1
                    j += 2
                    if depth == 0:
                        break
                else:
                    j += 1
            out[i:j] = [c if c in "\r\n" else " " for c in sql[i:j]]
            i = j
        elif ch == "'":
            j = i + 1
            backslash = i > 0 and sql[i - 1] in "eE" and (i < 2 or not sql[i - 2].isalnum())
            while j < n:
                if backslash and sql[j] == "\\":
                    j += 2
                    continue
                if sql[j] == "'":
                    if sql.startswith("''", j):
                        j += 2
                        continue
                    break
                j += 1
            out[i + 1 : min(j, n)] = "x" * (min(j, n) - i - 1)
            i = j + 1
        elif ch == '"':
            j = sql.find('"', i + 1)
            i = n if j < 0 else j + 1
        elif ch == "$":
            m = re.match(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$", sql[i:])
            if m is None or (i > 0 and (sql[i - 1].isalnum() or sql[i - 1] == "_")):
                i += 1
                continue
            tag = m.group(0)
            close = sql.find(tag, i + len(tag))
            end = n if close < 0 else close
            out[i + len(tag) : end] = "x" * (end - i - len(tag))
            i = n if close < 0 else close + len(tag)
        else:
            i += 1
    return "".join(out)


@dataclass(frozen=True)
class Statement:
    """One statement of a SQL string: `text[start:end]`, without its terminating `;`."""

    start: int
    end: int
    #: The statement's text with comments and literal contents masked (see `mask`).
    masked: str


def split_statements(sql: str) -> list[Statement]:
    """The non-empty statements of `sql`, split on `;` outside comments, literals and quotes."""
    masked = mask(sql)
    out: list[Statement] = []
    start = 0
    in_ident = False
    for i, ch in enumerate(masked):
        if ch == '"':
            in_ident = not in_ident
        elif ch == ";" and not in_ident:
            if masked[start:i].strip():
                out.append(Statement(start, i, masked[start:i]))
            start = i + 1
    if masked[start:].strip():
        out.append(Statement(start, len(masked), masked[start:]))
    return out


_WORD = re.compile(r"[A-Za-z_]+")
_MAIN_VERBS = ("SELECT", "INSERT", "UPDATE", "DELETE", "MERGE", "VALUES", "TABLE")


def _verb_of_masked(masked: str) -> Optional[str]:
    body = masked.lstrip(" \t\r\n(")
    m = _WORD.match(body)
    if m is None:
        return None
    verb = m.group(0).upper()
    if verb != "WITH":
        return verb
    # A common table expression: the main verb is the first one at parenthesis depth 0
    # after the `WITH name AS (...)` clauses.
    depth = 0
    for m2 in re.finditer(r"[()]|[A-Za-z_]+", body[m.end() :]):
        token = m2.group(0)
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        elif depth == 0 and token.upper() in _MAIN_VERBS:
            return token.upper()
    return None


def statement_verb(sql: str) -> Optional[str]:
    """The upper-case verb of the first statement of `sql` (`INSERT`; the main verb after a
    `WITH ...` clause), or None when it has no leading keyword."""
    statements = split_statements(sql)
    return _verb_of_masked(statements[0].masked) if statements else None


def statement_verbs(sql: str) -> list[Optional[str]]:
    """The verb of each statement of `sql`, in order."""
    return [_verb_of_masked(s.masked) for s in split_statements(sql)]


def is_write(sql: str) -> bool:
    """True when some statement of `sql` writes rows (its verb is in `WRITE_VERBS`)."""
    return any(verb in WRITE_VERBS for verb in statement_verbs(sql))


@dataclass(frozen=True)
class MatviewRefresh:
    """A `REFRESH MATERIALIZED VIEW` statement found in SQL text."""

    statement: Statement
    #: Offset in the text just after the `VIEW` keyword, where `CONCURRENTLY` belongs.
    keyword_end: int
    #: True or False when known; None when an interpolation right after `VIEW` may supply it.
    concurrently: Optional[bool]
    with_no_data: bool
    #: The view's name as written, when it is literal text (`reports.daily`, `"Daily"`).
    view: Optional[str]
    #: True when the keywords are upper case (the fix writes `CONCURRENTLY` in the same case).
    upper: bool


_REFRESH = re.compile(r"\s*REFRESH\s+MATERIALIZED\s+VIEW\b", re.IGNORECASE)
_NAME_PART = r'(?:"[^"]*"|[A-Za-z_][\w$]*)'
_NAME = re.compile(rf"\s*({_NAME_PART}(?:\s*\.\s*{_NAME_PART})*)(?=\s|$)")
_PLACEHOLDER = re.compile(r"\s*(%s|%\([A-Za-z_]\w*\)s|\{[^{}]*\}|:[A-Za-z_]\w*|\?|\$\d+|" + HOLE + r")")
_WORD_WITH = re.compile(r"WITH\b", re.IGNORECASE)
_WITH_NO_DATA = re.compile(r"\bWITH\s+NO\s+DATA\b", re.IGNORECASE)


def matview_refreshes(sql: str) -> list[MatviewRefresh]:
    """Every `REFRESH MATERIALIZED VIEW` statement of `sql` (case, whitespace and comment
    tolerant; statements are judged one by one)."""
    out: list[MatviewRefresh] = []
    for stmt in split_statements(sql):
        m = _REFRESH.match(stmt.masked)
        if m is None:
            continue
        rest = stmt.masked[m.end() :]
        keyword_end = stmt.start + m.end()
        concurrently: Optional[bool]
        view: Optional[str] = None
        word = _WORD.match(rest.lstrip())
        if word is not None and word.group(0).upper() == "CONCURRENTLY":
            concurrently = True
        else:
            concurrently = False
            name = _NAME.match(rest)
            placeholder = _PLACEHOLDER.match(rest)
            if name is not None and name.group(1).upper() != "WITH":
                after = rest[name.end() :].strip()
                if after and not _WORD_WITH.match(after):
                    continue  # prose such as "REFRESH MATERIALIZED VIEW took 3 s", not SQL
                view = re.sub(r"\s*\.\s*", ".", name.group(1))
            elif placeholder is not None:
                # `VIEW {a} {b}`: the first interpolation may be `CONCURRENTLY` itself.
                after = rest[placeholder.end() :].strip()
                if after and not after.upper().startswith("WITH"):
                    concurrently = None
            elif rest.strip():
                concurrently = None
            else:
                concurrently = None  # the name (and maybe CONCURRENTLY) comes from elsewhere
        upper = sql[stmt.start + m.end() - 4 : stmt.start + m.end()] == "VIEW"
        out.append(
            MatviewRefresh(
                statement=stmt,
                keyword_end=keyword_end,
                concurrently=concurrently,
                with_no_data=_WITH_NO_DATA.search(stmt.masked) is not None,
                view=view,
                upper=upper,
            )
        )
    return out
