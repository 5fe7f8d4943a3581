"""AL202 unbounded-fan-out: `gather` / `wait` / `as_completed` over a whole collection, and
tasks spawned in a loop, with no concurrency limit. Also home of `BoundedGather`, the code
both AL201 and AL202 fixes write."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Optional, Sequence, Union

import libcst as cst

from auditlint.analysis.calls import keyword, positionals
from auditlint.analysis.loops import (
    acquires_limiter,
    is_async_loop,
    local_defs,
    loop_targets,
    names_listeners,
    repeated_nodes,
    words,
)
from auditlint.analysis.walk import iter_children, iter_descendants
from auditlint.context import FileContext
from auditlint.rule import ImportSpec, Option, Patch, Rule, bad, ok

_GATHER = frozenset({"asyncio.gather", "asyncio.tasks.gather"})
_WAIT = frozenset(
    {"asyncio.wait", "asyncio.tasks.wait", "asyncio.as_completed", "asyncio.tasks.as_completed"}
)
_SPAWN = frozenset(
    {
        "asyncio.create_task",
        "asyncio.tasks.create_task",
        "asyncio.ensure_future",
        "asyncio.tasks.ensure_future",
    }
)
_LOOP = re.compile(r"^asyncio(?:\.events)?\.(?:get_running_loop|get_event_loop|new_event_loop)\(\)$")
_GROUP = re.compile(
    r"^(?:asyncio(?:\.taskgroups)?\.TaskGroup(?:\(\))?|anyio\.create_task_group\(\)|anyio\.abc\.TaskGroup"
    r"|trio\.open_nursery\(\)|trio\.Nursery)$"
)
#: Awaits in a loop body that pace the spawning: the loop waits for tasks, a slot or a queue.
_PACING = frozenset(
    {
        "asyncio.wait", "asyncio.gather", "asyncio.sleep", "asyncio.wait_for", "asyncio.as_completed",
        "asyncio.tasks.wait", "asyncio.tasks.gather", "asyncio.tasks.sleep", "asyncio.tasks.wait_for",
    }
)  # fmt: skip
_PACING_METHODS = frozenset({"acquire", "join", "put", "wait", "drain", "sleep"})
_BATCH_WORDS = frozenset(
    {"chunk", "chunks", "chunked", "batch", "batches", "batched", "islice", "partition", "take", "grouper"}
)


# ---- the code a fix writes: a bounded gather, in either style --------------------------------


def _module_names(ctx: FileContext) -> set[str]:
    key = "auditlint.al202.names"
    found = ctx.cache.get(key)
    if found is None:
        found = {n.value for n in iter_descendants(ctx.module) if isinstance(n, cst.Name)}
        ctx.cache[key] = found
    assert isinstance(found, set)
    return found


def _fresh(taken: set[str], base: str) -> str:
    name, n = base, 1
    while name in taken:
        n += 1
        name = f"{base}{n}"
    return name


def _asyncio_alias(ctx: FileContext) -> Optional[str]:
    imports = ctx.facts(ctx.module).imports
    if imports.get("asyncio") == "asyncio":
        return "asyncio"
    for local, qual in sorted(imports.items()):
        if qual == "asyncio":
            return local
    return None


@dataclass
class BoundedGather:
    """Writes a gather with at most `limit` awaitables in flight.

    Runtime style: `gather_bounded(*aws, limit=N)` from `auditlint.runtime`. Stdlib style: a
    semaphore and a wrapper defined just before the statement, each awaitable wrapped:

        _sem = asyncio.Semaphore(N)

        async def _bounded(aw):
            async with _sem:
                return await aw

        await asyncio.gather(*(_bounded(f(x)) for x in xs))

    The wrapper takes the semaphore, so AL202 sees the bound and stays silent on the result.
    """

    ctx: FileContext
    limit: int
    runtime: bool = field(init=False)
    aio: str = field(init=False)
    sem: str = field(init=False)
    wrap: str = field(init=False)
    imports: list[ImportSpec] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self.runtime = self.ctx.fix_style == "runtime"
        alias = _asyncio_alias(self.ctx)
        self.aio = alias or "asyncio"
        if self.runtime:
            self.imports = [ImportSpec("auditlint.runtime", "gather_bounded")]
        elif alias is None:
            self.imports = [ImportSpec("asyncio")]
        taken = _module_names(self.ctx)
        self.sem = _fresh(taken, "_sem")
        self.wrap = _fresh(taken, "_bounded")

    def over_items(self, call: str, clauses: str, gather: Optional[str] = None, extra: str = "") -> str:
        """A gather of `call` for each item of the comprehension `clauses` (`for x in xs`)."""
        if self.runtime:
            return f"gather_bounded(*({call} {clauses}), limit={self.limit}{extra})"
        return f"{gather or self.aio + '.gather'}(*({self.wrap}({call}) {clauses}){extra})"

    def over_collection(self, collection: str, gather: str, extra: str) -> str:
        """A gather of every awaitable in the iterable `collection`."""
        if self.runtime:
            return f"gather_bounded(*{collection}, limit={self.limit}{extra})"
        return f"{gather}(*({self.wrap}(aw) for aw in {collection}){extra})"

    def helpers(self, leading: Sequence[cst.EmptyLine]) -> list[cst.BaseStatement]:
        """The statements that go before the rewritten one (none in runtime style)."""
        if self.runtime:
            return []
        code = (
            f"{self.sem} = {self.aio}.Semaphore({self.limit})\n"
            f"async def {self.wrap}(aw):\n"
            f"    async with {self.sem}:\n"
            f"        return await aw\n"
        )
        body: list[cst.BaseStatement] = list(cst.parse_module(code).body)
        body[0] = body[0].with_changes(leading_lines=list(leading))
        body[1] = body[1].with_changes(leading_lines=[cst.EmptyLine(indent=False)])
        return body

    def statements(
        self, original: cst.BaseStatement, new: Sequence[cst.BaseStatement]
    ) -> Union[cst.BaseStatement, cst.FlattenSentinel[cst.BaseStatement]]:
        """`original` replaced by the helpers and `new`; the comments above `original` stay
        on top, the first new statement keeps its own."""
        leading = list(getattr(original, "leading_lines", ()))
        out = list(new)
        own = list(getattr(out[0], "leading_lines", ()))
        if self.runtime:
            out[0] = out[0].with_changes(leading_lines=[*leading, *own])
            return out[0] if len(out) == 1 else cst.FlattenSentinel(out)
        out[0] = out[0].with_changes(leading_lines=[cst.EmptyLine(indent=False), *own])
        return cst.FlattenSentinel([*self.helpers(leading), *out])

    def title(self) -> str:
        if self.runtime:
            return f"Use `gather_bounded(..., limit={self.limit})`"
        return f"Gather with at most {self.limit} at once (`asyncio.Semaphore`)"


# ---- what a gathered collection is -----------------------------------------------------------


@dataclass
class Collection:
    """Awaitables made from the items of an iterable: the element expression (or the mapped
    function), the iterables, and the loop or comprehension that makes them."""

    elements: list[cst.BaseExpression]
    iterables: list[cst.BaseExpression]
    maker: Optional[cst.CSTNode] = None


def _is_builtin(ctx: FileContext, node: cst.BaseExpression, name: str) -> bool:
    return isinstance(node, cst.Name) and node.value == name and ctx.binding_scope(name) is None


def _comp_iterables(comp: cst.CSTNode) -> list[cst.BaseExpression]:
    out: list[cst.BaseExpression] = []
    clause = getattr(comp, "for_in", None)
    while isinstance(clause, cst.CompFor):
        out.append(clause.iter)
        clause = clause.inner_for_in
    return out


def _appends(ctx: FileContext, name: str) -> Optional[Collection]:
    """`name.append(aw)` inside `for` loops of the current function; None when the list is
    filled any other way (outside a loop, in a `while` or `async for`, by `extend`)."""
    scope = ctx.function or ctx.module
    found = Collection([], [])

    def walk(node: cst.CSTNode, loop: Optional[cst.CSTNode]) -> bool:
        for child in iter_children(node):
            if isinstance(child, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
                continue
            if (
                isinstance(child, cst.Call)
                and isinstance(child.func, cst.Attribute)
                and isinstance(child.func.value, cst.Name)
                and child.func.value.value == name
                and child.func.attr.value in ("append", "extend", "add", "insert")
            ):
                if not isinstance(loop, cst.For) or loop.asynchronous is not None:
                    return False
                if child.func.attr.value != "append" or len(child.args) != 1:
                    return False
                found.maker = found.maker or loop
                found.elements.append(child.args[0].value)
                found.iterables.append(loop.iter)
            inner = child if isinstance(child, (cst.For, cst.While)) else loop
            if not walk(child, inner):
                return False
        return True

    body = scope.body if isinstance(scope, (cst.FunctionDef, cst.Lambda)) else scope
    return found if walk(body, None) and found.elements else None


def collection_of(ctx: FileContext, expr: cst.BaseExpression, depth: int = 0) -> Optional[Collection]:
    """What `expr` (the starred argument of a gather, or the argument of `wait`) is made of,
    when it is made from an iterable: a comprehension, `map(f, xs)`, or a local bound to one
    (or filled by `append` in a `for` loop). None for anything else (a parameter, a literal)."""
    if isinstance(expr, (cst.GeneratorExp, cst.ListComp, cst.SetComp)):
        if is_async_loop(expr):
            return None
        return Collection([expr.elt], _comp_iterables(expr), expr)
    if isinstance(expr, cst.Call) and _is_builtin(ctx, expr.func, "map") and len(expr.args) >= 2:
        if any(a.star or a.keyword for a in expr.args):
            return None
        return Collection([expr.args[0].value], [a.value for a in expr.args[1:]], expr)
    if (
        isinstance(expr, cst.Call)
        and _is_builtin(ctx, expr.func, "list")
        and len(expr.args) == 1
        and depth < 3
    ):
        return collection_of(ctx, expr.args[0].value, depth + 1)
    if isinstance(expr, cst.Name) and depth < 3:
        value = ctx.value_of(expr)
        if isinstance(value, (cst.List, cst.Tuple)) and not value.elements:
            return _appends(ctx, expr.value)
        if isinstance(value, cst.Call) and _is_builtin(ctx, value.func, "list") and not value.args:
            return _appends(ctx, expr.value)
        if value is not None and value is not expr:
            return collection_of(ctx, value, depth + 1)
    return None


def fixed_size(ctx: FileContext, iterable: cst.BaseExpression, depth: int = 0) -> bool:
    """The iterable has a size fixed in the code or is one batch of a bigger one: a literal,
    `range(3)`, a slice `xs[i:i + 10]`, the target of an enclosing loop (`for batch in ...`),
    a chunking helper (`chunked(xs, 10)`, `itertools.batched`, `islice`)."""
    if isinstance(iterable, (cst.List, cst.Tuple, cst.Set)):
        return not any(isinstance(el, (cst.StarredElement,)) for el in iterable.elements)
    if isinstance(iterable, (cst.SimpleString, cst.ConcatenatedString)):
        return True
    if isinstance(iterable, cst.Subscript):
        return any(isinstance(el.slice, cst.Slice) for el in iterable.slice)
    if isinstance(iterable, cst.Call):
        func = iterable.func
        if _is_builtin(ctx, func, "range"):
            if all(isinstance(a.value, (cst.Integer, cst.UnaryOperation)) for a in iterable.args):
                return True
            return len(iterable.args) >= 2 and _window(iterable.args[0].value, iterable.args[1].value)
        ident = (
            func.attr.value
            if isinstance(func, cst.Attribute)
            else func.value
            if isinstance(func, cst.Name)
            else ""
        )
        if any(w in _BATCH_WORDS for w in words(ident)):
            return True
        if (
            isinstance(func, cst.Name)
            and func.value in ("enumerate", "list", "tuple", "sorted", "reversed", "zip", "set")
            and ctx.binding_scope(func.value) is None
            and iterable.args
        ):
            args = [a.value for a in iterable.args if a.keyword is None]
            if func.value == "zip":
                return bool(args) and any(fixed_size(ctx, a, depth + 1) for a in args)
            return bool(args) and fixed_size(ctx, args[0], depth + 1)
        return False
    if isinstance(iterable, cst.Name):
        for loop in ctx.loops:
            target = getattr(loop, "target", None) or getattr(getattr(loop, "for_in", None), "target", None)
            if isinstance(target, cst.Name) and target.value == iterable.value:
                return True  # one batch of an outer loop
        if depth < 3:
            value = ctx.value_of(iterable)
            if value is not None and value is not iterable:
                return fixed_size(ctx, value, depth + 1)
    return False


def _calls_item(expr: cst.BaseExpression, targets: frozenset[str]) -> bool:
    """`expr` calls the loop variable itself (`handler(event) for handler in handlers`): the
    items are callables the program registered, a set of listeners rather than of data."""
    return isinstance(expr, cst.Call) and isinstance(expr.func, cst.Name) and expr.func.value in targets


def _is_size(node: cst.BaseExpression) -> bool:
    """A size written in the code: an integer, or a constant's name (`BATCH`, `self.CHUNK`)."""
    if isinstance(node, cst.Integer):
        return True
    name = node.attr.value if isinstance(node, cst.Attribute) else node.value if isinstance(node, cst.Name) else ""
    return bool(name) and name.isupper()


