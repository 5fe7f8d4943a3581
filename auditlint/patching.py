"""Apply rule patches to a tree: node replacements in one transform, imports, module statements,
and the text edits a patch amounts to (for JSON, SARIF and editors)."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence, Union

import libcst as cst
from libcst.codemod import CodemodContext
from libcst.codemod.visitors import AddImportsVisitor
from libcst.metadata import MetadataWrapper

from auditlint.model import Edit

if TYPE_CHECKING:
    from auditlint.rule import ImportSpec, Patch

Replacement = Union[cst.CSTNode, cst.RemovalSentinel, "cst.FlattenSentinel[Any]"]


class _Replace(cst.CSTTransformer):
    def __init__(self, changes: Mapping[cst.CSTNode, Replacement]) -> None:
        super().__init__()
        self.changes = changes

    def on_visit(self, node: cst.CSTNode) -> bool:
        # A replaced node's subtree is not entered: the replacement already accounts for it.
        return node not in self.changes

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> Any:
        return self.changes.get(original_node, updated_node)


def apply_changes(module: cst.Module, changes: Mapping[cst.CSTNode, Replacement]) -> cst.Module:
    if not changes:
        return module
    result = module.visit(_Replace(changes))
    assert isinstance(result, cst.Module)
    return result


def add_imports(module: cst.Module, imports: Iterable[ImportSpec]) -> cst.Module:
    specs = list(imports)
    if not specs:
        return module
    context = CodemodContext()
    for spec in specs:
        AddImportsVisitor.add_needed_import(context, spec.module, spec.name, spec.asname)
    # `transform_module` would first deep-copy the module for its metadata wrapper; the visitor
    # needs no metadata and leaves its input unchanged, so it visits the tree as it is.
    visitor = AddImportsVisitor(context)
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    with visitor.resolve(wrapper):
        visitor.context = replace(visitor.context, wrapper=wrapper)
        result = wrapper.module.visit(visitor)
    assert isinstance(result, cst.Module)
    return result


def _is_import_line(stmt: cst.CSTNode) -> bool:
    return isinstance(stmt, cst.SimpleStatementLine) and all(
        isinstance(s, (cst.Import, cst.ImportFrom)) for s in stmt.body
    )


def _is_docstring(stmt: cst.CSTNode) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )


def add_module_statements(module: cst.Module, statements: Sequence[str]) -> cst.Module:
    """Insert top-level statements after the leading imports, each only once."""
    if not statements:
        return module
    existing = {module.code_for_node(s).strip() for s in module.body}
    new: list[cst.BaseStatement] = []
    for text in statements:
        if text.strip() in existing:
            continue
        existing.add(text.strip())
        parsed = cst.parse_module(text.strip() + "\n")
        new.extend(parsed.body)
    if not new:
        return module
    index = 0
    for i, stmt in enumerate(module.body):
        if _is_import_line(stmt) or (i == 0 and _is_docstring(stmt)):
            index = i + 1
        elif isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            break
        elif isinstance(stmt, cst.If) or isinstance(stmt, cst.Try):
            # `try: import x / except ImportError` blocks belong to the imports.
            code = module.code_for_node(stmt)
            if "import " in code and "def " not in code and "class " not in code:
                index = i + 1
            else:
                break
        else:
            break
    if index > 0:
        new[0] = new[0].with_changes(leading_lines=[cst.EmptyLine()])
    body: list[Any] = list(module.body)
    if index < len(body):
        nxt = body[index]
        if not getattr(nxt, "leading_lines", ()):
            body[index] = nxt.with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
    body[index:index] = new
    return module.with_changes(body=body)


def apply_patch_extras(module: cst.Module, patches: Iterable[Patch]) -> cst.Module:
    imports: list[ImportSpec] = []
    statements: list[str] = []
    for patch in patches:
        imports.extend(patch.imports)
        statements.extend(patch.module_statements)
    module = add_imports(module, imports)
    return add_module_statements(module, statements)


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for i, ch in enumerate(text):
        if ch == "\n" or (ch == "\r" and text[i + 1 : i + 2] != "\n"):
            starts.append(i + 1)
    return starts


def _position(starts: list[int], offset: int) -> tuple[int, int]:
    lo, hi = 0, len(starts) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if starts[mid] <= offset:
            lo = mid
        else:
            hi = mid - 1
    return lo + 1, offset - starts[lo] + 1


def text_edit(old: str, new: str) -> Edit | None:
    """The single edit that turns `old` into `new` (common prefix and suffix stripped)."""
    if old == new:
        return None
    limit = min(len(old), len(new))
    start = 0
    while start < limit and old[start] == new[start]:
        start += 1
    end_old, end_new = len(old), len(new)
    while end_old > start and end_new > start and old[end_old - 1] == new[end_new - 1]:
        end_old -= 1
        end_new -= 1
    starts = _line_starts(old)
    line, col = _position(starts, start)
    end_line, end_col = _position(starts, end_old)
    return Edit(line, col, end_line, end_col, new[start:end_new])


def patch_edits(module: cst.Module, patch: Patch) -> tuple[Edit, ...]:
    """The text edits a patch amounts to, relative to the module's text."""
    old = module.code
    edits: list[Edit] = []
    body = text_edit(old, apply_changes(module, patch.changes).code)
    if body is not None:
        edits.append(body)
    if patch.imports or patch.module_statements:
        extra = text_edit(old, apply_patch_extras(module, [patch]).code)
        if extra is not None:
            edits.append(extra)
    edits.sort(key=lambda e: (e.line, e.column))
    return tuple(edits)
