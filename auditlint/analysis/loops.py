"""Can the iterations of one loop run concurrently? Loop-carried dependencies, early exits,
ordered resources and rate limiting, for the rules about work done one item at a time
(AL201 await-in-loop, AL203 query-in-loop).

The API, all over plain LibCST nodes (no metadata):

- `loop_facts(loop)` -> `LoopFacts`, computed once per loop and cached on the node's id by the
  caller's `cache` dict (`ctx.cache`):
  - `targets`, `assigned`: names bound by the loop header, and anywhere in the repeated part;
  - `carried_reads(node)`: names `node` reads that may still hold an earlier iteration's value
    (assigned later in the body, or only on some paths, or accumulated with `+=`);
  - `derived_names(is_source)`: names whose value in an iteration comes from a "source"
    expression (an `await`, a query...), transitively;
  - `depends_on_earlier_iteration(node, is_source)`: a reason when `node` reads a carried name
    or an object the body mutates (a set of seen ids, `self.cursor`), else None;
  - `stops_early_on(is_source)`: a `break` / `return` that is unconditional, or whose condition
    or value depends on a source: the later iterations run only if the earlier ones say so.
- `runs_subtests(loop)`: the body runs under `with self.subTest(...)` (test cases, in order).
- `leaves_loop_after(stack, loop)`: a `return` / `raise` / `break` always follows the node at
  the end of `stack` (`ctx.stack`), so it runs at most once per run of `loop`.
- `repeated_nodes(loop)`, `loop_targets(loop)`, `is_async_loop(loop)`, `contains_await(node)`.
- `ordered_resource(ctx, expr)`: the kind (`"connection"`, `"lock"`...) when `expr` is one
  object whose operations must not overlap: a connection, transaction, cursor, lock,
  semaphore, queue, event, stream, websocket or file. Resolved through imports and bindings;
  unresolved names are judged by their words (`conn`, `self._lock`, `writer`).
- `ordered_resource_in(ctx, node, fresh)`: the first ordered resource (`ResourceUse`) any call
  in `node` uses as its receiver or an argument, skipping per-iteration names in `fresh`.
- `is_sleep(ctx, call)`, `rate_limited(ctx, loop)`: a sleep (or a throttle helper) runs in
  the repeated part, so the one-at-a-time pace is deliberate.
- `LISTENER_WORDS`, `names_listeners(expr)`: handlers, hooks, signal receivers: callables the
  program registered, whose number the data does not decide.
- `acquires_limiter(ctx, node)`: `node` takes a semaphore, lock or limiter (`async with sem`,
  `await sem.acquire()`): work in it is already bounded.

"Silent when unsure" is the rule everywhere: every approximation here errs towards
"dependent", "ordered" or "limited".
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, Iterator, Optional, Sequence, Union

import libcst as cst

from auditlint.analysis.walk import iter_children, iter_descendants

if TYPE_CHECKING:
    from auditlint.context import FileContext

LoopNode = Union[cst.For, cst.While, cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp]
CompNode = Union[cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp]
#: A predicate over whole expressions (or blocks): does evaluating this involve a "source"
#: (an await, a query)? It must look inside the node itself, e.g. `contains_await`. Pass the
#: same function object each time: results are memoised per predicate.
Source = Callable[[cst.CSTNode], bool]

_SCOPES = (cst.FunctionDef, cst.ClassDef, cst.Lambda)
_COMPS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)

#: Methods that put a value into a container: when the value is an iteration's result, the
#: container only collects results and does not feed later iterations.
_SINK_METHODS = frozenset({"append", "add", "extend", "insert", "appendleft", "update", "setdefault"})
#: Methods that change their receiver in place.
_MUTATORS = _SINK_METHODS | frozenset(
    {
        "pop", "popleft", "popitem", "remove", "discard", "clear", "sort", "reverse",
        "extendleft", "rotate", "put_nowait", "difference_update", "intersection_update",
        "symmetric_difference_update",
    }
)  # fmt: skip


# ---- small helpers -------------------------------------------------------------------------


def contains_await(node: cst.CSTNode) -> bool:
    """True when `node` is or contains an `await` outside nested functions."""
    if isinstance(node, cst.Await):
        return True
    return any(isinstance(n, cst.Await) for n in iter_descendants(node, into_scopes=False))


def _names_in_target(node: cst.CSTNode) -> list[str]:
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, (cst.Tuple, cst.List)):
        return [n for el in node.elements for n in _names_in_target(el.value)]
    if isinstance(node, cst.StarredElement):
        return _names_in_target(node.value)
    return []


def dotted_path(node: cst.CSTNode) -> Optional[str]:
    """`self.items` for a Name/Attribute chain, else None."""
    parts: list[str] = []
    while isinstance(node, cst.Attribute):
        parts.append(node.attr.value)
        node = node.value
    if isinstance(node, cst.Name):
        parts.append(node.value)
        return ".".join(reversed(parts))
    return None


def _root_name(node: cst.CSTNode) -> Optional[str]:
    while isinstance(node, (cst.Attribute, cst.Subscript, cst.Call)):
        node = node.func if isinstance(node, cst.Call) else node.value
    return node.value if isinstance(node, cst.Name) else None


def read_paths(node: cst.CSTNode) -> set[str]:
    """Dotted paths `node` reads: maximal Name/Attribute chains, and for a method call the
    receiver (`self` for `self.fetch(x)`: a method may read anything on its object)."""
    out: set[str] = set()

    def visit(n: cst.CSTNode) -> None:
        if isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute):
            recv = dotted_path(n.func.value)
            if recv is not None:
                out.add(recv)
            else:
                visit(n.func.value)
            for arg in n.args:
                visit(arg.value)
            return
        if isinstance(n, (cst.Name, cst.Attribute)):
            path = dotted_path(n)
            if path is not None:
                out.add(path)
                return
        if isinstance(n, cst.Lambda):
            visit(n.body)
            return
        for child in iter_children(n):
            visit(child)

    visit(node)
    return out


def _related(read: str, mutated: str, sink_only: bool) -> bool:
    if read == mutated or read.startswith(mutated + "."):
        return True
    return not sink_only and mutated.startswith(read + ".")


def is_async_loop(loop: cst.CSTNode) -> bool:
    """`async for`, or a comprehension with an `async for` clause."""
    if isinstance(loop, cst.For):
        return loop.asynchronous is not None
    if isinstance(loop, _COMPS):
        clause: Optional[cst.CompFor] = loop.for_in
        while clause is not None:
            if clause.asynchronous is not None:
                return True
            clause = clause.inner_for_in
    return False


def loop_targets(loop: cst.CSTNode) -> frozenset[str]:
    """Names the loop header binds on every iteration (all `for` clauses of a comprehension)."""
    if isinstance(loop, cst.For):
        return frozenset(_names_in_target(loop.target))
    if isinstance(loop, _COMPS):
        names: list[str] = []
        clause: Optional[cst.CompFor] = loop.for_in
        while clause is not None:
            names.extend(_names_in_target(clause.target))
            clause = clause.inner_for_in
        return frozenset(names)
    return frozenset()


def repeated_nodes(loop: cst.CSTNode) -> tuple[cst.CSTNode, ...]:
    """The parts of `loop` that run once per iteration (the first iterable runs once)."""
    if isinstance(loop, cst.For):
        return (loop.body,)
    if isinstance(loop, cst.While):
        return (loop.test, loop.body)
    if isinstance(loop, _COMPS):
        first = loop.for_in
        parts: list[cst.CSTNode] = [*first.ifs]
        if first.inner_for_in is not None:
            parts.append(first.inner_for_in)
        if isinstance(loop, cst.DictComp):
            parts[:0] = [loop.key, loop.value]
        else:
            parts[:0] = [loop.elt]
        return tuple(parts)
    return ()


def _iter_repeated(loop: cst.CSTNode) -> Iterator[cst.CSTNode]:
    for part in repeated_nodes(loop):
        yield part
        yield from iter_descendants(part, into_scopes=False)


def _statements(block: cst.CSTNode) -> Sequence[cst.CSTNode]:
    if isinstance(block, cst.IndentedBlock):
        return block.body
    if isinstance(block, cst.SimpleStatementSuite):
        return block.body
    if isinstance(block, cst.Else):
        return _statements(block.body)
    return ()


def _leaves(stmt: cst.CSTNode, breaks: bool) -> bool:
    """A simple statement (or line of them) that always leaves the loop."""
    if isinstance(stmt, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
        return any(_leaves(small, breaks) for small in stmt.body)
    return isinstance(stmt, (cst.Return, cst.Raise)) or (breaks and isinstance(stmt, cst.Break))


def runs_subtests(loop: cst.CSTNode) -> bool:
    """The body runs under `with self.subTest(...)`: each iteration is a test case of its own,
    run one after another on purpose."""
    for part in repeated_nodes(loop):
        for node in (part, *iter_descendants(part, into_scopes=False)):
            if isinstance(node, cst.With):
                for item in node.items:
                    call = item.item
                    if (
                        isinstance(call, cst.Call)
                        and isinstance(call.func, cst.Attribute)
                        and call.func.attr.value == "subTest"
                    ):
                        return True
    return False


def leaves_loop_after(stack: Sequence[cst.CSTNode], loop: cst.CSTNode) -> bool:
    """`stack` runs from the module down to a node inside `loop`: True when a `return`,
    `raise` or `break` of that loop follows the node unconditionally in one of the blocks on
    the way, so the node runs at most once per run of the loop (`if found: return dumps(cfg)`)."""
    at = next((i for i, node in enumerate(stack) if node is loop), None)
    if at is None:
        return False
    path = stack[at:]
    breaks = True
    for parent, child in zip(path, path[1:]):
        if parent is not loop and isinstance(parent, (cst.For, cst.While, *_COMPS)):
            breaks = False  # a `break` further down leaves only the inner loop
        if isinstance(parent, (cst.IndentedBlock, cst.SimpleStatementSuite, cst.SimpleStatementLine)):
            body = list(parent.body)
            at = next((i for i, stmt in enumerate(body) if stmt is child), len(body))
            if any(_leaves(stmt, breaks) for stmt in body[at:]):
                return True
    return False


# ---- definite assignment: which reads may see an earlier iteration's value -----------------

Defined = Optional[set[str]]  # None: the code after this point is unreachable


class _Flow:
    """Walks the repeated part in execution order, tracking names certainly assigned so far in
    the current iteration; a read of a name the loop assigns that is not certainly assigned yet
    may see the value an earlier iteration left."""

    def __init__(self, assigned: frozenset[str]) -> None:
        self.assigned = assigned
        self.carried: set[int] = set()

    def read(self, node: cst.Name, defined: set[str]) -> None:
        if node.value in self.assigned and node.value not in defined:
            self.carried.add(id(node))

    def late_reads(self, node: cst.CSTNode) -> None:
        # Code in a nested function runs later, when any iteration's value may be current.
        for n in iter_descendants(node):
            if isinstance(n, cst.Name) and n.value in self.assigned:
                self.carried.add(id(n))

    def expr(self, node: cst.CSTNode, defined: set[str]) -> None:
        if isinstance(node, cst.Name):
            self.read(node, defined)
        elif isinstance(node, cst.Attribute):
            self.expr(node.value, defined)
        elif isinstance(node, cst.NamedExpr):
            self.expr(node.value, defined)
            defined.update(_names_in_target(node.target))
        elif isinstance(node, cst.Lambda):
            self.late_reads(node.body)
        elif isinstance(node, _COMPS):
            inner = set(defined) | loop_targets(node)
            self.expr(node.for_in.iter, defined)
            for part in repeated_nodes(node):
                self.expr(part, inner)
        elif isinstance(node, cst.CompFor):
            self.expr(node.iter, defined)
            for cond in node.ifs:
                self.expr(cond, defined)
            if node.inner_for_in is not None:
                self.expr(node.inner_for_in, defined)
        else:
            for child in iter_children(node):
                self.expr(child, defined)

    def bind(self, target: cst.CSTNode, defined: set[str]) -> None:
        if isinstance(target, cst.Name):
            defined.add(target.value)
        elif isinstance(target, (cst.Tuple, cst.List)):
            for el in target.elements:
                self.bind(el.value, defined)
        elif isinstance(target, cst.StarredElement):
            self.bind(target.value, defined)
        else:
            self.expr(target, defined)  # `a.b = ...` / `a[k] = ...` read `a`

    def block(self, block: cst.CSTNode, defined: set[str]) -> Defined:
        current: Defined = defined
        for stmt in _statements(block):
            if current is None:
                return None
            current = self.stmt(stmt, current)
        return current

    def small(self, node: cst.CSTNode, defined: set[str]) -> Defined:  # noqa: C901 - one dispatch
        if isinstance(node, cst.Assign):
            self.expr(node.value, defined)
            for t in node.targets:
                self.bind(t.target, defined)
        elif isinstance(node, cst.AnnAssign):
            if node.value is not None:
                self.expr(node.value, defined)
                self.bind(node.target, defined)
        elif isinstance(node, cst.AugAssign):
            self.expr(node.target, defined)
            self.expr(node.value, defined)
            self.bind(node.target, defined)
        elif isinstance(node, (cst.Break, cst.Continue)):
            return None
        elif isinstance(node, (cst.Return, cst.Raise)):
            self.expr(node, defined)
            return None
        elif isinstance(node, (cst.Import, cst.ImportFrom)):
            if isinstance(node, cst.Import) or not isinstance(node.names, cst.ImportStar):
                for alias in node.names:  # type: ignore[union-attr]
                    name = alias.evaluated_alias or alias.evaluated_name
                    defined.add(name.split(".", 1)[0])
        elif isinstance(node, (cst.Global, cst.Nonlocal)):
            pass
        else:
            self.expr(node, defined)
        return defined

    def stmt(self, stmt: cst.CSTNode, defined: set[str]) -> Defined:  # noqa: C901 - one dispatch
        if isinstance(stmt, cst.SimpleStatementLine):
            current: Defined = defined
            for small in stmt.body:
                if current is None:
                    return None
                current = self.small(small, current)
            return current
        if isinstance(stmt, cst.If):
            self.expr(stmt.test, defined)
            then = self.block(stmt.body, set(defined))
            if stmt.orelse is None:
                other: Defined = set(defined)
            elif isinstance(stmt.orelse, cst.If):
                other = self.stmt(stmt.orelse, set(defined))
            else:
                other = self.block(stmt.orelse, set(defined))
            return _merge([then, other])
        if isinstance(stmt, (cst.For, cst.While)):
            if isinstance(stmt, cst.For):
                self.expr(stmt.iter, defined)
                inner = set(defined)
                self.bind(stmt.target, inner)
            else:
                inner = set(defined)
                self.expr(stmt.test, inner)
            self.block(stmt.body, inner)
            if stmt.orelse is not None:
                self.block(stmt.orelse, set(defined))
            return defined  # the body may run zero times
        if isinstance(stmt, (cst.Try, cst.TryStar)):
            body = self.block(stmt.body, set(defined))
            outs: list[Defined] = []
            if stmt.orelse is not None and body is not None:
                body = self.block(stmt.orelse, body)
            outs.append(body)
            for handler in stmt.handlers:
                start = set(defined)
                if handler.name is not None:
                    self.bind(handler.name.name, start)
                outs.append(self.block(handler.body, start))
            after = _merge(outs)
            if stmt.finalbody is not None:
                fin = self.block(stmt.finalbody, set(after if after is not None else defined))
                return None if fin is None or after is None else fin
            return after
        if isinstance(stmt, cst.With):
            for item in stmt.items:
                self.expr(item.item, defined)
                if item.asname is not None:
                    self.bind(item.asname.name, defined)
            return self.block(stmt.body, defined)
        if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
            self.late_reads(stmt)
            defined.add(stmt.name.value)
            return defined
        if isinstance(stmt, cst.Match):
            self.expr(stmt.subject, defined)
            for case in stmt.cases:
                self.late_reads(case.pattern)
                self.block(case.body, set(defined))
            return defined
        self.late_reads(stmt)
        return defined


def _merge(outs: Sequence[Defined]) -> Defined:
    live = [o for o in outs if o is not None]
    if not live:
        return None
    result = set(live[0])
    for other in live[1:]:
        result &= other
    return result


# ---- exits ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Exit:
    """A `break` of the loop or a `return` inside it, with the nodes deciding whether it runs:
    enclosing `if`/`while` tests, inner `for` iterables, the body of a `try` whose handler
    holds it. No guards means it runs on the first iteration that reaches it."""

    node: cst.CSTNode
    guards: tuple[cst.CSTNode, ...]


def _collect_exits(
    stmts: Sequence[cst.CSTNode], guards: tuple[cst.CSTNode, ...], inner: bool, out: list[Exit]
) -> None:
    for stmt in stmts:
        if isinstance(stmt, (cst.SimpleStatementLine, cst.SimpleStatementSuite)):
            for small in stmt.body:
                if isinstance(small, cst.Return) or (isinstance(small, cst.Break) and not inner):
                    out.append(Exit(small, guards))
        elif isinstance(stmt, cst.If):
            _collect_exits(_statements(stmt.body), (*guards, stmt.test), inner, out)
            if isinstance(stmt.orelse, cst.If):
                _collect_exits([stmt.orelse], (*guards, stmt.test), inner, out)
            elif stmt.orelse is not None:
                _collect_exits(_statements(stmt.orelse), (*guards, stmt.test), inner, out)
        elif isinstance(stmt, (cst.For, cst.While)):
            head = stmt.iter if isinstance(stmt, cst.For) else stmt.test
            _collect_exits(_statements(stmt.body), (*guards, head), True, out)
            if stmt.orelse is not None:
                _collect_exits(_statements(stmt.orelse), (*guards, head), inner, out)
        elif isinstance(stmt, (cst.Try, cst.TryStar)):
            _collect_exits(_statements(stmt.body), guards, inner, out)
            for handler in stmt.handlers:
                _collect_exits(_statements(handler.body), (*guards, stmt.body), inner, out)
            if stmt.orelse is not None:
                _collect_exits(_statements(stmt.orelse), (*guards, stmt.body), inner, out)
            if stmt.finalbody is not None:
                _collect_exits(_statements(stmt.finalbody), guards, inner, out)
        elif isinstance(stmt, cst.With):
            _collect_exits(_statements(stmt.body), guards, inner, out)
        elif isinstance(stmt, cst.Match):
            for case in stmt.cases:
                _collect_exits(_statements(case.body), (*guards, stmt.subject, case.pattern), inner, out)


# ---- the facts of one loop ------------------------------------------------------------------


@dataclass
class LoopFacts:
    """What one loop's iterations share. Build with `loop_facts`."""

    loop: cst.CSTNode
    targets: frozenset[str]
    assigned: frozenset[str]
    exits: tuple[Exit, ...]
    _carried_ids: set[int] = field(default_factory=set)
    _derived: dict[tuple[Source, bool], frozenset[str]] = field(default_factory=dict)

    def carried_reads(self, node: cst.CSTNode) -> frozenset[str]:
        """Names read in `node` that may hold a value from an earlier iteration."""
        names = [n for n in (node, *iter_descendants(node)) if isinstance(n, cst.Name)]
        return frozenset(n.value for n in names if id(n) in self._carried_ids)

    def derived_names(self, is_source: Source, *, async_sources: bool = False) -> frozenset[str]:
        """Names whose value in an iteration comes from a source expression, transitively.

        With `async_sources`, the targets of `async with ... as x` and `async for x in ...`
        inside the loop count as sources too (they are awaited values).
        """
        key = (is_source, async_sources)
        found = self._derived.get(key)
        if found is not None:
            return found
        bindings: list[tuple[list[str], Optional[cst.CSTNode], bool]] = []
        for node in _iter_repeated(self.loop):
            if isinstance(node, cst.Assign):
                names = [n for t in node.targets for n in _names_in_target(t.target)]
                bindings.append((names, node.value, False))
            elif isinstance(node, (cst.AnnAssign, cst.AugAssign)) and node.value is not None:
                bindings.append((_names_in_target(node.target), node.value, False))
            elif isinstance(node, cst.NamedExpr):
                bindings.append((_names_in_target(node.target), node.value, False))
            elif isinstance(node, cst.For):
                bindings.append(
                    (
                        _names_in_target(node.target),
                        node.iter,
                        async_sources and node.asynchronous is not None,
                    )
                )
            elif isinstance(node, cst.With):
                for item in node.items:
                    if item.asname is not None:
                        forced = async_sources and node.asynchronous is not None
                        bindings.append((_names_in_target(item.asname.name), item.item, forced))
        derived: set[str] = set()
        changed = True
        while changed:
            changed = False
            for names, value, forced in bindings:
                if set(names) <= derived or value is None:
                    continue
                if forced or is_source(value) or _reads_any(value, derived):
                    derived.update(names)
                    changed = True
        result = frozenset(derived)
        self._derived[key] = result
        return result

    def mutations(self, is_source: Source) -> dict[str, bool]:
        """Dotted paths the repeated part changes in place -> True when every change only
        stores a source-derived value into a container (`out.append(await f(x))`,
        `results[k] = r`). Objects fresh in each iteration (loop targets, names assigned in
        the body) are left out: changing them does not reach the next iteration."""
        derived = self.derived_names(is_source)
        fresh = self.targets | self.assigned
        out: dict[str, bool] = {}

        def note(path: Optional[str], sink: bool) -> None:
            if path is None or path.split(".", 1)[0] in fresh:
                return
            out[path] = out.get(path, True) and sink

        def stores_result(values: Sequence[cst.CSTNode]) -> bool:
            return bool(values) and all(is_source(v) or _reads_any(v, derived) for v in values)

        for node in _iter_repeated(self.loop):
            if isinstance(node, cst.Call) and isinstance(node.func, cst.Attribute):
                method = node.func.attr.value
                if method in _MUTATORS:
                    sink = method in _SINK_METHODS and stores_result([a.value for a in node.args])
                    note(dotted_path(node.func.value), sink)
            elif isinstance(node, (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.Del)):
                targets: list[cst.CSTNode]
                if isinstance(node, cst.Assign):
                    targets = [t.target for t in node.targets]
                else:
                    targets = [node.target]
                value = getattr(node, "value", None)
                for target in targets:
                    if isinstance(target, cst.Subscript):
                        sink = isinstance(node, cst.Assign) and value is not None and stores_result([value])
                        note(dotted_path(target.value), sink)
                    elif isinstance(target, cst.Attribute):
                        note(dotted_path(target), False)
        return out

    def depends_on_earlier_iteration(self, node: cst.CSTNode, is_source: Source) -> Optional[str]:
        """Why `node` (run in the repeated part) may depend on an earlier iteration, or None."""
        carried = self.carried_reads(node)
        if carried:
            return f"`{sorted(carried)[0]}` is carried from an earlier iteration"
        paths = read_paths(node)
        for mutated, sink_only in sorted(self.mutations(is_source).items()):
            for read in paths:
                if _related(read, mutated, sink_only):
                    return f"`{mutated}` is changed by earlier iterations"
        return None

    def stops_early_on(self, is_source: Source, *, async_sources: bool = False) -> bool:
        """A `break`/`return` runs unconditionally, or on a condition or value that depends on
        a source: later iterations run only if earlier results allow it."""
        derived = self.derived_names(is_source, async_sources=async_sources)
        for ex in self.exits:
            if not ex.guards:
                return True
            deciding = [*ex.guards]
            if isinstance(ex.node, cst.Return) and ex.node.value is not None:
                deciding.append(ex.node.value)
            if any(is_source(g) or _reads_any(g, derived) for g in deciding):
                return True
        return False