def _window(start: cst.BaseExpression, stop: cst.BaseExpression, clamped: bool = False) -> bool:
    """`range(start, start + N)` with N written in the code, or the batching idiom
    `range(start, min(start + size, total))` whatever `size` is: one batch."""
    if isinstance(stop, cst.Call) and isinstance(stop.func, cst.Name) and stop.func.value == "min":
        return any(_window(start, a.value, clamped=True) for a in stop.args)
    if not (isinstance(stop, cst.BinaryOperation) and isinstance(stop.operator, cst.Add)):
        return False
    pairs = ((stop.left, stop.right), (stop.right, stop.left))
    return any(base.deep_equals(start) and (clamped or _is_size(size)) for base, size in pairs)


def _spawns(ctx: FileContext, expr: cst.BaseExpression) -> bool:
    """`expr` starts a task (it is a `create_task` / `ensure_future` call)."""
    return isinstance(expr, cst.Call) and spawn_kind(ctx, expr) is not None


def spawn_kind(ctx: FileContext, call: cst.Call) -> Optional[str]:
    """`"task"` for `asyncio.create_task` / `ensure_future` / `loop.create_task`, `"group"` for
    a TaskGroup's `create_task` or an anyio/trio `start_soon`; None otherwise."""
    target = ctx.resolve_call_target(call.func)
    if target in _SPAWN:
        return "task"
    if not isinstance(call.func, cst.Attribute):
        return None
    method = call.func.attr.value
    if method not in ("create_task", "start_soon", "ensure_future"):
        return None
    receiver = call.func.value
    forms = [f for f in (ctx.resolve_expr(receiver), ctx.annotated_type(receiver)) if f]
    if any(_GROUP.match(f) for f in forms):
        return "group"
    if method == "create_task" and any(_LOOP.match(f) for f in forms):
        return "task"
    return None


