"""Does a value change between two points of one scope, or from one loop iteration to the next?

The analysis is syntactic, flow-insensitive and conservative: when it cannot tell, the answer is
"it may change". A value is watched through the name chains it reads (`payload`,
`self.body`, `data["items"]`); it may change in a region of code when, in that region,

- its root name is rebound (assignment, loop or comprehension target, walrus, `with`/`except`
  `as`, `del`, `import`, `def`, augmented assignment);
- the object at the chain, at a prefix of it or below it is mutated: a method call on it (other
  than a few read-only ones such as `get`, `keys`, `items`), item or attribute assignment or
  deletion, augmented assignment, calling it, entering it with `with`;
- it escapes: passed to a call that is not known to be harmless (`len`, `print`, `json.dumps`,
  `copy.deepcopy`, logging...), stored into an attribute or item, yielded, awaited, raised or
  captured by a lambda or default value;
- any name that may alias it anywhere in the scope (`q = p`, `q = p["k"]`, `for q in p`,
  `q = p or {}`, in either direction) is mutated or escapes;
- a nested function or lambda anywhere in the scope mutates it or rebinds it (`nonlocal`);
- its root is not a local of the function (a global, a closure variable, an import, or any name
  at module level) and the region calls something that could reach it;
- the region can suspend (`await`, `yield`) and the value is not owned by the function (a
  parameter, an attribute of `self`, something an unknown call returned), so another task or
  the generator's consumer may change it.

Entry point: `scope_mutations(scope, resolver, cache)` gives the `ScopeMutations` of a function
or module; `ScopeMutations.may_change(expr, region)` answers the question, `loop_region(loop)`
gives the repeated part of a loop, and `ScopeMutations.result_is_private(node)` tells whether the
value an expression produces is only ever read (so one object may serve every iteration).
"""

from __future__ import annotations

import builtins
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional, Protocol, Sequence

import libcst as cst

from auditlint.analysis.bindings import ScopeFacts, import_bindings, scope_facts
from auditlint.analysis.jsoncalls import is_json_callee
from auditlint.analysis.walk import iter_children, iter_descendants

#: A chain below a root name: ".attr" for an attribute, "[]" for any item.
Path = tuple[str, ...]

#: Methods that neither change their receiver nor keep the arguments; their result may be (a
#: part of) the receiver.
READONLY_METHODS = frozenset(
    {
        "get",
        "keys",
        "values",
        "items",
        "copy",
        "count",
        "index",
        "startswith",
        "endswith",
        "format",
        "encode",
        "decode",
        "lower",
        "upper",
        "strip",
        "lstrip",
        "rstrip",
        "split",
        "rsplit",
        "splitlines",
        "replace",
        "isoformat",
        "hex",
        "isdigit",
        "isalpha",
        "isidentifier",
    }
)

#: Builtins that only read their arguments and keep no reference to them.
READ_BUILTINS = frozenset(
    {
        "abs",
        "all",
        "any",
        "ascii",
        "bin",
        "bool",
        "callable",
        "chr",
        "complex",
        "divmod",
        "float",
        "format",
        "hasattr",
        "hash",
        "hex",
        "id",
        "int",
        "isinstance",
        "issubclass",
        "len",
        "oct",
        "ord",
        "pow",
        "print",
        "range",
        "repr",
        "round",
        "str",
        "sum",
        "type",
    }
)

#: Builtins whose result holds (parts of) their arguments: not a mutation, but an alias.
ALIAS_BUILTINS = frozenset(
    {
        "dict",
        "enumerate",
        "frozenset",
        "getattr",
        "iter",
        "list",
        "max",
        "min",
        "next",
        "reversed",
        "set",
        "sorted",
        "tuple",
        "zip",
    }
)

_READ_QUALNAMES = frozenset({"copy.deepcopy", "pprint.pformat", "textwrap.shorten"})
_ALIAS_QUALNAMES = frozenset({"copy.copy"})
_LOGGING = re.compile(
    r"^logging\.(?:(?:getLogger|getLoggerClass)\(\)\.|root\.)?"
    r"(?:debug|info|warning|warn|error|exception|critical|log)$"
)

