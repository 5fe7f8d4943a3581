"""AL101 dangling-task: asyncio tasks and futures whose handle is dropped."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from auditlint.analysis.calls import has_star_args, keyword, positionals
from auditlint.analysis.tasks import (
    Drop,
    dropped_result,
    fresh_name,
    is_event_loop,
    module_global,
    module_ref,
    runtime_ref,
    small,
    split_statement,
    typing_any,
    wrap_call,
)
from auditlint.context import FileContext
from auditlint.rule import Patch, Rule, bad, ok

_CREATE_TASK = frozenset({"asyncio.create_task", "asyncio.tasks.create_task"})
_ENSURE_FUTURE = frozenset({"asyncio.ensure_future", "asyncio.tasks.ensure_future"})
# Every keyword `create_task` takes (asyncio and uvloop, 3.9 to 3.14); any other keyword means
# a `create_task` method of something else (a Cloud Tasks client takes `parent=`, `task=`).
_TASK_KEYWORDS = frozenset({"coro", "name", "context", "eager_start"})
_CALLBACK_ONLY = frozenset({("call", "add_done_callback")})
#: Event-loop and future methods that call a callback and discard what it returns.
_CALLBACK_SLOTS = frozenset(
    {
        "call_soon", "call_soon_threadsafe", "call_later", "call_at", "add_signal_handler",
        "add_done_callback", "add_reader", "add_writer",
    }
)  # fmt: skip


def _task_shape(call: cst.Call) -> bool:
    """One coroutine argument plus `create_task`'s own keywords."""
    if has_star_args(call):
        return False
    keywords = {a.keyword.value for a in call.args if a.keyword is not None}
    if not keywords <= _TASK_KEYWORDS or any(a.star == "**" for a in call.args):
        return False
    return len(positionals(call)) + ("coro" in keywords) == 1


