"""AL103 unstoppable-loop: `while True` polling loops that nothing can stop or cancel."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import libcst as cst

from auditlint.analysis.bindings import main_guard_callees
from auditlint.analysis.calls import positionals
from auditlint.analysis.tasks import fresh_name, module_global, module_ref, runtime_ref
from auditlint.analysis.walk import iter_children, iter_descendants
from auditlint.context import FileContext
from auditlint.rule import ImportSpec, Patch, Rule, bad, ok

_SYNC_SLEEP = frozenset({"time.sleep"})
#: Awaited sleeps -> the library whose cancellation a handler must let through.
_ASYNC_SLEEP = {
    "asyncio.sleep": "asyncio",
    "asyncio.tasks.sleep": "asyncio",
    "trio.sleep": "trio",
    "anyio.sleep": "anyio",
}
#: Exceptions that stop the thread or the process.
_EXIT_CALLS = frozenset({"sys.exit", "os._exit", "os.abort", "_thread.interrupt_main"})
_CANCELLED = {
    "asyncio.CancelledError": "asyncio",
    "asyncio.exceptions.CancelledError": "asyncio",
    "trio.Cancelled": "trio",
}
_SCOPES = (cst.FunctionDef, cst.Lambda, cst.ClassDef)


@dataclass
class _Scan:
    """What the body of one `while` loop does, nested functions and classes excluded."""

    exits: bool = False
    generator: bool = False
    sleeps: list[cst.Call] = field(default_factory=list)
    sleeps_fixable: bool = True
    awaited_sleep: Optional[str] = None
    swallows: list[tuple[cst.Try, cst.ExceptHandler]] = field(default_factory=list)


class _ReplaceNodes(cst.CSTTransformer):
    def __init__(self, changes: dict[cst.CSTNode, cst.CSTNode]) -> None:
        super().__init__()
        self.changes = changes

    def on_leave(self, original_node: cst.CSTNode, updated_node: cst.CSTNode) -> cst.CSTNode:  # type: ignore[override]
        return self.changes.get(original_node, updated_node)


def _is_forever(test: cst.BaseExpression) -> bool:
    if isinstance(test, cst.Name):
        return test.value == "True"
    if isinstance(test, cst.Integer):
        return test.evaluated_value != 0
    return False


def _is_logging(expr: cst.BaseExpression, ctx: FileContext) -> bool:
    """`logging.exception(...)`, `logger.warning(...)`, `self.log.info(...)`, `print(...)`."""
    if not isinstance(expr, cst.Call):
        return isinstance(expr, (cst.Ellipsis, cst.SimpleString, cst.ConcatenatedString))
    target = ctx.qualname(expr.func) or ""
    if target.startswith("logging.") or (isinstance(expr.func, cst.Name) and expr.func.value == "print"):
        return True
    func = expr.func
    if isinstance(func, cst.Attribute):
        receiver = func.value
        name = receiver.attr.value if isinstance(receiver, cst.Attribute) else getattr(receiver, "value", "")
        return isinstance(name, str) and "log" in name.lower()
    return False


def _is_plain(body: cst.BaseSuite, ctx: FileContext) -> bool:
    """A handler body that only logs or passes (and may `continue`)."""
    for stmt in body.body:
        smalls = stmt.body if isinstance(stmt, cst.SimpleStatementLine) else [stmt]
        for s in smalls:
            if isinstance(s, (cst.Pass, cst.Continue)):
                continue
            if isinstance(s, cst.Expr) and _is_logging(s.value, ctx):
                continue
            return False
    return True


def _leaves_block(body: cst.CSTNode) -> bool:
    """The block contains a raise, return or break (nested scopes excluded)."""
    return any(
        isinstance(n, (cst.Raise, cst.Return, cst.Break)) for n in iter_descendants(body, into_scopes=False)
    )


class UnstoppableLoop(Rule):
    """
    ## What it does
    Finds `while True` loops that nothing can stop:

    - in a regular function, a `while True` (or `while 1`) that calls `time.sleep` and has no
      `break` of its own, `return`, `raise` or `sys.exit()`: a polling thread that can never be
      stopped. A `break` inside an inner loop leaves only the inner loop and does not count.
    - in an `async def`, a `while True` that awaits `asyncio.sleep` (or trio's, anyio's) and
      swallows cancellation around an `await`: a bare `except:`, `except BaseException` or
      `except asyncio.CancelledError` (trio: `trio.Cancelled`) whose handler does not raise,
      return or break. `task.cancel()` is then ignored forever.

    Silent for generators that yield inside the loop (the consumer stops them), for loops whose
    condition reads a flag or an event (`while not stop.is_set()`), for `except Exception`
    (which does not catch cancellation since Python 3.8), for module-level script loops and
    for loops inside a `try` that catches `KeyboardInterrupt` or in a module-level function the
    file's `if __name__ == "__main__":` block calls (a program's own main-thread loop, stopped
    with Ctrl-C or a signal).
    Names are resolved through imports (`from time import sleep`).

    ## Why is this bad?
    A thread that loops forever cannot be shut down cleanly: deployments hang on exit, tests
    leak threads, and a job that should stop keeps running. A task that swallows its own
    cancellation makes `task.cancel()`, `asyncio.timeout` and TaskGroup shutdown hang.

    ## Example
    ```python
    import time

    def poll_forever():
        while True:
            refresh()
            time.sleep(30)
    ```

    ## Use instead
    ```python
    import threading

    _stop_poll_forever = threading.Event()

    def poll_forever():
        while not _stop_poll_forever.is_set():
            refresh()
            _stop_poll_forever.wait(30)
    ```
    `_stop_poll_forever.set()` stops it at once, even mid-wait. For async loops, let
    `asyncio.CancelledError` through: `except asyncio.CancelledError: raise` before a bare
    `except:`.

    ## Fix safety
    The sync fix is **unsafe**: it adds a module-level `threading.Event` named after the
    function, loops while it is not set and waits on it instead of sleeping, so the loop ends
    when someone sets it (one event per function: setting it stops every thread running that
    function). In runtime style, when the loop body is a plain sequence of statements ending
    with the sleep, the body becomes a `PeriodicJob` run at a fixed rate until the event is
    set; a run that raises is then logged and retried with backoff instead of ending the
    thread, and runs keep a fixed rate. That form needs an interval that is a number or a name
    and no state carried from one iteration to the next. Loops with an `else` clause or whose sleep result is used get no fix.

    The async fix re-raises cancellation: it adds `raise` to a handler of `CancelledError`, or
    inserts `except asyncio.CancelledError: raise` before a bare `except:` or
    `except BaseException`. It is **safe** when the handler only logs or passes, and unsafe
    otherwise (the handler's other work is skipped on cancellation).

    ## Options
    None.
    """

    code = "AL103"
    name = "unstoppable-loop"
    summary = "Loop that can never be stopped or cancelled"
    triggers = (("while", "sleep"),)
    fix_safety = "unsafe"
    examples = (
        bad(
            """
            import time

            def poll_forever():
                while True:
                    refresh()
                    time.sleep(30)
            """,
            fixed="""
            import time
            import threading

            _stop_poll_forever = threading.Event()

            def poll_forever():
                while not _stop_poll_forever.is_set():
                    refresh()
                    _stop_poll_forever.wait(30)
            """,
        ),
        bad(
            """
            import time

            def poll_forever():
                while True:
                    data = fetch()
                    store(data)
                    time.sleep(30)
            """,
            fixed="""
            import time
            import threading
            from auditlint.runtime import PeriodicJob

            _stop_poll_forever = threading.Event()

            def poll_forever():
                def run_once():
                    data = fetch()
                    store(data)
                with PeriodicJob(30, run_once, initial_delay=0, name="poll_forever"):
                    _stop_poll_forever.wait()
            """,
            fix_style="runtime",
        ),
        bad(
            """
            from time import sleep

            class Monitor:
                def run(self):
                    count = 0
                    while 1:
                        for item in self.queue:
                            if item is None:
                                break
                            self.handle(item)
                        count += 1
                        sleep(self.interval)
            """,
            fixed="""
            from time import sleep
            import threading

            _stop_Monitor_run = threading.Event()

            class Monitor:
                def run(self):
                    count = 0
                    while not _stop_Monitor_run.is_set():
                        for item in self.queue:
                            if item is None:
                                break
                            self.handle(item)
                        count += 1
                        _stop_Monitor_run.wait(self.interval)
            """,
            title="a `break` that leaves only the inner loop; `from time import sleep`",
        ),
        bad(
            """
            from time import sleep

            class Monitor:
                def run(self):
                    count = 0
                    while 1:
                        count += 1
                        sleep(self.interval)
            """,
            fixed="""
            from time import sleep
            import threading

            _stop_Monitor_run = threading.Event()

            class Monitor:
                def run(self):
                    count = 0
                    while not _stop_Monitor_run.is_set():
                        count += 1
                        _stop_Monitor_run.wait(self.interval)
            """,
            fix_style="runtime",
            title="state carried across iterations keeps the loop (runtime style)",
        ),
        bad(
            """
            import asyncio
            import logging

            async def worker(queue):
                while True:
                    try:
                        job = await queue.get()
                        await job.run()
                    except:
                        logging.exception("job failed")
                    await asyncio.sleep(1)
            """,
            fixed="""
            import asyncio
            import logging

            async def worker(queue):
                while True:
                    try:
                        job = await queue.get()
                        await job.run()
                    except asyncio.CancelledError:
                        raise
                    except:
                        logging.exception("job failed")
                    await asyncio.sleep(1)
            """,
            title="a bare `except:` swallows cancellation",
        ),
        bad(
            """
            import asyncio as aio

            async def heartbeat(conn):
                while True:
                    try:
                        await conn.ping()
                        await aio.sleep(5)
                    except aio.CancelledError:
                        pass
            """,
            fixed="""
            import asyncio as aio

            async def heartbeat(conn):
                while True:
                    try:
                        await conn.ping()
                        await aio.sleep(5)
                    except aio.CancelledError:
                        raise
            """,
            title="`except CancelledError: pass`",
        ),
        bad(
            """
            import asyncio

            async def heartbeat(conn):
                while True:
                    try:
                        await conn.ping()
                    except BaseException as exc:
                        conn.reset()
                    await asyncio.sleep(5)
            """,
            fixed="""
            import asyncio

            async def heartbeat(conn):
                while True:
                    try:
                        await conn.ping()
                    except asyncio.CancelledError:
                        raise
                    except BaseException as exc:
                        conn.reset()
                    await asyncio.sleep(5)
            """,
            title="`except BaseException`",
        ),
        ok(
            """
            import time
            import threading

            def poll(stop: threading.Event):
                while not stop.is_set():
                    refresh()
                    time.sleep(1)

            def poll_until_done():
                while True:
                    if refresh():
                        break
                    time.sleep(1)

            def poll_or_fail():
                while True:
                    if not refresh():
                        raise RuntimeError("refresh failed")
                    time.sleep(1)

            def poll_and_return():
                while True:
                    if refresh():
                        return True
                    time.sleep(1)
            """,
            title="a stop condition, break, raise or return",
        ),
        ok(
            """
            import time

            def ticks(interval):
                while True:
                    yield time.monotonic()
                    time.sleep(interval)

            def spin():
                while True:
                    refresh()
            """,
            title="a generator; a loop without sleep",
        ),
        ok(
            """
            import asyncio
            import logging

            async def worker(queue):
                while True:
                    try:
                        job = await queue.get()
                        await job.run()
                    except Exception:
                        logging.exception("job failed")
                    await asyncio.sleep(1)

            async def heartbeat(conn):
                while True:
                    try:
                        await conn.ping()
                    except asyncio.CancelledError:
                        await conn.close()
                        raise
                    await asyncio.sleep(5)

            async def poll():
                while True:
                    await refresh()
                    await asyncio.sleep(5)
            """,
            title="`except Exception`; cancellation re-raised; nothing swallowed",
        ),
        ok(
            """
            import time

            while True:
                refresh()
                time.sleep(60)
            """,
            title="a module-level script loop",
        ),
        ok(
            """
            import time

            def main():
                try:
                    while True:
                        refresh()
                        time.sleep(60)
                except KeyboardInterrupt:
                    pass
            """,
            title="a main-thread loop stopped with Ctrl-C",
        ),
        ok(
            """
            import time

            def main():
                while True:
                    refresh()
                    time.sleep(60)

            if __name__ == "__main__":
                main()
            """,
            title="the program's entry point, called by the `__main__` guard",
        ),
    )

    def visit_While(self, node: cst.While, ctx: FileContext) -> None:
        fn = ctx.function
        if not isinstance(fn, cst.FunctionDef) or not _is_forever(node.test):
            return
        scan = _Scan()
        self._scan(node.body, ctx, scan, inner_loop=False, in_while=False, parent=node)
        if scan.exits or scan.generator:
            return
        if fn.asynchronous is None:
            if scan.sleeps and not self._stopped_by_interrupt(ctx) and not self._entry_point(fn, ctx):
                ctx.report(
                    node.test,
                    f"`while {ctx.code(node.test)}` loop with `{ctx.code(scan.sleeps[0].func)}` can never be stopped",
                    self._sync_fix(node, fn, scan, ctx),
                )
        elif scan.awaited_sleep is not None and scan.swallows:
            _, handler = scan.swallows[0]
            caught = "except:" if handler.type is None else f"except {ctx.code(handler.type)}"
            ctx.report(
                node.test,
                f"`while {ctx.code(node.test)}` loop swallows cancellation in `{caught}` and can never be cancelled",
                self._async_fix(scan, ctx),
            )

    # ---- what the loop does ----------------------------------------------------------------

    def _scan(
        self,
        node: cst.CSTNode,
        ctx: FileContext,
        scan: _Scan,
        *,
        inner_loop: bool,
        in_while: bool,
        parent: cst.CSTNode,
    ) -> None:
        if isinstance(node, _SCOPES):
            return
        if isinstance(node, cst.Break):
            scan.exits = scan.exits or not inner_loop
        elif isinstance(node, (cst.Return, cst.Raise)):
            scan.exits = True
        elif isinstance(node, cst.Yield):
            scan.generator = True
        elif isinstance(node, cst.Call):
            target = ctx.qualname(node.func)
            if target in _EXIT_CALLS:
                scan.exits = True
            elif target in _SYNC_SLEEP and not in_while:
                scan.sleeps.append(node)
                if not isinstance(parent, cst.Expr) or len(positionals(node)) != 1 or len(node.args) != 1:
                    scan.sleeps_fixable = False
        elif isinstance(node, cst.Await) and isinstance(node.expression, cst.Call):
            lib = _ASYNC_SLEEP.get(ctx.qualname(node.expression.func) or "")
            if lib is not None and scan.awaited_sleep is None:
                scan.awaited_sleep = lib
        elif isinstance(node, cst.Try):
            self._check_handlers(node, ctx, scan)
        if isinstance(node, (cst.For, cst.While)):
            # The body and test repeat inside the inner loop; a `break` there leaves only it,
            # while one in its `else` clause leaves the outer loop.
            head = node.iter if isinstance(node, cst.For) else node.test
            self._scan(head, ctx, scan, inner_loop=inner_loop, in_while=in_while, parent=node)
            inner_while = in_while or isinstance(node, cst.While)
            self._scan(node.body, ctx, scan, inner_loop=True, in_while=inner_while, parent=node)
            if node.orelse is not None:
                self._scan(node.orelse, ctx, scan, inner_loop=inner_loop, in_while=in_while, parent=node)
            return
        for child in iter_children(node):
            self._scan(child, ctx, scan, inner_loop=inner_loop, in_while=in_while, parent=node)

    def _check_handlers(self, node: cst.Try, ctx: FileContext, scan: _Scan) -> None:
        if not any(isinstance(n, cst.Await) for n in iter_descendants(node.body, into_scopes=False)):
            return  # cancellation is delivered at an await
        for handler in node.handlers:
            if self._catches_cancel(handler.type, ctx):
                # The first handler that catches the cancellation decides its fate.
                if not _leaves_block(handler.body):
                    scan.swallows.append((node, handler))
                return

    @staticmethod
    def _entry_point(fn: cst.FunctionDef, ctx: FileContext) -> bool:
        """A module-level function the `__main__` guard calls: the program's own loop in the
        main thread, stopped with Ctrl-C or a signal."""
        if ctx.class_ is not None or len(ctx.frames) > 2:
            return False
        key = ("AL103.main-callees",)
        callees = ctx.cache.get(key)
        if not isinstance(callees, frozenset):
            callees = main_guard_callees(ctx.module)
            ctx.cache[key] = callees
        return fn.name.value in callees

    @staticmethod
    def _stopped_by_interrupt(ctx: FileContext) -> bool:
        """The loop runs in a `try` that catches `KeyboardInterrupt`: a main-thread loop meant
        to be stopped with Ctrl-C or a signal, not a thread."""
        for node in ctx.trys:
            for handler in getattr(node, "handlers", ()):
                caught = handler.type
                names = caught.elements if isinstance(caught, cst.Tuple) else [caught] if caught else []
                for el in names:
                    value = el.value if isinstance(el, cst.Element) else el
                    if isinstance(value, cst.Name) and value.value == "KeyboardInterrupt":
                        return True
        return False

    def _catches_cancel(self, exc: Optional[cst.BaseExpression], ctx: FileContext) -> bool:
        if exc is None:
            return True
        if isinstance(exc, cst.Tuple):
            return any(self._catches_cancel(el.value, ctx) for el in exc.elements)
        if isinstance(exc, cst.Name) and exc.value == "BaseException":
            return ctx.binding_scope("BaseException") is None
        return ctx.qualname(exc) in _CANCELLED

    # ---- fixes -----------------------------------------------------------------------------

    def _stop_event(
        self, fn: cst.FunctionDef, ctx: FileContext
    ) -> Optional[tuple[str, str, tuple[ImportSpec, ...]]]:
        threading = module_ref(ctx, "threading")
        if threading is None:
            return None
        owner = f"{ctx.class_.name.value}_" if ctx.class_ is not None and self._is_method(fn, ctx) else ""
        base = f"_stop_{owner}{fn.name.value.lstrip('_')}"
        name, declaration = module_global(
            ctx, lambda n: f"{n} = {threading[0]}.Event()", base, f"{base}_event"
        )
        return name, declaration, threading[1]

    @staticmethod
    def _is_method(fn: cst.FunctionDef, ctx: FileContext) -> bool:
        cls = ctx.class_
        return (
            cls is not None
            and isinstance(cls.body, cst.IndentedBlock)
            and any(s is fn for s in cls.body.body)
        )

    def _sync_fix(
        self, node: cst.While, fn: cst.FunctionDef, scan: _Scan, ctx: FileContext
    ) -> Optional[Patch]:
        if node.orelse is not None or not scan.sleeps_fixable:
            return None
        event = self._stop_event(fn, ctx)
        if event is None:
            return None
        stop, declaration, imports = event
        if ctx.fix_style == "runtime":
            job = self._periodic_job(node, fn, scan, ctx, stop)
            if job is not None:
                replacement, job_imports = job
                return Patch.unsafe(
                    {node: replacement},
                    title=f"Run the body as a `PeriodicJob` until `{stop}` is set",
                    imports=[*imports, *job_imports],
                    module_statements=[declaration],
                )
        waits: dict[cst.CSTNode, cst.CSTNode] = {
            call: call.with_changes(func=cst.Attribute(cst.Name(stop), cst.Name("wait")))
            for call in scan.sleeps
        }
        body = node.body.visit(_ReplaceNodes(waits))
        assert isinstance(body, cst.BaseSuite)
        new = node.with_changes(test=cst.parse_expression(f"not {stop}.is_set()"), body=body)
        return Patch.unsafe(
            {node: new},
            title=f"Loop until the module-level `threading.Event` `{stop}` is set",
            imports=imports,
            module_statements=[declaration],
        )

    def _periodic_job(
        self, node: cst.While, fn: cst.FunctionDef, scan: _Scan, ctx: FileContext, stop: str
    ) -> Optional[tuple[cst.FlattenSentinel[cst.BaseStatement], tuple[ImportSpec, ...]]]:
        """`def run_once(): <body>` + `with PeriodicJob(...): stop.wait()` when the body is a plain
        sequence of statements ending with the only sleep, carrying no state across iterations."""
        body = node.body
        if not isinstance(body, cst.IndentedBlock) or len(scan.sleeps) != 1 or len(body.body) < 2:
            return None
        last = body.body[-1]
        if not (
            isinstance(last, cst.SimpleStatementLine)
            and len(last.body) == 1
            and isinstance(last.body[0], cst.Expr)
            and last.body[0].value is scan.sleeps[0]
        ):
            return None
        inside = {id(n) for n in iter_descendants(body, into_scopes=True)}
        if any(
            isinstance(n, (cst.Continue, cst.Await, cst.Global, cst.Nonlocal))
            for n in iter_descendants(body, into_scopes=False)
        ):
            return None
        facts = ctx.facts(fn)
        interval = positionals(scan.sleeps[0])[0].value
        if not isinstance(interval, (cst.Integer, cst.Float, cst.Name)):
            return None  # PeriodicJob reads the interval once; `self.interval` may change between runs
        interval_names = {n.value for n in iter_descendants(interval) if isinstance(n, cst.Name)}
        if isinstance(interval, cst.Name):
            interval_names.add(interval.value)
        for name, bindings in facts.bindings.items():
            if not any(id(b.node) in inside for b in bindings):
                continue
            # A name the body binds must live and die inside one iteration.
            if name in interval_names or not all(id(b.node) in inside for b in bindings):
                return None
            if not all(id(r) in inside for r in facts.reads(name)):
                return None
        job = runtime_ref(ctx, "PeriodicJob")
        if job is None:
            return None
        run_once = fresh_name(ctx, "run_once", "run_job_once")
        define = cst.FunctionDef(
            name=cst.Name(run_once),
            params=cst.Parameters(),
            body=body.with_changes(body=body.body[:-1]),
            leading_lines=node.leading_lines,
        )
        block = cst.parse_statement(
            f'with {job[0]}({ctx.code(interval)}, {run_once}, initial_delay=0, name="{fn.name.value}"):\n'
            f"    {stop}.wait()\n"
        )
        return cst.FlattenSentinel([define, block]), job[1]

    def _async_fix(self, scan: _Scan, ctx: FileContext) -> Optional[Patch]:
        try_node, handler = scan.swallows[0]
        lib = scan.awaited_sleep
        cancel = self._cancel_class(lib, ctx)
        if cancel is None:
            return None
        text, imports = cancel
        plain = _is_plain(handler.body, ctx)
        make = Patch.safe if plain else Patch.unsafe
        caught = handler.type
        alone = (
            caught is not None and not isinstance(caught, cst.Tuple) and ctx.qualname(caught) in _CANCELLED
        )
        if alone:
            if (
                any(
                    isinstance(n, (cst.Continue, cst.Break))
                    for n in iter_descendants(handler.body, into_scopes=False)
                )
                and not plain
            ):
                return None
            return make(
                {handler: handler.with_changes(body=self._reraise(handler.body))},
                title="Re-raise the cancellation",
                imports=imports,
            )
        reraise = cst.ExceptHandler(
            type=cst.parse_expression(text),
            body=cst.IndentedBlock(body=[cst.SimpleStatementLine(body=[cst.Raise()])]),
            whitespace_after_except=cst.SimpleWhitespace(" "),
        )
        handlers = list(try_node.handlers)
        index = next(i for i, h in enumerate(handlers) if h is handler)
        handlers.insert(index, reraise)
        return make(
            {try_node: try_node.with_changes(handlers=handlers)},
            title=f"Let `{text}` through",
            imports=imports,
        )

    @staticmethod
    def _reraise(body: cst.BaseSuite) -> cst.BaseSuite:
        """The handler body with trailing `pass` / `continue` dropped and `raise` appended."""
        if isinstance(body, cst.SimpleStatementSuite):
            smalls = [s for s in body.body if not isinstance(s, (cst.Pass, cst.Continue))]
            return body.with_changes(body=[*smalls, cst.Raise()])
        assert isinstance(body, cst.IndentedBlock)
        lines = list(body.body)
        while (
            lines
            and isinstance(lines[-1], cst.SimpleStatementLine)
            and all(isinstance(s, (cst.Pass, cst.Continue)) for s in lines[-1].body)
        ):
            lines.pop()
        lines.append(cst.SimpleStatementLine(body=[cst.Raise()]))
        return body.with_changes(body=lines)

    @staticmethod
    def _cancel_class(lib: Optional[str], ctx: FileContext) -> Optional[tuple[str, tuple[ImportSpec, ...]]]:
        if lib is None:
            return None
        ref = module_ref(ctx, lib, here=True)
        if ref is None:
            return None
        attr = {"asyncio": "CancelledError", "trio": "Cancelled", "anyio": "get_cancelled_exc_class()"}[lib]
        return f"{ref[0]}.{attr}", ref[1]
