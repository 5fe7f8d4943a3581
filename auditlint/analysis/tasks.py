"""Background work handles: is an expression an event loop, is a call's result dropped, and the
small code-generation helpers the fixes of AL101, AL102 and AL103 share (fresh names, module
references, turning one statement into several)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Optional, Sequence, Union

import libcst as cst

from auditlint.analysis.walk import iter_children
from auditlint.rule import ImportSpec

if TYPE_CHECKING:
    from auditlint.context import FileContext

#: Annotations that name an event loop class.
LOOP_TYPES = frozenset(
    {
        "asyncio.AbstractEventLoop",
        "asyncio.events.AbstractEventLoop",
        "asyncio.BaseEventLoop",
        "asyncio.base_events.BaseEventLoop",
        "asyncio.SelectorEventLoop",
        "asyncio.ProactorEventLoop",
        "uvloop.Loop",
    }
)

#: Qualified forms of expressions that evaluate to an event loop.
LOOP_VALUES = frozenset(
    {
        "asyncio.get_running_loop()",
        "asyncio.get_event_loop()",
        "asyncio.new_event_loop()",
        "asyncio.events.get_running_loop()",
        "asyncio.events.get_event_loop()",
        "asyncio.events.new_event_loop()",
        "asyncio.get_event_loop_policy().get_event_loop()",
        "asyncio.get_event_loop_policy().new_event_loop()",
        "asyncio.SelectorEventLoop()",
        "asyncio.ProactorEventLoop()",
        "asyncio.Runner().get_loop()",
        "asyncio.current_task().get_loop()",
        "uvloop.new_event_loop()",
        "uvloop.Loop()",
    }
)

# The receiver names people give an event loop they were handed (`loop`, `self._loop`,
# `event_loop`, `main_loop`); used only when the value cannot be resolved.
_LOOP_NAME = re.compile(r"^_*(?:[a-z0-9]+_)*(?:event_?|io_?)?loop$")


def is_event_loop(ctx: FileContext, expr: cst.BaseExpression, depth: int = 0) -> bool:
    """True when `expr` is an asyncio event loop: resolved through imports and simple bindings,
    an annotated parameter, or, when the value cannot be seen, a receiver named like one."""
    resolved = ctx.resolve_expr(expr)
    if resolved is not None:
        return resolved in LOOP_VALUES
    if depth > 3:
        return False
    if isinstance(expr, cst.Await):
        return is_event_loop(ctx, expr.expression, depth + 1)
    if isinstance(expr, cst.BooleanOperation):
        # `loop or asyncio.get_event_loop()`
        return is_event_loop(ctx, expr.left, depth + 1) or is_event_loop(ctx, expr.right, depth + 1)
    if isinstance(expr, cst.Name):
        param = ctx.param_of(expr.value)
        if param is not None:
            if param.annotation is not None:
                return ctx.annotated_type(expr) in LOOP_TYPES
            return bool(_LOOP_NAME.match(expr.value))
        value = ctx.value_of(expr)
        if value is not None:
            return is_event_loop(ctx, value, depth + 1)
        return bool(_LOOP_NAME.match(expr.value))
    if isinstance(expr, cst.Attribute):
        if isinstance(expr.value, cst.Name) and expr.value.value in ("self", "cls"):
            for value in ctx.self_attr_values(expr.attr.value):
                if isinstance(value, cst.Call):
                    # Built by a call: only a known loop factory makes it a loop.
                    return ctx.qualname(value) in LOOP_VALUES
        return bool(_LOOP_NAME.match(expr.attr.value))
    return False


# ---- dropped results -------------------------------------------------------------------------


@dataclass
class Drop:
    """How the result of a call is dropped.

    kind: `statement` (an expression statement), `underscore` (`_ = call`), `local` (a local
    that is read only in `allowed` ways), `chain` (`call.method(...)` as a statement) or
    `comprehension` (`[call for ...]` as a statement).
    """

    kind: str
    small: cst.BaseSmallStatement
    container: cst.CSTNode
    name: Optional[str] = None
    comp: Optional[Union[cst.ListComp, cst.SetComp]] = None
    uses: tuple[tuple[str, str], ...] = ()


def _scope_of(stack: Sequence[cst.CSTNode]) -> Optional[cst.CSTNode]:
    for node in reversed(stack[:-1]):
        if isinstance(node, (cst.FunctionDef, cst.Lambda, cst.ClassDef, cst.Module)):
            return node
    return None


def dropped_result(
    ctx: FileContext,
    call: cst.Call,
    *,
    chain_methods: frozenset[str] = frozenset(),
    allowed_uses: frozenset[tuple[str, str]] = frozenset(),
    required_uses: frozenset[tuple[str, str]] = frozenset(),
    statement: bool = True,
    comprehension: bool = False,
) -> Optional[Drop]:
    """How the result of `call` (the node being visited) is dropped, or None when it is kept.

    A local counts as dropped when the function reads it only in `allowed_uses` ways
    (`("call", "start")` for `t.start()` as a statement, `("set", "daemon")` for
    `t.daemon = ...`) and at least in the `required_uses` ones.
    """
    stack = ctx.stack
    if len(stack) < 3 or stack[-1] is not call:
        return None
    parent, grand = stack[-2], stack[-3]
    if isinstance(parent, cst.Expr):
        return Drop("statement", parent, grand) if statement else None
    if isinstance(parent, (cst.Assign, cst.AnnAssign)) and parent.value is call:
        if isinstance(parent, cst.Assign):
            if len(parent.targets) != 1:
                return None
            target = parent.targets[0].target
        else:
            target = parent.target
        if not isinstance(target, cst.Name):
            return None
        return _dropped_local(ctx, parent, grand, target.value, allowed_uses, required_uses)
    if (
        chain_methods
        and isinstance(parent, cst.Attribute)
        and parent.value is call
        and parent.attr.value in chain_methods
        and len(stack) >= 5
        and isinstance(grand, cst.Call)
        and grand.func is parent
        and isinstance(stack[-4], cst.Expr)
    ):
        return Drop("chain", stack[-4], stack[-5], name=parent.attr.value)
    if (
        comprehension
        and isinstance(parent, (cst.ListComp, cst.SetComp))
        and parent.elt is call
        and isinstance(grand, cst.Expr)
        and len(stack) >= 4
    ):
        return Drop("comprehension", grand, stack[-4], comp=parent)
    return None


def _dropped_local(
    ctx: FileContext,
    assign: Union[cst.Assign, cst.AnnAssign],
    container: cst.CSTNode,
    name: str,
    allowed: frozenset[tuple[str, str]],
    required: frozenset[tuple[str, str]],
) -> Optional[Drop]:
    scope = _scope_of(ctx.stack)
    if scope is None or isinstance(scope, (cst.ClassDef, cst.Lambda)):
        return None
    facts = ctx.facts(scope)
    if name in facts.declared_outer:
        return None
    if isinstance(scope, cst.Module) and name != "_":
        return None  # a module global keeps its value alive
    uses = name_uses(ctx, scope, name)
    if any(u not in allowed for u in uses) or not required.issubset(uses):
        return None
    return Drop("underscore" if name == "_" else "local", assign, container, name=name, uses=tuple(uses))


def name_uses(ctx: FileContext, scope: cst.CSTNode, name: str) -> list[tuple[str, str]]:
    """How every read of `name` in `scope` (nested scopes included) uses it.

    `("call", m)`: `name.m(...)` as a statement; `("set", a)`: `name.a = ...`;
    `("other", "")`: anything else (passed, returned, stored, awaited, compared...).
    """
    key = ("tasks.uses", id(scope), name)
    found = ctx.cache.get(key)
    if found is not None:
        return list(found)
    reads = {id(n) for n in ctx.facts(scope).reads(name)}
    out: list[tuple[str, str]] = []
    if reads:
        _collect_uses(scope, [], reads, out)
    ctx.cache[key] = tuple(out)
    return out


def _collect_uses(
    node: cst.CSTNode, stack: list[cst.CSTNode], reads: set[int], out: list[tuple[str, str]]
) -> None:
    if isinstance(node, cst.Name) and id(node) in reads:
        out.append(_use(node, stack))
        return
    stack.append(node)
    for child in iter_children(node):
        _collect_uses(child, stack, reads, out)
    stack.pop()


def _use(name: cst.Name, stack: list[cst.CSTNode]) -> tuple[str, str]:
    if len(stack) >= 2:
        parent, grand = stack[-1], stack[-2]
        if isinstance(parent, cst.Attribute) and parent.value is name:
            if (
                isinstance(grand, cst.Call)
                and grand.func is parent
                and len(stack) >= 3
                and isinstance(stack[-3], cst.Expr)
            ):
                return ("call", parent.attr.value)
            if isinstance(grand, cst.AssignTarget) and grand.target is parent:
                return ("set", parent.attr.value)
    return ("other", "")


# ---- code generation -------------------------------------------------------------------------


def identifiers(ctx: FileContext) -> frozenset[str]:
    """Every identifier-like word of the file (strings and comments included: a superset)."""
    found = ctx.cache.get("tasks.identifiers")
    if found is None:
        found = frozenset(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", ctx.module.code))
        ctx.cache["tasks.identifiers"] = found
    assert isinstance(found, frozenset)
    return found


def fresh_name(ctx: FileContext, *candidates: str) -> str:
    """The first candidate that appears nowhere in the file, else the last one with a number."""
    used = identifiers(ctx)
    for cand in candidates:
        if cand not in used:
            return cand
    base = candidates[-1]
    n = 2
    while f"{base}_{n}" in used:
        n += 1
    return f"{base}_{n}"


def module_global(ctx: FileContext, statement_of: Callable[[str], str], *candidates: str) -> tuple[str, str]:
    """A module-level name for a helper object the fix declares, and its declaration.

    Reuses a declaration the file already has (an earlier fix made it); otherwise takes a name
    that appears nowhere in the file.
    """
    # Generated once per file: every report of AL101-AL103 asks, and each asking would
    # otherwise generate the code of the whole module again.
    existing = ctx.cache.get("tasks.module_statements")
    if existing is None:
        existing = frozenset(ctx.module.code_for_node(s).strip() for s in ctx.module.body)
        ctx.cache["tasks.module_statements"] = existing
    assert isinstance(existing, frozenset)
    for cand in candidates:
        text = statement_of(cand)
        if text in existing:
            return cand, text
    name = fresh_name(ctx, *candidates)
    return name, statement_of(name)


def module_ref(
    ctx: FileContext, module: str, *, here: bool = False
) -> Optional[tuple[str, tuple[ImportSpec, ...]]]:
    """The name under which `module` can be referenced at module level (and, with `here`, at the
    node being visited), and the import to add; None when its name is taken by something else."""
    facts = ctx.facts(ctx.module)
    names = [module] + sorted(
        local for local, full in facts.imports.items() if full == module and local != module
    )
    for local in names:
        if facts.imports.get(local) == module and all(
            b.kind == "import" for b in facts.bindings.get(local, ())
        ):
            if not here or ctx.resolve_name(local) == module:
                return local, ()
    if module in facts.bindings or "." in module:
        return None
    if here and ctx.binding_scope(module) is not None:
        return None
    return module, (ImportSpec(module),)


def typing_any(ctx: FileContext) -> Optional[tuple[str, tuple[ImportSpec, ...]]]:
    """How to spell `typing.Any` at module level, and the import it needs."""
    facts = ctx.facts(ctx.module)
    if facts.imports.get("Any") in ("typing.Any", "typing_extensions.Any"):
        return "Any", ()
    if "Any" not in facts.bindings:
        return "Any", (ImportSpec("typing", "Any"),)
    ref = module_ref(ctx, "typing")
    if ref is None:
        return None
    return f"{ref[0]}.Any", ref[1]


def small(code: str) -> cst.BaseSmallStatement:
    """One small statement parsed from code."""
    stmt = cst.parse_statement(code)
    assert isinstance(stmt, cst.SimpleStatementLine)
    return stmt.body[0]


def split_statement(
    container: cst.CSTNode, old: cst.BaseSmallStatement, new: Sequence[cst.BaseSmallStatement]
) -> dict[cst.CSTNode, object]:
    """Changes that replace the small statement `old` by `new`, one per line when `old` is alone
    on its line (the line's comment stays with the first), else joined with semicolons."""
    if isinstance(container, cst.SimpleStatementLine) and len(container.body) == 1:
        lines: list[cst.BaseStatement] = [container.with_changes(body=[new[0]])]
        lines.extend(cst.SimpleStatementLine(body=[s]) for s in new[1:])
        return {container: cst.FlattenSentinel(lines)}
    items = list(new)
    items[-1] = items[-1].with_changes(semicolon=old.semicolon)
    return {old: cst.FlattenSentinel(items)}


def runtime_ref(ctx: FileContext, name: str) -> Optional[tuple[str, tuple[ImportSpec, ...]]]:
    """How to reference `auditlint.runtime.<name>` at the node being visited, and the import."""
    full = f"auditlint.runtime.{name}"
    if ctx.resolve_name(name) == full:
        return name, ()
    if name not in identifiers(ctx):
        return name, (ImportSpec("auditlint.runtime", name),)
    facts = ctx.facts(ctx.module)
    if "auditlint" in facts.bindings and facts.imports.get("auditlint") != "auditlint":
        return None
    if ctx.binding_scope("auditlint") not in (None, ctx.module):
        return None
    return full, (ImportSpec("auditlint.runtime"),)


def wrap_call(func: str, arg: cst.BaseExpression) -> cst.Call:
    """`func(arg)`, keeping `arg` as it is."""
    return cst.Call(func=cst.parse_expression(func), args=[cst.Arg(arg)])