_BUILTIN_NAMES = frozenset(dir(builtins))
_SCOPES = (cst.FunctionDef, cst.Lambda)
_LITERALS = (cst.SimpleString, cst.ConcatenatedString, cst.Integer, cst.Float, cst.Imaginary)
_CONSTANTS = frozenset({"None", "True", "False", "Ellipsis", "__debug__"})
_READ_PARENTS = (
    cst.Comparison,
    cst.ComparisonTarget,
    cst.BinaryOperation,
    cst.UnaryOperation,
    cst.If,
    cst.While,
    cst.Assert,
    cst.Expr,
    cst.FormattedStringExpression,
    cst.Index,
    cst.Slice,
    cst.Annotation,
    cst.ExceptHandler,
)


class Resolver(Protocol):
    """What the analysis needs from the file context (`FileContext` provides all of it)."""

    def qualname(self, node: cst.CSTNode) -> Optional[str]: ...

    def resolve_call_target(self, func: cst.BaseExpression) -> Optional[str]: ...

    def binding_scope(self, name: str) -> Optional[cst.CSTNode]: ...


@dataclass(frozen=True)
class Effect:
    """Something a piece of code may do to the object a name (and a chain below it) holds."""

    name: str
    path: Path
    #: "rebind" (the name gets another value), "mutate" (the object changes) or "escape"
    #: (a reference leaves our sight, so anything may happen to it later).
    kind: str
    node: cst.CSTNode


def prefix_related(a: Path, b: Path) -> bool:
    """True when one chain is a prefix of the other: changing one may change the other."""
    k = min(len(a), len(b))
    return a[:k] == b[:k]


def loop_region(loop: cst.CSTNode) -> list[cst.CSTNode]:
    """The part of a loop that runs on every iteration (a `for` iterable and a comprehension's
    first iterable run once, before the loop; `else` runs after it)."""
    if isinstance(loop, cst.For):
        return [loop.target, loop.body]
    if isinstance(loop, cst.While):
        return [loop.test, loop.body]
    if isinstance(loop, cst.DictComp):
        first = loop.for_in
        return [
            loop.key,
            loop.value,
            first.target,
            *first.ifs,
            *([first.inner_for_in] if first.inner_for_in else []),
        ]
    if isinstance(loop, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
        first = loop.for_in
        return [loop.elt, first.target, *first.ifs, *([first.inner_for_in] if first.inner_for_in else [])]
    return [loop]


def target_names(node: cst.CSTNode) -> list[str]:
    """The plain names a binding target binds (`a, *b = ...` gives a and b)."""
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, (cst.Tuple, cst.List)):
        return [n for el in node.elements for n in target_names(el.value)]
    if isinstance(node, cst.StarredElement):
        return target_names(node.value)
    return []


def _only_names(node: cst.CSTNode) -> bool:
    if isinstance(node, cst.Name):
        return True
    if isinstance(node, (cst.Tuple, cst.List)):
        return all(_only_names(el.value) for el in node.elements)
    if isinstance(node, cst.StarredElement):
        return _only_names(node.value)
    return False


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, x: str) -> str:
        root = self.parent.setdefault(x, x)
        while root != self.parent[root]:
            root = self.parent[root]
        while x != root:
            self.parent[x], x = root, self.parent[x]
        return root

    def union(self, names: Iterable[str]) -> None:
        items = list(names)
        for other in items[1:]:
            a, b = self.find(items[0]), self.find(other)
            if a != b:
                self.parent[b] = a


@dataclass
class _Climb:
    """Where the value of an expression goes: effects on it, and names that get bound to it."""

    effects: list[Effect] = field(default_factory=list)
    bound: set[str] = field(default_factory=set)
    #: List, set and dict comprehensions the value left on the way: what happens to it after
    #: one of them happens once the comprehension is complete.
    left: list[cst.CSTNode] = field(default_factory=list)


