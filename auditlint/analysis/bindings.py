"""Bindings, reads and imports of one scope (a module, function or lambda body), computed on demand.

This is the cheap replacement for LibCST's ScopeProvider: one walk over one scope, done only
when a rule asks a question about a name in it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

import libcst as cst

from auditlint.analysis.walk import iter_children, iter_descendants

ScopeNode = Union[cst.Module, cst.FunctionDef, cst.Lambda]


@dataclass
class Binding:
    """One place where a name is bound in a scope."""

    name: str
    node: cst.CSTNode
    kind: str
    value: Optional[cst.BaseExpression] = None
    seq: int = 0


@dataclass
class ScopeFacts:
    """What one scope binds, reads and imports."""

    node: cst.CSTNode
    bindings: dict[str, list[Binding]] = field(default_factory=dict)
    loads: dict[str, list[cst.Name]] = field(default_factory=dict)
    imports: dict[str, str] = field(default_factory=dict)
    declared_outer: set[str] = field(default_factory=set)
    params: dict[str, cst.Param] = field(default_factory=dict)
    #: id(Name node read) -> its position in source order, to find the binding before a read.
    load_seq: dict[int, int] = field(default_factory=dict)

    def is_bound(self, name: str) -> bool:
        return name in self.bindings and name not in self.declared_outer

    def single_value(self, name: str) -> Optional[cst.BaseExpression]:
        """The value of `name` when the scope binds it exactly once, by a simple assignment."""
        found = self.bindings.get(name)
        if not found or len(found) != 1 or name in self.declared_outer:
            return None
        return found[0].value

    def value_at(self, name: str, read: cst.CSTNode) -> Optional[cst.BaseExpression]:
        """The value of the last binding of `name` before the read `read`, in source order.

        Branches and loops are not considered: this is the "simple binding" rules follow.
        """
        single = self.single_value(name)
        if single is not None:
            return single
        found = self.bindings.get(name)
        seq = self.load_seq.get(id(read))
        if not found or seq is None or name in self.declared_outer:
            return None
        before = [b for b in found if b.seq < seq]
        return before[-1].value if before else None

    def reads(self, name: str) -> list[cst.Name]:
        return self.loads.get(name, [])


def dotted_name(node: cst.CSTNode) -> Optional[str]:
    """`a.b.c` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


def _module_of(node: cst.ImportFrom) -> str:
    dots = "." * len(node.relative)
    if node.module is None:
        return dots
    name = dotted_name(node.module) or ""
    return dots + name


def import_bindings(node: Union[cst.Import, cst.ImportFrom]) -> list[tuple[str, str, cst.CSTNode]]:
    """(local name, qualified name, alias node) for every name an import statement binds."""
    out: list[tuple[str, str, cst.CSTNode]] = []
    if isinstance(node, cst.Import):
        for alias in node.names:
            full = dotted_name(alias.name) or ""
            if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
                out.append((alias.asname.name.value, full, alias))
            else:
                head = full.split(".", 1)[0]
                out.append((head, head, alias))
        return out
    if isinstance(node.names, cst.ImportStar):
        return out
    base = _module_of(node)
    for alias in node.names:
        name = dotted_name(alias.name) or ""
        full = f"{base}.{name}" if base and not base.endswith(".") else f"{base}{name}"
        if alias.asname is not None and isinstance(alias.asname.name, cst.Name):
            out.append((alias.asname.name.value, full, alias))
        else:
            out.append((name, full, alias))
    return out