def _reads_any(node: cst.CSTNode, names: frozenset[str] | set[str]) -> bool:
    if not names:
        return False
    if isinstance(node, cst.Name):
        return node.value in names
    return any(isinstance(n, cst.Name) and n.value in names for n in iter_descendants(node))


def _assigned_in(loop: cst.CSTNode) -> frozenset[str]:
    names: set[str] = set()
    for node in _iter_repeated(loop):
        if isinstance(node, cst.Assign):
            for t in node.targets:
                names.update(_names_in_target(t.target))
        elif isinstance(node, (cst.AnnAssign, cst.AugAssign)):
            names.update(_names_in_target(node.target))
        elif isinstance(node, cst.NamedExpr):
            names.update(_names_in_target(node.target))
        elif isinstance(node, cst.For):
            names.update(_names_in_target(node.target))
        elif isinstance(node, cst.WithItem) and node.asname is not None:
            names.update(_names_in_target(node.asname.name))
        elif isinstance(node, cst.ExceptHandler) and node.name is not None:
            names.update(_names_in_target(node.name.name))
        elif isinstance(node, (cst.FunctionDef, cst.ClassDef)):
            names.add(node.name.value)
        elif isinstance(node, cst.CompFor):
            pass  # comprehension variables are the comprehension's own
    # Comprehension targets inside the body were collected by the For branch only for
    # statements; walrus targets inside comprehensions bind in the loop's scope and are kept.
    return frozenset(names)


