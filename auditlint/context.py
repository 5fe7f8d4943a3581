"""FileContext: what the engine knows while it walks one file, shared by every rule.

It keeps the ancestors of the current node and, per function, the enclosing loops, `with`
blocks and `try` blocks; it resolves names through the file's imports (`ctx.qualname`) and
follows simple bindings (`ctx.value_of`, `ctx.self_attr_values`). Everything is computed on
demand and cached for the file.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Optional, Sequence, Union

import libcst as cst

from auditlint.analysis.bindings import ScopeFacts, scope_facts
from auditlint.analysis.walk import iter_descendants

if TYPE_CHECKING:
    from auditlint.config import Settings
    from auditlint.rule import Patch, Rule

FunctionNode = Union[cst.FunctionDef, cst.Lambda]
LoopNode = Union[cst.For, cst.While, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp]


@dataclass
class Frame:
    """One function (or the module): the loops, with-blocks and try-blocks open inside it."""

    node: cst.CSTNode
    loops: list[cst.CSTNode] = field(default_factory=list)
    withs: list[Union[cst.With]] = field(default_factory=list)
    trys: list[cst.CSTNode] = field(default_factory=list)


@dataclass
class Report:
    """A finding as a rule reports it, before positions are known."""

    rule: Rule
    node: cst.CSTNode
    message: str
    patch: Optional[Patch]
    statement: Optional[cst.CSTNode]


class FileContext:
    """Shared, per-file state and questions rules ask about names and structure."""

    def __init__(self, module: cst.Module, path: str, settings: Settings) -> None:
        self.module = module
        self.path = path
        self.settings = settings
        self.stack: list[cst.CSTNode] = []
        self.frames: list[Frame] = [Frame(module)]
        self.classes: list[cst.ClassDef] = []
        self.reports: list[Report] = []
        self.rule: Optional[Rule] = None
        self._facts: dict[int, ScopeFacts] = {}
        self._class_attrs: dict[int, dict[str, list[cst.BaseExpression]]] = {}
        self.cache: dict[Any, Any] = {}

    # ---- structure -------------------------------------------------------------------------

    @property
    def fix_style(self) -> str:
        return self.settings.fix_style

    @property
    def node(self) -> cst.CSTNode:
        return self.stack[-1]

    @property
    def parent(self) -> Optional[cst.CSTNode]:
        """The parent of the node being visited."""
        return self.stack[-2] if len(self.stack) > 1 else None

    def ancestors(self) -> Sequence[cst.CSTNode]:
        """Ancestors of the node being visited, innermost first (the node itself excluded)."""
        return self.stack[-2::-1]

    @property
    def function(self) -> Optional[FunctionNode]:
        """The innermost enclosing function or lambda, or None at module level."""
        node = self.frames[-1].node
        return node if isinstance(node, (cst.FunctionDef, cst.Lambda)) else None

    @property
    def in_async_function(self) -> bool:
        fn = self.function
        return isinstance(fn, cst.FunctionDef) and fn.asynchronous is not None

    @property
    def loops(self) -> list[cst.CSTNode]:
        """Loops whose repeated part encloses the current node, in the current function only."""
        return self.frames[-1].loops

    @property
    def withs(self) -> list[cst.With]:
        return self.frames[-1].withs

    @property
    def trys(self) -> list[cst.CSTNode]:
        return self.frames[-1].trys

    @property
    def class_(self) -> Optional[cst.ClassDef]:
        return self.classes[-1] if self.classes else None

    def statement(self) -> Optional[cst.CSTNode]:
        """The innermost statement enclosing the current node."""
        for node in reversed(self.stack):
            if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
                return node
        return None

    def code(self, node: cst.CSTNode) -> str:
        return self.module.code_for_node(node)

    # ---- names -----------------------------------------------------------------------------

    def facts(self, scope: Optional[cst.CSTNode] = None) -> ScopeFacts:
        """Bindings, reads and imports of `scope` (default: the current function or module)."""
        if scope is None:
            scope = self.frames[-1].node
        key = id(scope)
        found = self._facts.get(key)
        if found is None:
            found = scope_facts(scope)
            self._facts[key] = found
        return found

    def _scopes(self) -> list[cst.CSTNode]:
        return [f.node for f in reversed(self.frames)]

    def resolve_name(self, name: str) -> Optional[str]:
        """The qualified name an unqualified `name` stands for through imports, or None."""
        for scope in self._scopes():
            facts = self.facts(scope)
            if name in facts.declared_outer:
                continue
            if name in facts.imports:
                return facts.imports[name]
            if name in facts.bindings:
                return None
        return None

    def qualname(self, node: cst.CSTNode) -> Optional[str]:
        """`asyncio.create_task` for `create_task` after `from asyncio import create_task`.

        Calls in the chain appear as `()`: `asyncio.get_running_loop().create_task`.
        Returns None when the chain does not start at an import (a local, a parameter...).
        """
        if isinstance(node, cst.Name):
            return self.resolve_name(node.value)
        if isinstance(node, cst.Attribute):
            base = self.qualname(node.value)
            return f"{base}.{node.attr.value}" if base else None
        if isinstance(node, cst.Call):
            base = self.qualname(node.func)
            return f"{base}()" if base else None
        return None

    def call_qualname(self, call: cst.Call) -> Optional[str]:
        return self.qualname(call.func)

    def binding_scope(self, name: str) -> Optional[cst.CSTNode]:
        """The innermost scope (function or module) that binds `name`."""
        for scope in self._scopes():
            facts = self.facts(scope)
            if name in facts.declared_outer:
                continue
            if name in facts.bindings:
                return scope
        return None

    def value_of(self, node: cst.CSTNode) -> Optional[cst.BaseExpression]:
        """The expression a name was bound to, when its scope binds it once by a simple
        assignment, walrus or `with ... as name`. `self.attr` follows the class's assignments
        when they all agree."""
        if isinstance(node, cst.Name):
            scope = self.binding_scope(node.value)
            if scope is None:
                return None
            return self.facts(scope).value_at(node.value, node)
        if (
            isinstance(node, cst.Attribute)
            and isinstance(node.value, cst.Name)
            and node.value.value in ("self", "cls")
        ):
            values = self.self_attr_values(node.attr.value)
            if len(values) == 1:
                return values[0]
            if values:
                codes = {self.module.code_for_node(v) for v in values}
                if len(codes) == 1:
                    return values[0]
        return None

    def param_of(self, name: str) -> Optional[cst.Param]:
        """The parameter `name` of the innermost scope binding it, if it is a parameter there."""
        scope = self.binding_scope(name)
        if scope is None:
            return None
        facts = self.facts(scope)
        if len(facts.bindings.get(name, ())) != 1:
            return None
        return facts.params.get(name)

    def annotated_type(self, node: cst.CSTNode) -> Optional[str]:
        """Qualified name of the annotation of the parameter `node` names, if any.

        `tg` in `async def f(tg: asyncio.TaskGroup)` gives `asyncio.TaskGroup`; string
        annotations and `Optional[...]` wrappers are not followed.
        """
        if not isinstance(node, cst.Name):
            return None
        param = self.param_of(node.value)
        if param is None or param.annotation is None:
            return None
        return self.qualname(param.annotation.annotation)

    def self_attr_values(self, attr: str, cls: Optional[cst.ClassDef] = None) -> list[cst.BaseExpression]:
        """Every value assigned to `self.attr` in the class's methods, and to `attr` in its body."""
        cls = cls or self.class_
        if cls is None:
            return []
        table = self._class_attrs.get(id(cls))
        if table is None:
            table = _collect_class_attrs(cls)
            self._class_attrs[id(cls)] = table
        return table.get(attr, [])

    def resolve_call_target(self, func: cst.BaseExpression, depth: int = 0) -> Optional[str]:
        """Qualified name of a callee, following one simple binding of its receiver.

        `s.get` with `s = requests.Session()` gives `requests.Session().get`.
        """
        direct = self.qualname(func)
        if direct is not None:
            return direct
        if depth > 3:
            return None
        if isinstance(func, cst.Attribute):
            base = self.resolve_expr(func.value, depth + 1)
            return f"{base}.{func.attr.value}" if base else None
        if isinstance(func, cst.Name):
            # A local callee: `SessionLocal = sessionmaker(...)`, `get = requests.get`.
            return self.resolve_expr(func, depth + 1)
        return None

    def resolve_expr(self, expr: cst.BaseExpression, depth: int = 0) -> Optional[str]:
        """Qualified form of an expression, following simple bindings up to a few levels."""
        direct = self.qualname(expr)
        if direct is not None or depth > 3:
            return direct
        if isinstance(expr, (cst.Name, cst.Attribute)):
            value = self.value_of(expr)
            if isinstance(value, cst.Await):
                value = value.expression
            if value is not None and value is not expr:
                return self.resolve_expr(value, depth + 1)
            if isinstance(expr, cst.Attribute):
                base = self.resolve_expr(expr.value, depth + 1)
                return f"{base}.{expr.attr.value}" if base else None
        if isinstance(expr, cst.Call):
            base = self.resolve_call_target(expr.func, depth + 1)
            return f"{base}()" if base else None
        return None

    # ---- reporting -------------------------------------------------------------------------

    def report(self, node: cst.CSTNode, message: str, fix: Optional[Patch] = None) -> None:
        """Report a finding of the current rule at `node`."""
        assert self.rule is not None
        self.reports.append(Report(self.rule, node, message, fix, self.statement()))