class DanglingTask(Rule):
    """
    ## What it does
    Finds asyncio tasks and futures whose handle is dropped: the result of
    `asyncio.create_task`, `asyncio.ensure_future` or an event loop's `create_task` used as a
    bare statement, assigned to `_`, kept in a local that is never read (or read only to add a
    done callback), a chain such as `asyncio.create_task(...).add_done_callback(cb)`, or a list
    or set comprehension of tasks whose result is discarded, and a task a lambda returns to an
    event-loop callback slot that discards it (`loop.add_signal_handler(sig, lambda:
    asyncio.create_task(stop()))`, `call_soon`, `add_done_callback`, `signal.signal`): fixed
    with `track(...)` in runtime style, reported only in stdlib style (a lambda has no room
    for the set-and-discard statements).

    Names are resolved through imports and aliases (`from asyncio import create_task`,
    `import asyncio as aio`). A `create_task` method counts only when its receiver is an event
    loop: `asyncio.get_running_loop()`, a local or `self` attribute bound to one, a parameter
    annotated `asyncio.AbstractEventLoop`, or, when the value cannot be seen, a receiver named
    like one (`loop`, `self._loop`, `event_loop`). `tg.create_task` of an `asyncio.TaskGroup`
    (in `async with` or received as a parameter), anyio and trio nurseries, and `create_task`
    methods of other objects (a Cloud Tasks client) are not reported. A task that is returned,
    awaited, stored in a collection or attribute, passed to a call or kept in a module global
    is kept. `asyncio.ensure_future` is reported only when it wraps a call (it returns an
    existing future unchanged).

    ## Why is this bad?
    The event loop keeps only a weak reference to a task. A task nobody references can be
    garbage-collected before it finishes, silently, and nobody can cancel or await it at
    shutdown: the Python form of a fire-and-forget promise.

    ## Example
    ```python
    import asyncio

    async def handle(event):
        asyncio.create_task(notify(event))
    ```

    ## Use instead
    ```python
    import asyncio
    from typing import Any

    _background_tasks: set[asyncio.Future[Any]] = set()

    async def handle(event):
        task = asyncio.create_task(notify(event))
        _background_tasks.add(task)
        task.add_done_callback(_background_tasks.discard)
    ```
    or, with `fix-style = "runtime"`, `track(asyncio.create_task(notify(event)))` from
    `auditlint.runtime`, whose `default_registry.cancel_all()` and `wait()` serve shutdown.

    ## Fix safety
    The fix is **safe**: it only adds a strong reference that is released when the task is
    done. In stdlib style it declares a module-level set (`_background_tasks`, importing
    `asyncio` and `typing.Any` when needed) and keeps the task in it until it is done; in
    runtime style it wraps the call in `auditlint.runtime.track`.

    ## Options
    None.
    """

    code = "AL101"
    name = "dangling-task"
    summary = "Task or future handle dropped"
    triggers = ("create_task", "ensure_future")
    fix_safety = "safe"
    examples = (
        bad(
            """
            import asyncio
            import signal

            def install(loop):
                loop.add_signal_handler(signal.SIGTERM, lambda: asyncio.create_task(shutdown()))
            """,
            fixed="""
            import asyncio
            import signal
            from auditlint.runtime import track

            def install(loop):
                loop.add_signal_handler(signal.SIGTERM, lambda: track(asyncio.create_task(shutdown())))
            """,
            fix_style="runtime",
            title="a task a callback lambda returns to the event loop",
        ),
        bad(
            """
            import asyncio

            def later(loop):
                loop.call_soon(lambda: asyncio.ensure_future(refresh()))
            """,
            title="a callback lambda in stdlib style: reported, no fix",
        ),
        bad(
            """
            import asyncio

            async def handle(event):
                asyncio.create_task(notify(event))
            """,
            fixed="""
            import asyncio
            from typing import Any

            _background_tasks: set[asyncio.Future[Any]] = set()

            async def handle(event):
                task = asyncio.create_task(notify(event))
                _background_tasks.add(task)
                task.add_done_callback(_background_tasks.discard)
            """,
        ),
        bad(
            """
            import asyncio

            async def handle(event):
                asyncio.create_task(notify(event))
            """,
            fixed="""
            import asyncio
            from auditlint.runtime import track

            async def handle(event):
                track(asyncio.create_task(notify(event)))
            """,
            fix_style="runtime",
        ),
        bad(
            """
            from asyncio import create_task

            async def handle(event):
                create_task(notify(event), name="notify")  # fire and forget
            """,
            fixed="""
            from asyncio import create_task
            import asyncio
            from typing import Any

            _background_tasks: set[asyncio.Future[Any]] = set()

            async def handle(event):
                task = create_task(notify(event), name="notify")  # fire and forget
                _background_tasks.add(task)
                task.add_done_callback(_background_tasks.discard)
            """,
            title="`from asyncio import create_task`",
        ),
        bad(
            """
            import asyncio as aio

            async def handle(event):
                aio.ensure_future(notify(event))
            """,
            fixed="""
            import asyncio as aio
            from typing import Any

            _background_tasks: set[aio.Future[Any]] = set()

            async def handle(event):
                task = aio.ensure_future(notify(event))
                _background_tasks.add(task)
                task.add_done_callback(_background_tasks.discard)
            """,
            title="`import asyncio as aio`",
        ),
        bad(
            """
            import asyncio

            async def handle(event):
                loop = asyncio.get_running_loop()
                _ = loop.create_task(notify(event))
            """,
            fixed="""
            import asyncio
            from typing import Any

            _background_tasks: set[asyncio.Future[Any]] = set()

            async def handle(event):
                loop = asyncio.get_running_loop()
                task = loop.create_task(notify(event))
                _background_tasks.add(task)
                task.add_done_callback(_background_tasks.discard)
            """,
            title="assigned to `_`",
        ),
        bad(
            """
            import asyncio

            async def handle(event):
                pending = asyncio.get_running_loop().create_task(notify(event))
                print("scheduled")
            """,
            fixed="""
            import asyncio
            from auditlint.runtime import track

            async def handle(event):
                pending = track(asyncio.get_running_loop().create_task(notify(event)))
                print("scheduled")
            """,
            fix_style="runtime",
            title="a local that is never read",
        ),
        bad(
            """
            import asyncio

            async def handle(event, on_done):
                asyncio.create_task(notify(event)).add_done_callback(on_done)
            """,
            fixed="""
            import asyncio
            from typing import Any

            _background_tasks: set[asyncio.Future[Any]] = set()

            async def handle(event, on_done):
                task = asyncio.create_task(notify(event))
                _background_tasks.add(task)
                task.add_done_callback(_background_tasks.discard)
                task.add_done_callback(on_done)
            """,
            title="a chain that drops the task",
        ),
        bad(
            """
            import asyncio

            async def handle(event, on_done):
                asyncio.create_task(notify(event)).add_done_callback(on_done)
            """,
            fixed="""
            import asyncio
            from auditlint.runtime import track

            async def handle(event, on_done):
                track(asyncio.create_task(notify(event))).add_done_callback(on_done)
            """,
            fix_style="runtime",
        ),
        bad(
            """
            import asyncio

            class Notifier:
                def __init__(self, loop):
                    self.loop = loop

                def notify(self, event):
                    self.loop.create_task(self.send(event))
            """,
            fixed="""
            import asyncio
            from typing import Any

            _background_tasks: set[asyncio.Future[Any]] = set()

            class Notifier:
                def __init__(self, loop):
                    self.loop = loop

                def notify(self, event):
                    task = self.loop.create_task(self.send(event))
                    _background_tasks.add(task)
                    task.add_done_callback(_background_tasks.discard)
            """,
            title="a method, `self.loop`",
        ),
        bad(
            """
            import asyncio

            async def fan_out(events):
                [asyncio.create_task(notify(e)) for e in events]
            """,
            fixed="""
            import asyncio
            from typing import Any

            _background_tasks: set[asyncio.Future[Any]] = set()

            async def fan_out(events):
                for task in [asyncio.create_task(notify(e)) for e in events]:
                    _background_tasks.add(task)
                    task.add_done_callback(_background_tasks.discard)
            """,
            title="a discarded comprehension",
        ),
        bad(
            """
            import asyncio

            def outer(coro):
                async def inner():
                    task = asyncio.ensure_future(coro())
                    task.add_done_callback(print)
                return inner
            """,
            fixed="""
            import asyncio
            from typing import Any

            _background_tasks: set[asyncio.Future[Any]] = set()

            def outer(coro):
                async def inner():
                    task = asyncio.ensure_future(coro())
                    _background_tasks.add(task)
                    task.add_done_callback(_background_tasks.discard)
                    task.add_done_callback(print)
                return inner
            """,
            title="a nested function; a local read only to add a callback",
        ),
        bad(
            """
            import asyncio

            async def main(items):
                if items: asyncio.create_task(notify(items)); print("started")
            """,
            fixed="""
            import asyncio
            from typing import Any

            _background_tasks: set[asyncio.Future[Any]] = set()

            async def main(items):
                if items: task = asyncio.create_task(notify(items)); _background_tasks.add(task); task.add_done_callback(_background_tasks.discard); print("started")
            """,
            title="several statements on one line",
        ),
        bad(
            """
            import asyncio

            async def handle(event, loop: asyncio.AbstractEventLoop, task):
                loop.create_task(notify(event, task))
            """,
            fixed="""
            import asyncio
            from typing import Any

            _background_tasks: set[asyncio.Future[Any]] = set()

            async def handle(event, loop: asyncio.AbstractEventLoop, task):
                background_task = loop.create_task(notify(event, task))
                _background_tasks.add(background_task)
                background_task.add_done_callback(_background_tasks.discard)
            """,
            title="an annotated loop parameter; `task` is taken",
        ),
        ok(
            """
            import asyncio

            async def main(events):
                async with asyncio.TaskGroup() as tg:
                    for e in events:
                        tg.create_task(notify(e))
            """,
            title="a TaskGroup owns its tasks",
        ),
        ok(
            """
            import asyncio

            async def spawn(tg: asyncio.TaskGroup, events):
                for e in events:
                    tg.create_task(notify(e))

            async def spawn_untyped(tg, event):
                tg.create_task(notify(event))
            """,
            title="a TaskGroup received as a parameter",
        ),
        ok(
            """
            import anyio
            import trio

            async def main(events):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(notify, events)
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(notify, events)
            """,
            title="anyio and trio nurseries",
        ),
        ok(
            """
            import asyncio

            _tasks = set()

            class Worker:
                def start(self):
                    self.task = asyncio.create_task(self.run())

            async def main(coro, registry):
                t = asyncio.create_task(coro())
                _tasks.add(t)
                t.add_done_callback(_tasks.discard)
                registry.append(asyncio.create_task(coro()))
                await asyncio.create_task(coro())
                done = asyncio.ensure_future(coro())
                return await done

            def spawn(coro):
                return asyncio.create_task(coro())

            callbacks = [lambda: asyncio.create_task(notify())]
            """,
            title="returned, awaited, stored, passed, returned by a lambda",
        ),
        ok(
            """
            from google.cloud import tasks_v2

            def enqueue(payload):
                client = tasks_v2.CloudTasksClient()
                client.create_task(parent="projects/p/locations/l/queues/q", task={"body": payload})
            """,
            title="a Cloud Tasks client is not an event loop",
        ),
        ok(
            """
            import asyncio

            class Jobs:
                def __init__(self, queue):
                    self.queue = queue

                def submit(self, job):
                    self.queue.create_task(job)
                    scheduler.create_task(job)
            """,
            title="`create_task` of objects that are not event loops",
        ),
        ok(
            """
            import asyncio

            async def main(fut):
                asyncio.ensure_future(fut)
                loop = asyncio.get_running_loop()
                loop.call_soon(asyncio.create_task, notify())
            """,
            title="`ensure_future` of an existing future; a task passed as a callback",
        ),
        ok(
            """
            import asyncio

            background = asyncio.get_event_loop().create_task(main())
            """,
            title="a module global keeps the task",
        ),
    )

    def visit_Call(self, node: cst.Call, ctx: FileContext) -> None:
        display = self._task_call(node, ctx)
        if display is None:
            return
        drop = dropped_result(
            ctx,
            node,
            chain_methods=frozenset({"add_done_callback"}),
            allowed_uses=_CALLBACK_ONLY,
            comprehension=True,
        )
        if drop is None:
            if self._callback_result(node, ctx):
                ctx.report(
                    node,
                    f"Task returned by `{display}` in a callback lambda is dropped",
                    self._runtime_fix(node, ctx),
                )
            return
        ctx.report(node, self._message(drop, display), self._fix(node, drop, ctx))

    @staticmethod
    def _callback_result(node: cst.Call, ctx: FileContext) -> bool:
        """`loop.add_signal_handler(sig, lambda: asyncio.create_task(stop()))`: the lambda
        returns the task to an event-loop callback slot, which discards it."""
        stack = ctx.stack
        if len(stack) < 4 or stack[-1] is not node:
            return False
        lam, arg, call = stack[-2], stack[-3], stack[-4]
        if not (
            isinstance(lam, cst.Lambda)
            and lam.body is node
            and isinstance(arg, cst.Arg)
            and arg.value is lam
            and isinstance(call, cst.Call)
        ):
            return False
        if isinstance(call.func, cst.Attribute) and call.func.attr.value in _CALLBACK_SLOTS:
            return True
        return ctx.qualname(call.func) in ("signal.signal", "atexit.register")

    # ----------------------------------------------------------------------------------------

    def _task_call(self, node: cst.Call, ctx: FileContext) -> Optional[str]:
        """The callee as written when `node` creates a task or future, else None."""
        func = node.func
        target = ctx.qualname(func)
        if target in _CREATE_TASK:
            ok_shape = _task_shape(node)
        elif target in _ENSURE_FUTURE:
            args = positionals(node)
            first = args[0].value if args else getattr(keyword(node, "coro_or_future"), "value", None)
            ok_shape = isinstance(first, cst.Call)
        elif isinstance(func, cst.Attribute) and func.attr.value == "create_task":
            ok_shape = _task_shape(node) and is_event_loop(ctx, func.value)
        else:
            return None
        if not ok_shape:
            return None
        text = ctx.code(func)
        return text if len(text) <= 60 else "..." + text[-57:]

    def _message(self, drop: Drop, display: str) -> str:
        if drop.kind == "local":
            return f"Task `{drop.name}` from `{display}` is dropped when the function returns"
        if drop.kind == "underscore":
            return f"Task returned by `{display}` is assigned to `_` and dropped"
        if drop.kind == "chain":
            return f"Task returned by `{display}` is dropped after `add_done_callback`"
        if drop.kind == "comprehension":
            return f"Tasks created by `{display}` in a discarded comprehension are dropped"
        return f"Task returned by `{display}` is dropped"

    def _fix(self, node: cst.Call, drop: Drop, ctx: FileContext) -> Optional[Patch]:
        if ctx.fix_style == "runtime":
            return self._runtime_fix(node, ctx)
        return self._stdlib_fix(node, drop, ctx)

    @staticmethod
    def _runtime_fix(node: cst.Call, ctx: FileContext) -> Optional[Patch]:
        if ctx.fix_style != "runtime":
            return None  # a lambda has no room for the stdlib set-and-discard statements
        ref = runtime_ref(ctx, "track")
        if ref is None:
            return None
        return Patch.safe(
            {node: wrap_call(ref[0], node)},
            title="Keep the task with `track(...)`",
            imports=ref[1],
        )

    def _stdlib_fix(self, node: cst.Call, drop: Drop, ctx: FileContext) -> Optional[Patch]:
        aio = module_ref(ctx, "asyncio")
        any_ = typing_any(ctx)
        if aio is None or any_ is None:
            return None
        tasks, declaration = module_global(
            ctx,
            lambda n: f"{n}: set[{aio[0]}.Future[{any_[0]}]] = set()",
            "_background_tasks",
            "_auditlint_background_tasks",
        )
        keep = drop.name if drop.kind == "local" and drop.name else fresh_name(ctx, "task", "background_task")
        track = [small(f"{tasks}.add({keep})"), small(f"{keep}.add_done_callback({tasks}.discard)")]
        changes: dict[cst.CSTNode, object]
        if drop.kind == "comprehension":
            if not (isinstance(drop.container, cst.SimpleStatementLine) and len(drop.container.body) == 1):
                return None
            loop = cst.parse_statement(
                f"for {keep} in _:\n    {tasks}.add({keep})\n    {keep}.add_done_callback({tasks}.discard)\n"
            )
            assert (
                isinstance(loop, cst.For)
                and isinstance(loop.body, cst.IndentedBlock)
                and drop.comp is not None
            )
            loop = loop.with_changes(
                iter=drop.comp,
                leading_lines=drop.container.leading_lines,
                body=loop.body.with_changes(header=drop.container.trailing_whitespace),
            )
            changes = {drop.container: loop}
        else:
            first: cst.BaseSmallStatement
            if drop.kind == "local":
                first = drop.small
            elif isinstance(drop.small, cst.AnnAssign):
                first = drop.small.with_changes(target=cst.Name(keep))
            else:
                first = cst.Assign(targets=[cst.AssignTarget(cst.Name(keep))], value=node)
            new = [first, *track]
            if drop.kind == "chain":
                assert isinstance(drop.small, cst.Expr) and isinstance(drop.small.value, cst.Call)
                outer = drop.small.value
                assert isinstance(outer.func, cst.Attribute)
                new.append(cst.Expr(outer.with_changes(func=outer.func.with_changes(value=cst.Name(keep)))))
            changes = split_statement(drop.container, drop.small, new)
        return Patch.safe(
            changes,  # type: ignore[arg-type]
            title="Keep the task in a module-level set until it is done",
            imports=[*aio[1], *any_[1]],
            module_statements=[declaration],
        )