def loop_facts(loop: cst.CSTNode, cache: Optional[dict[object, object]] = None) -> LoopFacts:
    """The facts of a `for`/`while` loop or a comprehension (memoised in `cache` if given)."""
    key = ("auditlint.loops", id(loop))
    if cache is not None:
        found = cache.get(key)
        if isinstance(found, LoopFacts) and found.loop is loop:
            return found
    targets = loop_targets(loop)
    assigned = _assigned_in(loop)
    flow = _Flow(assigned)
    exits: list[Exit] = []
    if isinstance(loop, cst.For):
        flow.block(loop.body, set(targets))
        _collect_exits(_statements(loop.body), (), False, exits)
    elif isinstance(loop, cst.While):
        start = set[str]()
        flow.expr(loop.test, start)
        flow.block(loop.body, start)
        _collect_exits(_statements(loop.body), (), False, exits)
    elif isinstance(loop, _COMPS):
        defined = set(targets)
        first = loop.for_in
        for cond in first.ifs:
            flow.expr(cond, defined)
        if first.inner_for_in is not None:
            flow.expr(first.inner_for_in, defined)
        for part in repeated_nodes(loop)[: 2 if isinstance(loop, cst.DictComp) else 1]:
            flow.expr(part, defined)
    facts = LoopFacts(loop, targets, assigned, tuple(exits), flow.carried)
    if cache is not None:
        cache[key] = facts
    return facts