def _makes_work(element: cst.BaseExpression) -> bool:
    """The element expression calls something (a coroutine function, a factory): each item makes
    new work. An element that only names existing objects (`t`, `job.task`, `pending[i]`) does not."""
    return any(isinstance(n, (cst.Call, cst.Await)) for n in (element, *iter_descendants(element, into_scopes=False)))


def _awaitable_calls(elements: Sequence[cst.BaseExpression]) -> list[cst.BaseExpression]:
    """The callees of the calls in the element expressions (and mapped functions)."""
    out: list[cst.BaseExpression] = []
    for el in elements:
        if isinstance(el, (cst.Name, cst.Attribute)):
            out.append(el)
        for node in (el, *iter_descendants(el, into_scopes=False)):
            if isinstance(node, cst.Call):
                out.append(node.func)
    return out


def bounded_by_callee(ctx: FileContext, elements: Sequence[cst.BaseExpression]) -> bool:
    """A function the awaitables run is defined in this file and takes a semaphore or
    another limiter (`async with sem:`), or is a bounded helper."""
    for func in _awaitable_calls(elements):
        qual = ctx.qualname(func)
        if qual is not None and qual.startswith("auditlint.runtime."):
            return True
        for fdef in local_defs(ctx, func):
            if acquires_limiter(ctx, fdef.body):
                return True
    return False