def _collect_class_attrs(cls: cst.ClassDef) -> dict[str, list[cst.BaseExpression]]:
    table: dict[str, list[cst.BaseExpression]] = {}
    body = cls.body.body if isinstance(cls.body, cst.IndentedBlock) else ()
    for stmt in body:
        if isinstance(stmt, cst.SimpleStatementLine):
            for small in stmt.body:
                if isinstance(small, cst.Assign) and len(small.targets) == 1:
                    t = small.targets[0].target
                    if isinstance(t, cst.Name):
                        table.setdefault(t.value, []).append(small.value)
                elif isinstance(small, cst.AnnAssign) and small.value is not None:
                    if isinstance(small.target, cst.Name):
                        table.setdefault(small.target.value, []).append(small.value)
        elif isinstance(stmt, cst.FunctionDef):
            for node in iter_descendants(stmt.body, into_scopes=False):
                targets: list[tuple[cst.BaseExpression, Optional[cst.BaseExpression]]] = []
                if isinstance(node, cst.Assign):
                    targets = [(t.target, node.value) for t in node.targets]
                elif isinstance(node, cst.AnnAssign):
                    targets = [(node.target, node.value)]
                elif isinstance(node, cst.WithItem) and node.asname is not None:
                    targets = [(node.asname.name, node.item)]
                for target, value in targets:
                    if (
                        value is not None
                        and isinstance(target, cst.Attribute)
                        and isinstance(target.value, cst.Name)
                        and target.value.value in ("self", "cls")
                    ):
                        table.setdefault(target.attr.value, []).append(value)
    return table