# ---- resources, sleeps, limiters -----------------------------------------------------------

_SYNC_TYPES = (
    r"Lock|RLock|Semaphore|BoundedSemaphore|Event|Condition|Barrier|Queue|PriorityQueue|LifoQueue|"
    r"SimpleQueue|JoinableQueue|StreamWriter|StreamReader|CapacityLimiter|Lock\w*|Semaphore\w*"
)
_ORDERED_RESOLVED = re.compile(
    rf"^(?:asyncio|anyio|trio|threading|multiprocessing|curio)(?:\.\w+)*\.(?:{_SYNC_TYPES})(?:\(\))?$"
    r"|^(?:asyncpg|aiosqlite|aiomysql|aiopg|psycopg|psycopg2|sqlite3|pymysql|aioodbc|motor|"
    r"databases|tortoise|piccolo)(?:\.\w+)*\.(?:connect|Connection|AsyncConnection|Cursor|AsyncCursor|"
    r"Transaction|transaction|cursor)(?:\(\))?$"
    r"|^(?:sqlalchemy|sqlmodel)(?:\.\w+)*\.(?:AsyncSession|AsyncConnection|Session|Connection|"
    r"async_sessionmaker\(\)|sessionmaker\(\)|connect\(\)|begin\(\))(?:\(\))?$"
    r"|^(?:websockets|wsproto|aiofiles|serial_asyncio)\."
    r"|^(?:starlette|fastapi)(?:\.\w+)*\.WebSocket$"
    r"|\.(?:connect|acquire|transaction|cursor|begin|ws_connect|pipeline|open_connection|"
    r"start_tls|open)\(\)$"
)
_CONCURRENT_RESOLVED = re.compile(
    r"^aiohttp(?:\.client)?\.ClientSession(?:\(\))?$"
    r"|^httpx\.(?:AsyncClient|Client)(?:\(\))?$"
    r"|^asyncpg(?:\.pool)?\.(?:create_pool\(\)|Pool)$"
    r"|^(?:redis\.asyncio|aioredis)(?:\.\w+)*\.(?:Redis|StrictRedis|from_url)(?:\(\))?$"
    r"|^(?:redis\.asyncio|aioredis)(?:\.\w+)*\.(?:Redis|StrictRedis)\.from_url\(\)$"
    r"|^psycopg_pool\.\w*Pool(?:\(\))?$"
    r"|^(?:aioboto3|aiobotocore|boto3)\."
)
#: Words in a variable's name that say it is one ordered resource.
_ORDERED_WORDS = {
    "conn": "connection", "connection": "connection", "con": "connection", "db": "connection",
    "database": "connection", "session": "session", "sess": "session",
    "cursor": "cursor", "cur": "cursor",
    "tx": "transaction", "txn": "transaction", "transaction": "transaction", "trans": "transaction",
    "lock": "lock", "mutex": "lock", "rlock": "lock",
    "sem": "semaphore", "semaphore": "semaphore", "limiter": "semaphore",
    "queue": "queue", "q": "queue", "inbox": "queue", "outbox": "queue",
    "event": "event", "condition": "event", "cond": "event", "barrier": "event",
    "writer": "stream", "reader": "stream", "stream": "stream", "transport": "stream",
    "ws": "websocket", "websocket": "websocket", "socket": "socket", "sock": "socket",
    "channel": "channel", "chan": "channel", "pipe": "stream", "pipeline": "pipeline",
    "file": "file", "fh": "file", "fp": "file", "f": "file", "serial": "stream",
}  # fmt: skip
#: Methods of connections, cursors, locks, queues and streams: called on an unresolved object,
#: they mark it as one ordered resource.
_ORDERED_METHODS = frozenset(
    {
        "execute", "executemany", "executescript", "fetchrow", "fetchval", "fetchone", "fetchall",
        "fetchmany", "commit", "rollback", "acquire", "release", "wait", "join", "drain",
        "send", "send_str", "send_bytes", "send_json", "send_text", "recv", "receive",
        "receive_str", "receive_bytes", "receive_json", "receive_text", "readline", "readexactly",
        "readuntil", "read", "write", "writelines", "put", "get_nowait", "put_nowait", "scalar",
        "scalars", "flush", "refresh", "copy_records_to_table", "copy_to_table",
        "copy_from_query", "copy_from_table", "prepare", "cursor", "begin", "transaction",
        "begin_nested", "savepoint",
    }
)  # fmt: skip
_LIMITER_WORDS = frozenset(
    {"sem", "semaphore", "limiter", "limit", "throttle", "slot", "slots", "bound", "capacity"}
)
_SLEEP_RESOLVED = frozenset(
    {
        "asyncio.sleep",
        "asyncio.tasks.sleep",
        "trio.sleep",
        "anyio.sleep",
        "time.sleep",
        "gevent.sleep",
        "curio.sleep",
    }
)
_SLEEP_WORDS = frozenset({"sleep", "throttle", "backoff", "ratelimit"})