class ScopeMutations:
    """Alias groups and mutation effects of one scope (a function, lambda or the module)."""

    def __init__(self, scope: cst.CSTNode, resolver: Resolver) -> None:
        self.scope = scope
        self.resolver = resolver
        self.facts: ScopeFacts = scope_facts(scope)
        self.is_module = isinstance(scope, cst.Module)
        self._parents: dict[int, cst.CSTNode] = {}
        body = scope.body if isinstance(scope, _SCOPES) else scope
        self._body: cst.CSTNode = body
        self._index_parents(scope)
        self._groups = _UnionFind()
        self._tainted: set[str] = set()
        self._origins: dict[str, list[Optional[tuple[str, Path]]]] = {}
        self._build_groups()
        self._nested: Optional[list[Effect]] = None

    # ---- structure -----------------------------------------------------------------------

    def _index_parents(self, root: cst.CSTNode) -> None:
        stack = [root]
        while stack:
            node = stack.pop()
            for child in iter_children(node):
                self._parents[id(child)] = node
                stack.append(child)

    def parent(self, node: cst.CSTNode) -> Optional[cst.CSTNode]:
        return self._parents.get(id(node))

    def _all_nodes(self) -> Iterator[cst.CSTNode]:
        yield from iter_descendants(self._body, into_scopes=True)

    # ---- aliases -------------------------------------------------------------------------

    def _flow_roots(self, expr: Optional[cst.CSTNode]) -> set[str]:
        """Names whose objects the value of `expr` may be, or contain."""
        if expr is None:
            return set()
        if isinstance(expr, cst.Name):
            return set() if expr.value in _CONSTANTS else {expr.value}
        if isinstance(expr, (cst.Attribute, cst.Subscript)):
            return self._flow_roots(expr.value)
        if isinstance(expr, cst.Call):
            kind = self._callee(expr)
            if kind == "readonly-method" and isinstance(expr.func, cst.Attribute):
                return self._flow_roots(expr.func.value)
            if kind == "alias":
                return {n for a in expr.args for n in self._flow_roots(a.value)}
            return set()
        if isinstance(expr, (cst.Tuple, cst.List, cst.Set)):
            return {n for el in expr.elements for n in self._flow_roots(el.value)}
        if isinstance(expr, cst.Dict):
            out: set[str] = set()
            for el in expr.elements:
                if isinstance(el, cst.DictElement):
                    out |= self._flow_roots(el.key) | self._flow_roots(el.value)
                else:
                    out |= self._flow_roots(el.value)
            return out
        if isinstance(expr, (cst.StarredElement, cst.NamedExpr)):
            return self._flow_roots(expr.value)
        if isinstance(expr, cst.BooleanOperation):
            return self._flow_roots(expr.left) | self._flow_roots(expr.right)
        if isinstance(expr, cst.IfExp):
            return self._flow_roots(expr.body) | self._flow_roots(expr.orelse)
        if isinstance(expr, (cst.ListComp, cst.SetComp, cst.GeneratorExp)):
            return self._flow_roots(expr.elt)
        if isinstance(expr, cst.DictComp):
            return self._flow_roots(expr.key) | self._flow_roots(expr.value)
        return set()

    def _fresh(self, expr: Optional[cst.CSTNode]) -> bool:
        """True when `expr` builds a new object or only reads names (no unknown producer)."""
        if expr is None or isinstance(expr, (*_LITERALS, cst.FormattedString, cst.Name)):
            return True
        if isinstance(expr, (cst.Attribute, cst.Subscript)):
            return self._fresh(expr.value)
        if isinstance(expr, cst.Call):
            return self._callee(expr) in ("json", "read", "alias", "readonly-method")
        if isinstance(expr, (cst.Tuple, cst.List, cst.Set)):
            return all(self._fresh(el.value) for el in expr.elements)
        if isinstance(expr, cst.Dict):
            return all(
                self._fresh(el.value) and (not isinstance(el, cst.DictElement) or self._fresh(el.key))
                for el in expr.elements
            )
        if isinstance(expr, (cst.BinaryOperation, cst.UnaryOperation, cst.Comparison)):
            return True
        if isinstance(expr, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            return True
        if isinstance(expr, cst.BooleanOperation):
            return self._fresh(expr.left) and self._fresh(expr.right)
        if isinstance(expr, cst.IfExp):
            return self._fresh(expr.body) and self._fresh(expr.orelse)
        return False

    def _chain_of(self, expr: Optional[cst.CSTNode]) -> Optional[tuple[str, Path]]:
        """(root, path) when `expr` is a plain chain: `p`, `p.a`, `p["k"]`, `p.get("k")`."""
        if isinstance(expr, cst.Name):
            return None if expr.value in _CONSTANTS else (expr.value, ())
        if isinstance(expr, cst.Attribute):
            base = self._chain_of(expr.value)
            return (base[0], (*base[1], "." + expr.attr.value)) if base else None
        if isinstance(expr, cst.Subscript):
            base = self._chain_of(expr.value)
            return (base[0], (*base[1], "[]")) if base else None
        if (
            isinstance(expr, cst.Call)
            and isinstance(expr.func, cst.Attribute)
            and self._callee(expr) == "readonly-method"
        ):
            base = self._chain_of(expr.func.value)
            return (base[0], (*base[1], "[]")) if base else None
        return None

    def _link(
        self,
        target: cst.CSTNode,
        value: Optional[cst.CSTNode],
        *,
        known_value: bool = True,
        element: bool = False,
    ) -> None:
        """Record that the names of `target` are bound to `value` (to its elements with
        `element`): they join the aliases of the names `value` reads."""
        names = target_names(target)
        if not names:
            return
        self._groups.union([*names, *sorted(self._flow_roots(value))])
        if not known_value or not self._fresh(value):
            self._tainted.update(names)
        origin = self._chain_of(value) if known_value and isinstance(target, cst.Name) else None
        if origin is not None and element:
            origin = (origin[0], (*origin[1], "[]"))
        for name in names:
            self._origins.setdefault(name, []).append(origin)

    def _precise_origins(self, alias: str, root: str) -> Optional[list[Path]]:
        """The paths below `root` that `alias` is bound to, when every binding of `alias` is a
        plain chain from `root` (`q = p["items"]`, `for q in p.rows`); else None."""
        origins = self._origins.get(alias)
        if not origins or any(o is None or o[0] != root for o in origins):
            return None
        return [o[1] for o in origins if o is not None]

    def _alias_effect_may_reach(self, eff: Effect, name: str, path: Path) -> bool:
        """Can an effect on an alias of `name` reach the object at `name` + `path`?"""
        below = self._precise_origins(eff.name, name)
        if below is not None:
            return any(prefix_related((*o, *eff.path), path) for o in below)
        above = self._precise_origins(name, eff.name)
        if above is not None:
            return any(prefix_related(eff.path, (*o, *path)) for o in above)
        return True

    def _build_groups(self) -> None:
        for node in self._all_nodes():
            if isinstance(node, cst.Assign):
                for target in node.targets:
                    self._link(target.target, node.value)
            elif isinstance(node, cst.AnnAssign) and node.value is not None:
                self._link(node.target, node.value)
            elif isinstance(node, cst.AugAssign):
                # `acc += p` keeps `acc` and may put p's elements in it: an alias, not a copy.
                self._link(node.target, node.value, known_value=False)
            elif isinstance(node, cst.NamedExpr):
                self._link(node.target, node.value)
            elif isinstance(node, (cst.For, cst.CompFor)):
                self._link(node.target, node.iter, element=True)
            elif isinstance(node, cst.WithItem) and node.asname is not None:
                # `with x as y` binds what `x.__enter__()` returns: often x itself, or unknown.
                self._link(node.asname.name, node.item, known_value=False)
            elif isinstance(node, cst.ExceptHandler) and node.name is not None:
                self._link(node.name.name, None, known_value=False)

    def aliases(self, name: str) -> frozenset[str]:
        """Every name of the scope that may hold (a part of) the object `name` holds."""
        root = self._groups.find(name)
        return frozenset(n for n in list(self._groups.parent) if self._groups.find(n) == root) | {name}

    def is_local(self, name: str) -> bool:
        """A variable of this function (not a global, closure variable or module-level name)."""
        return not self.is_module and name in self.facts.bindings and name not in self.facts.declared_outer

    def owned(self, name: str) -> bool:
        """The function built the object `name` holds and nothing outside can reach it: every
        alias is a local bound from a literal, a container, a comprehension, a parse, or
        another alias."""
        for alias in self.aliases(name):
            if not self.is_local(alias) or alias in self.facts.params or alias in self._tainted:
                return False
            if any(b.kind in ("import", "def", "class", "param") for b in self.facts.bindings.get(alias, ())):
                return False
        return True

    # ---- calls ---------------------------------------------------------------------------

    def _is_builtin(self, name: str) -> bool:
        """A builtin that no scope around shadows (comprehension variables are not builtins)."""
        return (
            name in _BUILTIN_NAMES
            and self.resolver.binding_scope(name) is None
            and self.resolver.qualname(cst.Name(name)) is None
        )

    def _callee(self, call: cst.Call) -> str:
        """What calling `call` may do to its arguments: one of `json`, `read`, `alias`,
        `readonly-method` (a read-only method of the receiver) or `unknown`."""
        func = call.func
        if is_json_callee(func, self.resolver):
            return "json"
        if isinstance(func, cst.Name) and self._is_builtin(func.value):
            if func.value in READ_BUILTINS:
                return "read"
            if func.value in ALIAS_BUILTINS:
                return "alias"
            return "unknown"
        if isinstance(func, cst.Attribute):
            if isinstance(func.value, (cst.SimpleString, cst.ConcatenatedString, cst.FormattedString)):
                return "read"  # `", ".join(items)`, `"{}".format(x)`
            target = self.resolver.resolve_call_target(func)
            if target is not None:
                if target in _READ_QUALNAMES or _LOGGING.match(target):
                    return "read"
                if target in _ALIAS_QUALNAMES:
                    return "alias"
            if func.attr.value in READONLY_METHODS:
                return "readonly-method"
        return "unknown"

    def _call_may_reach(self, call: cst.Call, name: str) -> bool:
        """Could this call change the non-local object `name` holds, without being passed it?"""
        kind = self._callee(call)
        if kind in ("json", "read", "alias"):
            return False
        func = call.func
        imported_root = self.resolver.qualname(cst.Name(name)) is not None
        target = self.resolver.qualname(func)
        if target is not None and not target.startswith(".") and not imported_root:
            return False  # a library function cannot reach this module's own objects
        if isinstance(func, cst.Attribute):
            root = func.value
            while isinstance(root, (cst.Attribute, cst.Subscript)):
                root = root.value
            if isinstance(root, cst.Name) and root.value != name and self.owned(root.value):
                return False  # a method of an object this function built (`out.append`)
        return True

    # ---- effects -------------------------------------------------------------------------

    def _target_kind(self, node: cst.CSTNode) -> Optional[str]:
        """The binding `node` is (inside) the target of: `assign`, `aug` or `del`; else None."""
        cur = node
        parent = self.parent(cur)
        while isinstance(parent, (cst.Element, cst.StarredElement)) and parent.value is cur:
            holder = self.parent(parent)
            if not isinstance(holder, (cst.Tuple, cst.List)):
                return None
            cur, parent = holder, self.parent(holder)
        if isinstance(parent, cst.AssignTarget) and parent.target is cur:
            return "assign"
        if isinstance(parent, (cst.AnnAssign, cst.For, cst.CompFor, cst.NamedExpr)) and parent.target is cur:
            return "assign"
        if isinstance(parent, cst.AugAssign) and parent.target is cur:
            return "aug"
        if isinstance(parent, cst.Del) and parent.target is cur:
            return "del"
        if isinstance(parent, cst.AsName) and parent.name is cur:
            return "assign"
        return None

    def _climb(self, start: cst.CSTNode, name: str, path: Path, *, returns_escape: bool) -> _Climb:  # noqa: C901
        """Follow the value of `start` (which holds `name` at `path`) up the tree."""
        out = _Climb()
        cur = start
        chain = list(path)
        while True:
            parent = self.parent(cur)
            if parent is None:
                return out
            if isinstance(parent, cst.Attribute) and parent.value is cur:
                grand = self.parent(parent)
                if isinstance(grand, cst.Call) and grand.func is parent:
                    if parent.attr.value in READONLY_METHODS:
                        chain.append("[]")
                        cur = grand
                        continue
                    out.effects.append(Effect(name, tuple(chain), "mutate", grand))
                    return out
                chain.append("." + parent.attr.value)
                cur = parent
                continue
            if isinstance(parent, cst.Subscript) and parent.value is cur:
                chain.append("[]")
                cur = parent
                continue
            kind = self._target_kind(cur)
            if kind is not None:
                if not chain:
                    out.effects.append(Effect(name, (), "rebind", cur))
                    if kind == "aug":
                        out.effects.append(Effect(name, (), "mutate", cur))
                else:
                    out.effects.append(Effect(name, tuple(chain[:-1]), "mutate", cur))
                return out
            if isinstance(parent, cst.Call) and parent.func is cur:
                out.effects.append(Effect(name, tuple(chain), "mutate", parent))
                return out
            if isinstance(parent, cst.Arg) and parent.value is cur:
                call = self.parent(parent)
                callee = self._callee(call) if isinstance(call, cst.Call) else "unknown"
                if callee in ("json", "read"):
                    return out
                if callee == "alias" and isinstance(call, cst.Call):
                    chain.append("[]")
                    cur = call
                    continue
                out.effects.append(Effect(name, tuple(chain), "escape", parent))
                return out
            if isinstance(parent, (cst.Element, cst.StarredElement, cst.DictElement, cst.StarredDictElement)):
                holder = self.parent(parent)
                if holder is None:
                    return out
                chain.append("[]")
                cur = holder
                continue
            if isinstance(parent, (cst.BooleanOperation, cst.NamedExpr)) or (
                isinstance(parent, cst.IfExp) and cur is not parent.test
            ):
                if isinstance(parent, cst.NamedExpr):
                    out.bound.update(target_names(parent.target))
                cur = parent
                continue
            if isinstance(parent, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
                if not isinstance(parent, cst.GeneratorExp):  # a generator's consumer runs in between
                    out.left.append(parent)
                chain.append("[]")
                cur = parent
                continue
            if isinstance(parent, (cst.Assign, cst.AnnAssign, cst.AugAssign)) and parent.value is cur:
                targets = (
                    [t.target for t in parent.targets] if isinstance(parent, cst.Assign) else [parent.target]
                )
                if all(_only_names(t) for t in targets):
                    out.bound.update(n for t in targets for n in target_names(t))
                else:
                    out.effects.append(Effect(name, tuple(chain), "escape", parent))
                return out
            if isinstance(parent, (cst.For, cst.CompFor)) and parent.iter is cur:
                out.bound.update(target_names(parent.target))
                return out
            if isinstance(parent, cst.WithItem) and parent.item is cur:
                out.effects.append(Effect(name, tuple(chain), "mutate", parent))
                return out
            if isinstance(parent, cst.Return):
                if returns_escape:
                    out.effects.append(Effect(name, tuple(chain), "escape", parent))
                return out
            if isinstance(parent, _READ_PARENTS) or isinstance(parent, cst.IfExp):
                return out
            out.effects.append(Effect(name, tuple(chain), "escape", parent))
            return out

    def _name_effects(
        self, node: cst.Name, *, returns_escape: bool, within: Optional[set[int]] = None
    ) -> list[Effect]:
        parent = self.parent(node)
        if node.value in _CONSTANTS:
            return []
        if isinstance(parent, cst.Attribute) and parent.attr is node:
            return []
        if isinstance(parent, cst.Arg) and parent.keyword is node:
            return []
        if isinstance(parent, (cst.Param, cst.ImportAlias, cst.NameItem)):
            return []
        if isinstance(parent, cst.AsName) and isinstance(self.parent(parent), cst.ImportAlias):
            return []
        if isinstance(parent, (cst.FunctionDef, cst.ClassDef)) and parent.name is node:
            return [Effect(node.value, (), "rebind", node)]
        climb = self._climb(node, node.value, (), returns_escape=returns_escape)
        if within is not None and any(id(comp) not in within for comp in climb.left):
            return []  # it acts after a comprehension `within` is only a part of: not in there
        return climb.effects

    def effects(self, region: Iterable[cst.CSTNode], *, returns_escape: bool = False) -> list[Effect]:
        """Effects of the code in `region` on every name it touches. The bodies of nested
        functions, lambdas and classes do not run here (see `nested_effects`); their names,
        decorators, defaults and bases do."""
        out: list[Effect] = []
        nodes = list(_region_nodes(region))
        within = {id(node) for node in nodes}
        for node in nodes:
            if isinstance(node, cst.Name):
                out.extend(self._name_effects(node, returns_escape=returns_escape, within=within))
            elif isinstance(node, (cst.Import, cst.ImportFrom)):
                out.extend(Effect(local, (), "rebind", node) for local, _, _ in import_bindings(node))
        return out

    def nested_effects(self) -> list[Effect]:
        """Effects of the nested functions and lambdas of the scope on the scope's names: any
        mutation or escape, and rebinding through `nonlocal`/`global`."""
        if self._nested is None:
            found: list[Effect] = []
            for node in self._all_nodes():
                if isinstance(node, _SCOPES):
                    outer = scope_facts(node).declared_outer
                    for eff in self.effects([node.body]):
                        if eff.kind != "rebind" or eff.name in outer:
                            found.append(eff)
            self._nested = found
        return self._nested

    # ---- questions -----------------------------------------------------------------------

    def chains(self, expr: cst.CSTNode) -> Optional[list[tuple[str, Path]]]:
        """The name chains a side-effect-free expression reads, or None when it calls unknown
        code, awaits, yields or builds a function (its value may then differ each time)."""
        out: list[tuple[str, Path]] = []

        def walk(node: cst.CSTNode) -> bool:  # noqa: C901 - one dispatch table
            if isinstance(node, cst.Name):
                # A builtin (`str` in `default=str`) is not a value anyone changes.
                if node.value not in _CONSTANTS and not self._is_builtin(node.value):
                    out.append((node.value, ()))
                return True
            if isinstance(node, (cst.Attribute, cst.Subscript)):
                path: list[str] = []
                cur: cst.CSTNode = node
                while isinstance(cur, (cst.Attribute, cst.Subscript)):
                    if isinstance(cur, cst.Attribute):
                        path.append("." + cur.attr.value)
                    else:
                        path.append("[]")
                        for element in cur.slice:
                            if not walk(element.slice):
                                return False
                    cur = cur.value
                if isinstance(cur, cst.Name):
                    out.append((cur.value, tuple(reversed(path))))
                    return True
                return walk(cur)
            if isinstance(node, cst.Call):
                if self._callee(node) not in ("json", "read", "alias"):
                    return False
                return all(walk(a.value) for a in node.args)
            if isinstance(node, (cst.Await, cst.Yield, cst.Lambda, cst.NamedExpr)):
                return False
            if isinstance(node, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
                return False
            return all(walk(child) for child in iter_children(node))

        return out if walk(expr) else None

    def may_change(
        self,
        expr: cst.CSTNode,
        region: Sequence[cst.CSTNode],
        *,
        strict_calls: bool = False,
        until: Optional[cst.CSTNode] = None,
    ) -> bool:
        """May the value of `expr` differ at two moments separated by running `region`?

        `strict_calls` (polling `while` loops, `with` blocks) treats every call that could reach
        a value the function does not own as a change: other threads may be at work.
        `until` is where the second moment falls inside `region`: an `await` or `yield` of an
        expression that contains it suspends only after it is evaluated.
        """
        watched = self.chains(expr)
        if watched is None:
            return True
        effects = self.effects(region)
        nested = self.nested_effects()
        nodes = list(_region_nodes(region))
        calls = [n for n in nodes if isinstance(n, cst.Call)]
        later: set[int] = set()
        ancestor = self.parent(until) if until is not None else None
        while ancestor is not None:
            later.add(id(ancestor))
            ancestor = self.parent(ancestor)
        suspends = any(
            (isinstance(n, (cst.Await, cst.Yield)) and id(n) not in later)
            or (isinstance(n, (cst.For, cst.With)) and n.asynchronous is not None)
            for n in nodes
        )
        for name, path in watched:
            group = self.aliases(name)
            for eff in (*effects, *nested):
                if eff.name == name:
                    if eff.kind == "rebind" or prefix_related(eff.path, path):
                        return True
                elif (
                    eff.name in group
                    and eff.kind != "rebind"
                    and self._alias_effect_may_reach(eff, name, path)
                ):
                    return True
            shared = not self.owned(name)
            if not self.is_local(name) or (strict_calls and shared):
                if any(self._call_may_reach(call, name) for call in calls):
                    return True
            if suspends and shared:
                return True
        return False

    def rebound(self, name: str, region: Sequence[cst.CSTNode]) -> bool:
        """Is `name` bound again in `region` (or through `nonlocal`/`global` anywhere)?"""
        return any(
            e.name == name and e.kind == "rebind" for e in (*self.effects(region), *self.nested_effects())
        )

    def result_is_private(self, node: cst.CSTNode) -> bool:
        """True when the value `node` produces is only ever read: not mutated, not stored, not
        passed to unknown code, not returned or yielded, through any alias in the scope. One
        object may then stand in for the fresh one `node` builds each time."""
        climb = self._climb(node, "<value>", (), returns_escape=True)
        if climb.effects:
            return False
        names: set[str] = set()
        for bound in climb.bound:
            names |= self.aliases(bound)
        if not names:
            return True
        for eff in (*self.effects([self._body], returns_escape=True), *self.nested_effects()):
            if eff.name in names and eff.kind != "rebind":
                return False
        return not self.is_module and not any(n in self.facts.declared_outer for n in names)


def _region_nodes(region: Iterable[cst.CSTNode]) -> Iterator[cst.CSTNode]:
    """The nodes of `region` that run when it runs, pre-order: not the bodies of nested
    functions, lambdas and classes, and not the dotted module paths of imports."""
    stack = list(region)
    stack.reverse()
    while stack:
        node = stack.pop()
        yield node
        children: list[cst.CSTNode]
        if isinstance(node, (cst.Import, cst.ImportFrom, cst.Global, cst.Nonlocal)):
            continue
        if isinstance(node, cst.FunctionDef):
            children = [node.name, *node.decorators, node.params]
        elif isinstance(node, cst.ClassDef):
            children = [node.name, *node.decorators, *node.bases, *node.keywords]
        elif isinstance(node, cst.Lambda):
            children = [node.params]
        else:
            children = list(iter_children(node))
        children.reverse()
        stack.extend(children)


def scope_mutations(scope: cst.CSTNode, resolver: Resolver, cache: dict[Any, Any]) -> ScopeMutations:
    """The (memoised) `ScopeMutations` of a function, lambda or module."""
    key = ("mutation.scope", id(scope))
    found = cache.get(key)
    if found is None:
        found = ScopeMutations(scope, resolver)
        cache[key] = found
    assert isinstance(found, ScopeMutations)
    return found