class _Scanner:
    def __init__(self, facts: ScopeFacts) -> None:
        self.facts = facts
        self.seq = 0

    def bind(self, name: str, node: cst.CSTNode, kind: str, value: Optional[cst.BaseExpression]) -> None:
        self.seq += 1
        self.facts.bindings.setdefault(name, []).append(Binding(name, node, kind, value, self.seq))

    def load(self, node: cst.Name) -> None:
        self.seq += 1
        self.facts.loads.setdefault(node.value, []).append(node)
        self.facts.load_seq[id(node)] = self.seq

    def target(self, node: cst.CSTNode, kind: str, value: Optional[cst.BaseExpression], nested: bool) -> None:
        if isinstance(node, cst.Name):
            if not nested:
                self.bind(node.value, node, kind, value)
        elif isinstance(node, (cst.Tuple, cst.List)):
            for el in node.elements:
                self.target(el.value, kind, None, nested)
        elif isinstance(node, cst.StarredElement):
            self.target(node.value, kind, None, nested)
        else:
            # Attribute or Subscript targets read their base.
            self.scan(node, nested)

    def params(self, params: cst.Parameters, record: bool) -> None:
        all_params = [*params.posonly_params, *params.params, *params.kwonly_params]
        if isinstance(params.star_arg, cst.Param):
            all_params.append(params.star_arg)
        if params.star_kwarg is not None:
            all_params.append(params.star_kwarg)
        for p in all_params:
            if record:
                self.bind(p.name.value, p.name, "param", None)
                self.facts.params[p.name.value] = p
            if p.default is not None:
                self.scan(p.default, False)
            if p.annotation is not None:
                self.scan(p.annotation, False)

    def scan_body_of(self, scope: cst.CSTNode) -> None:
        if isinstance(scope, cst.FunctionDef):
            self.params(scope.params, True)
            self.scan(scope.body, False)
        elif isinstance(scope, cst.Lambda):
            self.params(scope.params, True)
            self.scan(scope.body, False)
        else:
            for child in iter_children(scope):
                self.scan(child, False)

    def scan(self, node: cst.CSTNode, nested: bool) -> None:  # noqa: C901 - one dispatch table
        if type(node) not in _SCANNED:
            # Most nodes bind nothing: skip the chain of tests below (none of its node types
            # has subclasses, so the exact type decides).
            for child in iter_children(node):
                self.scan(child, nested)
            return
        if isinstance(node, cst.Name):
            self.load(node)
        elif isinstance(node, cst.Attribute):
            self.scan(node.value, nested)
        elif isinstance(node, cst.Arg):
            self.scan(node.value, nested)
        elif isinstance(node, cst.Assign):
            single = len(node.targets) == 1
            for t in node.targets:
                self.target(t.target, "assign", node.value if single else None, nested)
            self.scan(node.value, nested)
        elif isinstance(node, cst.AnnAssign):
            self.target(node.target, "annassign", node.value, nested)
            self.scan(node.annotation, nested)
            if node.value is not None:
                self.scan(node.value, nested)
        elif isinstance(node, cst.AugAssign):
            if isinstance(node.target, cst.Name):
                self.load(node.target)
            self.target(node.target, "augassign", None, nested)
            self.scan(node.value, nested)
        elif isinstance(node, cst.NamedExpr):
            self.target(node.target, "walrus", node.value, nested)
            self.scan(node.value, nested)
        elif isinstance(node, cst.For):
            self.target(node.target, "for", None, nested)
            self.scan(node.iter, nested)
            self.scan(node.body, nested)
            if node.orelse is not None:
                self.scan(node.orelse, nested)
        elif isinstance(node, cst.WithItem):
            self.scan(node.item, nested)
            if node.asname is not None:
                self.target(node.asname.name, "with", node.item, nested)
        elif isinstance(node, cst.CompFor):
            # Comprehension variables belong to the comprehension, not to this scope.
            self.target(node.target, "comp", None, True)
            self.scan(node.iter, nested)
            for cond in node.ifs:
                self.scan(cond, nested)
            if node.inner_for_in is not None:
                self.scan(node.inner_for_in, nested)
        elif isinstance(node, (cst.Import, cst.ImportFrom)):
            if not nested:
                for local, full, alias in import_bindings(node):
                    self.bind(local, alias, "import", None)
                    self.facts.imports[local] = full
        elif isinstance(node, (cst.Global, cst.Nonlocal)):
            if not nested:
                for item in node.names:
                    self.facts.declared_outer.add(item.name.value)
        elif isinstance(node, cst.FunctionDef):
            if not nested:
                self.bind(node.name.value, node.name, "def", None)
            for dec in node.decorators:
                self.scan(dec, nested)
            self.params(node.params, False)
            if node.returns is not None:
                self.scan(node.returns, nested)
            self.scan(node.body, True)
        elif isinstance(node, cst.ClassDef):
            if not nested:
                self.bind(node.name.value, node.name, "class", None)
            for dec in node.decorators:
                self.scan(dec, nested)
            for arg in (*node.bases, *node.keywords):
                self.scan(arg, nested)
            self.scan(node.body, True)
        elif isinstance(node, cst.Lambda):
            self.params(node.params, False)
            self.scan(node.body, True)
        elif isinstance(node, cst.ExceptHandler):
            if node.type is not None:
                self.scan(node.type, nested)
            if node.name is not None:
                self.target(node.name.name, "except", None, nested)
            self.scan(node.body, nested)
        elif isinstance(node, cst.Del):
            self.target(node.target, "del", None, nested)
        elif isinstance(node, (cst.ImportAlias, cst.Param)):
            return
        else:
            for child in iter_children(node):
                self.scan(child, nested)


_SCANNED = frozenset(
    {
        cst.Name,
        cst.Attribute,
        cst.Arg,
        cst.Assign,
        cst.AnnAssign,
        cst.AugAssign,
        cst.NamedExpr,
        cst.For,
        cst.WithItem,
        cst.CompFor,
        cst.Import,
        cst.ImportFrom,
        cst.Global,
        cst.Nonlocal,
        cst.FunctionDef,
        cst.ClassDef,
        cst.Lambda,
        cst.ExceptHandler,
        cst.Del,
        cst.ImportAlias,
        cst.Param,
    }
)


def scope_facts(scope: cst.CSTNode) -> ScopeFacts:
    """Compute the facts of a Module, FunctionDef or Lambda."""
    facts = ScopeFacts(scope)
    _Scanner(facts).scan_body_of(scope)
    return facts


def is_main_guard(test: cst.BaseExpression) -> bool:
    """`__name__ == "__main__"` (either way round)."""
    if not isinstance(test, cst.Comparison) or len(test.comparisons) != 1:
        return False
    if not isinstance(test.comparisons[0].operator, cst.Equal):
        return False
    sides = [test.left, test.comparisons[0].comparator]
    names = [s for s in sides if isinstance(s, cst.Name) and s.value == "__name__"]
    strings = [s for s in sides if isinstance(s, cst.SimpleString) and s.evaluated_value == "__main__"]
    return len(names) == 1 and len(strings) == 1


def main_guard_callees(module: cst.Module) -> frozenset[str]:
    """Names the module's `if __name__ == "__main__":` blocks call (`main()`, `run(app)`)."""
    out: set[str] = set()
    for stmt in module.body:
        if isinstance(stmt, cst.If) and is_main_guard(stmt.test):
            for node in iter_descendants(stmt.body):
                if isinstance(node, cst.Call) and isinstance(node.func, cst.Name):
                    out.add(node.func.value)
    return frozenset(out)