#: Words naming listeners: callables the program registered for an event (handlers, signal
#: receivers, trace configs). A loop over them tells each about one event, in order or
#: together; their number is fixed by the program, not by the data. Not `hooks` or
#: `subscribers`: webhooks and their subscribers are data, the audit's fan-out case.
LISTENER_WORDS = frozenset(
    {
        "handler", "handlers", "callback", "callbacks", "cb", "listener", "listeners",
        "observer", "observers", "trace", "traces", "signal", "signals", "middleware",
        "middlewares", "plugin", "plugins", "receiver", "receivers", "extension", "extensions",
        "watcher", "watchers",
    }
)  # fmt: skip


def names_listeners(expr: cst.CSTNode) -> bool:
    """`self._handlers`, `async_receivers`, `trace`: the last identifier names listeners."""
    ident = _last_identifier(expr)
    return ident is not None and any(w in LISTENER_WORDS for w in words(ident))


def words(identifier: str) -> list[str]:
    """`_dbConn` -> ["db", "conn"]; `rate_limit` -> ["rate", "limit"]."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", identifier)
    return [w.lower() for w in re.split(r"[_\W]+", spaced) if w]


def _last_identifier(expr: cst.CSTNode) -> Optional[str]:
    if isinstance(expr, cst.Name):
        return expr.value
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    if isinstance(expr, cst.Call):
        return _last_identifier(expr.func)
    if isinstance(expr, cst.Subscript):
        return _last_identifier(expr.value)
    return None


#: The words of `_ORDERED_WORDS` strong enough to mark an argument (`save(conn, row)`); short
#: or domain-ish words (`q`, `f`, `event`, `file`) mark only a receiver (`q.put(x)`).
_ARG_WORDS = frozenset(
    {
        "conn", "connection", "db", "database", "session", "sess", "cursor", "cur", "tx", "txn",
        "transaction", "lock", "mutex", "sem", "semaphore", "writer", "ws", "websocket", "sock",
        "socket",
    }
)  # fmt: skip
#: Method names in resolved forms that hand out one connection (`pool.acquire()`).
_RESOLVED_KINDS = {"connect": "connection", "acquire": "connection", "begin": "transaction", "open": "file"}


def _word_kind(identifier: Optional[str], *, strong_only: bool = False) -> Optional[str]:
    """The resource kind the last word of an identifier names: `self._db_conn` -> connection,
    `conn_pool` -> None (a pool hands out many connections)."""
    if not identifier:
        return None
    ws = words(identifier)
    if not ws:
        return None
    last = ws[-1]
    if last in _ORDERED_WORDS and (not strong_only or last in _ARG_WORDS):
        return _ORDERED_WORDS[last]
    for suffix in ("conn", "connection", "cursor", "lock", "queue", "writer", "socket", "session"):
        if last.endswith(suffix) and len(last) > len(suffix):
            return _ORDERED_WORDS[suffix]
    return None


def _resolved_forms(ctx: FileContext, expr: cst.BaseExpression) -> list[str]:
    out: list[str] = []
    resolved = ctx.resolve_expr(expr)
    if resolved is not None:
        out.append(resolved)
    if isinstance(expr, cst.Name):
        annotated = ctx.annotated_type(expr)
        if annotated is not None:
            out.append(annotated)
    return out


def ordered_resource(
    ctx: FileContext, expr: cst.BaseExpression, *, strong_only: bool = False
) -> Optional[str]:
    """The kind of ordered resource `expr` is (`"connection"`, `"lock"`, ...), or None.

    Resolved forms decide first: `asyncpg.connect()`, `asyncio.Lock()`, a `pool.acquire()`,
    a parameter annotated `asyncpg.Connection` are ordered; an `aiohttp.ClientSession`, an
    `httpx.AsyncClient` or a pool are not. Otherwise the last word of the name decides
    (`strong_only`: only the unambiguous words, for arguments).
    """
    forms = _resolved_forms(ctx, expr)
    if any(_CONCURRENT_RESOLVED.search(form) for form in forms):
        return None
    for form in forms:
        if _ORDERED_RESOLVED.search(form):
            last = form.rstrip("()").rsplit(".", 1)[-1]
            return _RESOLVED_KINDS.get(last) or _word_kind(last) or "resource"
    if isinstance(expr, (cst.Name, cst.Attribute)):
        kind = _word_kind(_last_identifier(expr), strong_only=strong_only)
        if kind is not None:
            return kind
        for form in forms:
            kind = _word_kind(form.rstrip("()").rsplit(".", 1)[-1], strong_only=strong_only)
            if kind is not None:
                return kind
    return None


@dataclass(frozen=True)
class ResourceUse:
    """An ordered resource a call uses: its kind and the expression that names it."""

    kind: str
    expr: cst.BaseExpression

    def describe(self, ctx: FileContext) -> str:
        return f"{self.kind} `{ctx.code(self.expr)}`"


def ordered_resource_in(
    ctx: FileContext, node: cst.CSTNode, fresh: frozenset[str] = frozenset()
) -> Optional[ResourceUse]:
    """The first ordered resource a call in `node` uses as its receiver or passes as an
    argument (`conn` in `conn.fetch(q)` or `save(conn, row)`), or None.

    Names in `fresh` (loop targets, values made in the iteration) are per-item objects, not a
    resource the iterations share, and are skipped.
    """
    calls = [n for n in (node, *iter_descendants(node, into_scopes=False)) if isinstance(n, cst.Call)]
    for call in calls:
        assert isinstance(call, cst.Call)
        func = call.func
        if isinstance(func, cst.Attribute) and ctx.qualname(func) is None:
            receiver = func.value
            root = _root_name(receiver)
            if isinstance(receiver, (cst.Name, cst.Attribute, cst.Call)) and root not in fresh:
                kind = ordered_resource(ctx, receiver)
                if kind is None and func.attr.value in _ORDERED_METHODS:
                    forms = _resolved_forms(ctx, receiver)
                    if not any(_CONCURRENT_RESOLVED.search(f) for f in forms):
                        kind = "resource"
                if kind is not None:
                    return ResourceUse(kind, receiver)
        for arg in call.args:
            value = arg.value
            if isinstance(value, (cst.Name, cst.Attribute)) and _root_name(value) not in fresh:
                kind = ordered_resource(ctx, value, strong_only=True)
                if kind is not None:
                    return ResourceUse(kind, value)
    return None


def is_sleep(ctx: FileContext, call: cst.Call) -> bool:
    """`asyncio.sleep(...)`, `time.sleep(...)`, or a helper whose name says it sleeps or
    throttles (`self._throttle()`, `rate_limiter.wait()` is caught as a limiter instead)."""
    qual = ctx.qualname(call.func)
    if qual is not None:
        return qual in _SLEEP_RESOLVED or qual.endswith(".sleep")
    ident = _last_identifier(call.func)
    if ident is None:
        return False
    ws = words(ident)
    return any(w in _SLEEP_WORDS for w in ws) or "ratelimit" in "".join(ws)


def rate_limited(ctx: FileContext, loop: cst.CSTNode) -> bool:
    """A sleep or throttle call runs in the repeated part of `loop`."""
    return any(isinstance(n, cst.Call) and is_sleep(ctx, n) for n in _iter_repeated(loop))


def _is_limiter(ctx: FileContext, expr: cst.BaseExpression) -> bool:
    target = expr
    if isinstance(target, cst.Call) and isinstance(target.func, cst.Attribute):
        target = target.func.value  # `sem.acquire()`, `limiter.limit()`
    for form in (
        _resolved_forms(ctx, target) if isinstance(target, (cst.Name, cst.Attribute, cst.Call)) else []
    ):
        if re.search(r"\.(?:Semaphore|BoundedSemaphore|CapacityLimiter|Lock|Condition)(?:\(\))?$", form):
            return True
    ident = _last_identifier(target)
    if ident is None:
        return False
    return any(w in _LIMITER_WORDS or w in ("lock", "mutex") for w in words(ident))


def acquires_limiter(ctx: FileContext, node: cst.CSTNode) -> bool:
    """`node` (not its nested functions) takes a semaphore, lock or limiter: `async with sem`,
    `with lock`, `await sem.acquire()`."""
    for n in [node, *iter_descendants(node, into_scopes=False)]:
        if isinstance(n, cst.With):
            if any(_is_limiter(ctx, item.item) for item in n.items):
                return True
        elif isinstance(n, cst.Call) and isinstance(n.func, cst.Attribute) and n.func.attr.value == "acquire":
            if _is_limiter(ctx, n.func.value):
                return True
    return False


def _defs_index(ctx: FileContext) -> dict[str, list[cst.FunctionDef]]:
    key = "auditlint.loops.defs"
    found = ctx.cache.get(key)
    if found is None:
        found = {}
        for node in iter_descendants(ctx.module):
            if isinstance(node, cst.FunctionDef):
                found.setdefault(node.name.value, []).append(node)
        ctx.cache[key] = found
    return found


def local_defs(ctx: FileContext, func: cst.BaseExpression) -> list[cst.FunctionDef]:
    """The functions of this file a callee may be: `fetch` -> every `def fetch` in the file;
    `self.fetch` / `cls.fetch` -> the methods of that name in the current class. Names that
    resolve to an import are not local. Any match counts, so callers use this only to stay
    silent."""
    if isinstance(func, cst.Name):
        if ctx.qualname(func) is not None:
            return []
        return list(_defs_index(ctx).get(func.value, ()))
    if (
        isinstance(func, cst.Attribute)
        and isinstance(func.value, cst.Name)
        and func.value.value in ("self", "cls")
    ):
        cls = ctx.class_
        if cls is None or not isinstance(cls.body, cst.IndentedBlock):
            return []
        return [
            s for s in cls.body.body if isinstance(s, cst.FunctionDef) and s.name.value == func.attr.value
        ]
    return []


def shared_ordered_resource(ctx: FileContext, fdef: cst.FunctionDef) -> Optional[ResourceUse]:
    """An ordered resource `fdef` uses that outlives one call: `self.conn`, a module-level
    connection or lock, a closure's writer. Resources made in the function, or received as
    parameters (the caller's arguments are checked at the call), are not shared."""
    facts = ctx.facts(fdef)
    local = {name for name in facts.bindings if name not in ("self", "cls")}
    for node in iter_descendants(fdef.body, into_scopes=False):
        exprs: list[cst.CSTNode] = []
        if isinstance(node, cst.Await):
            exprs = [node.expression]
        elif isinstance(node, cst.With):
            exprs = [item.item for item in node.items]
        for expr in exprs:
            use = ordered_resource_in(ctx, expr)
            if use is None and isinstance(expr, (cst.Name, cst.Attribute)) and _is_limiter(ctx, expr):
                use = ResourceUse("lock", expr)
            if use is not None and _root_name(use.expr) not in local:
                return use
    return None