def _reads(node: cst.CSTNode, names: frozenset[str]) -> bool:
    return any(isinstance(n, cst.Name) and n.value in names for n in (node, *iter_descendants(node)))


def _paced(ctx: FileContext, loop: cst.CSTNode) -> bool:
    """The loop waits for tasks, a slot or a queue in each iteration, or takes a limiter."""
    for part in repeated_nodes(loop):
        if acquires_limiter(ctx, part):
            return True
        for node in (part, *iter_descendants(part, into_scopes=False)):
            if isinstance(node, cst.Await) and isinstance(node.expression, cst.Call):
                func = node.expression.func
                if ctx.qualname(func) in _PACING:
                    return True
                if isinstance(func, cst.Attribute) and func.attr.value in _PACING_METHODS:
                    return True
    return False


class UnboundedFanOut(Rule):
    """
    ## What it does
    Finds fan-out with no concurrency limit:

    - `asyncio.gather(*(f(x) for x in xs))`, `gather(*[...])`, `gather(*map(f, xs))` and a
      gather of a list built from a collection (`tasks = [f(x) for x in xs]`, or `append`ed in
      a `for` loop);
    - `asyncio.wait(...)` / `asyncio.as_completed(...)` over such a collection;
    - `asyncio.create_task` / `ensure_future` / `loop.create_task` / a TaskGroup's
      `create_task` (and anyio / trio `start_soon`) in a `for` loop or comprehension over a
      collection.

    It stays silent when a limit is in force or the size is fixed: a gather of a fixed, literal
    number of awaitables (`gather(a(), b())`, `for x in (1, 2, 3)`, `range(4)`), one chunk or
    batch of a bigger collection (`xs[i:i + 100]`, `for batch in chunked(xs, 100)`), coroutines
    that take a semaphore (the function is defined in the same file and does `async with sem`),
    a loop that takes a semaphore or waits for tasks each round, `async for` and `while`
    loops (streams and servers), a pool of identical workers (`worker(queue) for _ in
    range(n)`: the awaitable does not use the item), listeners called with one event
    (`receiver(event) for receiver in receivers`, or any fan-out over a collection named for
    listeners such as `self._handlers`: callables the program registered, not data), and
    collections it cannot see (a parameter).
    `asyncio.gather` is recognised through imports and aliases (`from asyncio import gather`,
    `import asyncio as aio`).

    ## Why is this bad?
    One awaitable per item, all started at once: a thousand webhooks become a thousand open
    connections, a burst of memory, and a rate-limited partner that answers with errors — the
    audit's "no backpressure in webhook delivery". The size of the input decides the load.

    ## Example
    ```python
    import asyncio

    async def deliver_all(webhooks):
        return await asyncio.gather(*(deliver(w) for w in webhooks))
    ```

    ## Use instead
    ```python
    import asyncio

    async def deliver_all(webhooks):
        sem = asyncio.Semaphore(10)

        async def bounded(aw):
            async with sem:
                return await aw

        return await asyncio.gather(*(bounded(deliver(w)) for w in webhooks))
    ```

    or, with `fix-style = "runtime"`,
    `await gather_bounded(*(deliver(w) for w in webhooks), limit=10)`.

    ## Fix safety
    The fix rewrites an awaited `asyncio.gather(*collection)` and is **unsafe**: the work takes
    longer when more than `max-concurrency` items are slow, and a failure (without
    `return_exceptions`) now stops the items not started yet: in stdlib style they never run,
    in runtime style the first failure also cancels the running ones (as a `TaskGroup`
    would), where `gather` let them all run. Results
    keep their order and `return_exceptions` keeps its meaning. `asyncio.wait`,
    `as_completed` and spawned tasks are reported without a fix: their handles are used in
    ways a rewrite cannot see.

    ## Options
    - `max-concurrency` (int, default 10): the limit the fix writes.
    """

    code = "AL202"
    name = "unbounded-fan-out"
    summary = "Fan-out with no concurrency limit"
    triggers = (
        ("gather", "asyncio"),
        ("wait", "asyncio"),
        "as_completed",
        "create_task",
        "ensure_future",
        "start_soon",
    )
    fix_safety = "unsafe"
    options = (Option("max-concurrency", "int", 10, "The most awaitables the fix lets run at once."),)
    examples = (
        bad(
            """
            import asyncio
            async def deliver_all(webhooks):
                return await asyncio.gather(*(deliver(w) for w in webhooks))
            """,
            fixed="""
            import asyncio
            async def deliver_all(webhooks):
                _sem = asyncio.Semaphore(10)

                async def _bounded(aw):
                    async with _sem:
                        return await aw

                return await asyncio.gather(*(_bounded(deliver(w)) for w in webhooks))
            """,
        ),
        bad(
            """
            import asyncio
            async def deliver_all(webhooks):
                return await asyncio.gather(*(deliver(w) for w in webhooks))
            """,
            fixed="""
            import asyncio
            from auditlint.runtime import gather_bounded

            async def deliver_all(webhooks):
                return await gather_bounded(*(deliver(w) for w in webhooks), limit=10)
            """,
            fix_style="runtime",
        ),
        bad(
            """
            from asyncio import gather
            async def fetch_all(urls):
                results = await gather(*[fetch(u) for u in urls], return_exceptions=True)
                return results
            """,
            fixed="""
            from asyncio import gather
            import asyncio

            async def fetch_all(urls):
                _sem = asyncio.Semaphore(10)

                async def _bounded(aw):
                    async with _sem:
                        return await aw

                results = await gather(*[_bounded(fetch(u)) for u in urls], return_exceptions=True)
                return results
            """,
            title="`from asyncio import gather`; return_exceptions is kept",
        ),
        bad(
            """
            from asyncio import gather
            async def fetch_all(urls):
                return await gather(*[fetch(u) for u in urls], return_exceptions=True)
            """,
            fixed="""
            from asyncio import gather
            from auditlint.runtime import gather_bounded

            async def fetch_all(urls):
                return await gather_bounded(*[fetch(u) for u in urls], limit=5, return_exceptions=True)
            """,
            fix_style="runtime",
            options={"max-concurrency": 5},
        ),
        bad(
            """
            import asyncio as aio
            async def resize_all(paths):
                await aio.gather(*map(resize, paths))
            """,
            fixed="""
            import asyncio as aio
            async def resize_all(paths):
                _sem = aio.Semaphore(10)

                async def _bounded(aw):
                    async with _sem:
                        return await aw

                await aio.gather(*(_bounded(aw) for aw in map(resize, paths)))
            """,
            title="`import asyncio as aio`, `map`",
        ),
        bad(
            """
            import asyncio
            async def resize_all(paths):
                await asyncio.gather(*map(asyncio.ensure_future, (resize(p) for p in paths)))
            """,
            title="tasks started by `map(asyncio.ensure_future, ...)`: reported, no fix",
        ),
        bad(
            """
            import asyncio
            class Notifier:
                async def notify_all(self, users):
                    jobs = [self.notify(u) for u in users]
                    await asyncio.gather(*jobs)
            """,
            fixed="""
            import asyncio
            from auditlint.runtime import gather_bounded

            class Notifier:
                async def notify_all(self, users):
                    jobs = [self.notify(u) for u in users]
                    await gather_bounded(*jobs, limit=10)
            """,
            fix_style="runtime",
            title="a method; a local list of coroutines",
        ),
        bad(
            """
            import asyncio
            async def sync_all(accounts):
                pending = []
                for account in accounts:
                    pending.append(sync(account))
                await asyncio.gather(*pending)
            """,
            fixed="""
            import asyncio
            async def sync_all(accounts):
                pending = []
                for account in accounts:
                    pending.append(sync(account))
                _sem = asyncio.Semaphore(10)

                async def _bounded(aw):
                    async with _sem:
                        return await aw

                await asyncio.gather(*(_bounded(aw) for aw in pending))
            """,
            title="a list filled in a loop",
        ),
        bad(
            """
            import asyncio
            def outer(items):
                async def inner():
                    done, _ = await asyncio.wait([process(i) for i in items])
                    return done
                return inner
            """,
            title="`asyncio.wait` in a nested function: reported, not fixed",
        ),
        bad(
            """
            import asyncio
            async def first_answers(questions):
                for fut in asyncio.as_completed([ask(q) for q in questions]):
                    print(await fut)
            """,
        ),
        bad(
            """
            import asyncio
            async def fire(events):
                for event in events:
                    asyncio.create_task(publish(event))
            """,
            title="`create_task` in a loop over a collection",
        ),
        bad(
            """
            import asyncio
            async def fire(events):
                loop = asyncio.get_running_loop()
                tasks = [loop.create_task(publish(e)) for e in events]
                await asyncio.gather(*tasks)
            """,
            title="one finding at the spawn, none at the gather of its tasks",
        ),
        bad(
            """
            import asyncio
            async def fire(events):
                async with asyncio.TaskGroup() as tg:
                    for event in events:
                        tg.create_task(publish(event))
            """,
            title="a TaskGroup without a semaphore",
        ),
        ok(
            """
            import asyncio
            async def both():
                return await asyncio.gather(fetch_a(), fetch_b(), fetch_c())
            """,
            title="a fixed number of awaitables",
        ),
        ok(
            """
            import asyncio
            async def few():
                await asyncio.gather(*(ping(host) for host in ("a", "b", "c")))
                await asyncio.gather(*[worker(i) for i in range(4)])
            """,
            title="a literal collection",
        ),
        ok(
            """
            import asyncio
            async def in_batches(items):
                for i in range(0, len(items), 100):
                    await asyncio.gather(*(send(x) for x in items[i:i + 100]))
                for batch in chunked(items, 100):
                    await asyncio.gather(*(send(x) for x in batch))
            """,
            title="chunked batches",
        ),
        ok(
            """
            import asyncio
            async def bounded_all(urls):
                sem = asyncio.Semaphore(10)
                async def one(url):
                    async with sem:
                        return await fetch(url)
                return await asyncio.gather(*(one(u) for u in urls))
            """,
            title="coroutines that take a semaphore",
        ),
        ok(
            """
            import asyncio
            async def fire(events):
                sem = asyncio.Semaphore(10)
                async def publish_one(event):
                    async with sem:
                        await publish(event)
                async with asyncio.TaskGroup() as tg:
                    for event in events:
                        tg.create_task(publish_one(event))
            """,
            title="a TaskGroup limited by a semaphore",
        ),
        ok(
            """
            import asyncio
            async def fire(events, sem):
                for event in events:
                    await sem.acquire()
                    task = asyncio.create_task(publish(event))
                    task.add_done_callback(lambda _: sem.release())
            """,
            title="the loop takes a slot before each spawn",
        ),
        ok(
            """
            import asyncio
            from auditlint.runtime import gather_bounded
            async def run(coros):
                await asyncio.gather(*coros)
                await gather_bounded(*(f(x) for x in range(100)), limit=10)
            """,
            title="a collection it cannot see; a bounded helper",
        ),
        ok(
            """
            import asyncio
            async def pool(queue, n_workers):
                workers = [asyncio.create_task(worker(queue)) for _ in range(n_workers)]
                for _ in range(n_workers):
                    asyncio.create_task(worker(queue))
                await asyncio.gather(*(worker(queue) for _ in range(n_workers)))
            """,
            title="a pool of workers: the tasks do not depend on the item",
        ),
        ok(
            """
            import asyncio
            async def serve(server):
                async for conn in server:
                    asyncio.create_task(handle(conn))
                while True:
                    asyncio.create_task(tick())
                    await asyncio.sleep(1)
            """,
            title="`async for` and `while` loops",
        ),
        ok(
            """
            import asyncio
            BATCH = 20
            async def deliver_all(hooks):
                for start in range(0, len(hooks), BATCH):
                    await asyncio.gather(*(send(hooks[i]) for i in range(start, min(start + BATCH, len(hooks)))))
                    await asyncio.gather(*(send(hooks[i]) for i in range(start, start + 10)))
            async def deliver_window(hooks, start, size):
                await asyncio.gather(*(send(hooks[i]) for i in range(start, min(start + size, len(hooks)))))
            """,
            title="one window of a batch: `range(start, start + 10)`, `range(start, min(start + size, n))`",
        ),
        ok(
            """
            import asyncio
            async def drain(registry, jobs, timeout):
                pending = [h for h in registry.values() if not h.done()]
                await asyncio.wait(pending, timeout=timeout)
                await asyncio.gather(*(job.task for job in jobs), return_exceptions=True)
                for fut in asyncio.as_completed([t for t in registry.values()]):
                    await fut
            """,
            title="waiting for tasks that already run starts nothing",
        ),
        ok(
            """
            class Tasks:
                def create_task(self, x):
                    return x
            def enqueue(client, items):
                for item in items:
                    client.create_task(item)
            async def gather(*aws):
                return aws
            async def f(xs):
                await gather(*(g(x) for x in xs))
            """,
            title="a `create_task` that is not asyncio's; a local `gather`",
        ),
        ok(
            """
            import asyncio
            async def send(receivers, hooks, event):
                for hook in hooks:
                    await asyncio.ensure_future(hook(event))
                return await asyncio.gather(*(receiver(event) for receiver in receivers))
            """,
            title="listeners called with one event (signal dispatch)",
        ),
        ok(
            """
            import asyncio
            class Signal:
                async def send(self, event):
                    return await asyncio.gather(*(self._call(r, event) for r in self._receivers))
            """,
            title="a gather over a collection named for listeners",
        ),
        bad(
            """
            import asyncio
            async def deliver_all(hooks, event):
                return await asyncio.gather(*(deliver(hook, event) for hook in hooks))
            """,
            fixed="""
            import asyncio
            from auditlint.runtime import gather_bounded

            async def deliver_all(hooks, event):
                return await gather_bounded(*(deliver(hook, event) for hook in hooks), limit=10)
            """,
            fix_style="runtime",
            title="webhooks are data, not listeners",
        ),
    )

    def visit_Call(self, node: cst.Call, ctx: FileContext) -> None:
        target = ctx.qualname(node.func)
        if target in _GATHER:
            self._gather(node, ctx)
        elif target in _WAIT:
            self._wait(node, ctx)
        elif spawn_kind(ctx, node) is not None:
            self._spawn(node, ctx)

    # ---- gather / wait / as_completed -----------------------------------------------------

    def _unbounded(self, ctx: FileContext, coll: Optional[Collection]) -> bool:
        if coll is None or not coll.iterables:
            return False
        if all(fixed_size(ctx, it) for it in coll.iterables):
            return False
        if any(_spawns(ctx, el) for el in coll.elements):
            return False  # reported at the spawn
        if not isinstance(coll.maker, cst.Call) and not any(_makes_work(el) for el in coll.elements):
            return False  # `wait([t for t in tasks if not t.done()])`: awaitables already running
        if coll.maker is not None and not isinstance(coll.maker, cst.Call):
            targets = loop_targets(coll.maker)
            if not any(_reads(el, targets) for el in coll.elements):
                return False  # `worker(queue) for _ in range(n)`: a pool of n workers
            if all(_calls_item(el, targets) for el in coll.elements) or all(
                names_listeners(it) for it in coll.iterables
            ):
                return False  # `receiver(event) for receiver in receivers`: listeners, not data
        if isinstance(coll.maker, cst.For) and _paced(ctx, coll.maker):
            return False
        return not bounded_by_callee(ctx, coll.elements)

    def _gather(self, node: cst.Call, ctx: FileContext) -> None:
        starred = [a for a in node.args if a.star == "*"]
        if len(starred) != 1:
            return
        coll = collection_of(ctx, starred[0].value)
        if not self._unbounded(ctx, coll):
            return
        assert coll is not None
        # `map(asyncio.ensure_future, coros)` starts every task before the gather sees them,
        # so a semaphore around the gathered awaitables would bound nothing.
        started = isinstance(coll.maker, cst.Call) and any(
            ctx.resolve_call_target(el) in _SPAWN for el in coll.elements
        )
        ctx.report(
            node,
            f"`{ctx.code(node.func)}` starts every awaitable at once, with no limit",
            None if started else self._fix(node, ctx),
        )

    def _wait(self, node: cst.Call, ctx: FileContext) -> None:
        args = positionals(node)
        arg = args[0] if args else keyword(node, "fs") or keyword(node, "aws")
        if arg is None:
            return
        if self._unbounded(ctx, collection_of(ctx, arg.value)):
            ctx.report(node, f"`{ctx.code(node.func)}` starts every awaitable at once, with no limit")

    # ---- spawning in a loop ---------------------------------------------------------------

    def _spawn(self, node: cst.Call, ctx: FileContext) -> None:
        if not ctx.loops:
            return
        loop = ctx.loops[-1]
        if isinstance(loop, cst.While) or is_async_loop(loop):
            return
        if isinstance(loop, cst.For):
            iterables = [loop.iter]
        else:
            iterables = _comp_iterables(loop)
        if all(fixed_size(ctx, it) for it in iterables) or _paced(ctx, loop):
            return
        args = positionals(node)
        if not args or bounded_by_callee(ctx, [args[0].value]):
            return
        if not _reads(node, loop_targets(loop)):
            return  # `for _ in range(n): create_task(worker(queue))`: a pool of n workers
        if _calls_item(args[0].value, loop_targets(loop)):
            return  # `for hook in hooks: create_task(hook(event))`: listeners, not data
        ctx.report(node, f"`{ctx.code(node.func)}` in a loop starts one task per item, with no limit")

    # ---- the fix --------------------------------------------------------------------------

    def _fix(self, node: cst.Call, ctx: FileContext) -> Optional[Patch]:
        if not isinstance(ctx.parent, cst.Await):
            return None  # a gather used as a future (`.cancel()`, callbacks) is not a coroutine
        if len(positionals(node)) != 0 or any(
            a.star != "*" and (a.keyword is None or a.keyword.value != "return_exceptions") for a in node.args
        ):
            return None
        starred = next(a for a in node.args if a.star == "*")
        extra = "".join(
            f", return_exceptions={ctx.code(a.value)}"
            for a in node.args
            if a.keyword is not None and a.keyword.value == "return_exceptions"
        )
        writer = BoundedGather(ctx, int(self.opts["max-concurrency"]))
        collection = starred.value
        gather = ctx.code(node.func)
        if writer.runtime:
            code = writer.over_collection(ctx.code(collection), gather, extra)
            return Patch.unsafe(
                {node: cst.parse_expression(code)}, title=writer.title(), imports=writer.imports
            )
        stmt = ctx.statement()
        if not isinstance(stmt, cst.SimpleStatementLine) or not ctx.in_async_function:
            return None
        if isinstance(collection, (cst.GeneratorExp, cst.ListComp)) and not is_async_loop(collection):
            inner = f"{writer.wrap}({ctx.code(collection.elt)}) {ctx.code(collection.for_in).strip()}"
            wrapped = f"[{inner}]" if isinstance(collection, cst.ListComp) else f"({inner})"
        else:
            wrapped = f"({writer.wrap}(aw) for aw in {ctx.code(collection)})"
        new_call = cst.parse_expression(f"{gather}(*{wrapped}{extra})")
        new_stmt = stmt.deep_replace(node, new_call)
        assert isinstance(new_stmt, cst.SimpleStatementLine)
        return Patch.unsafe(
            {stmt: writer.statements(stmt, [new_stmt])}, title=writer.title(), imports=writer.imports
        )
