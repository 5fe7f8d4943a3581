"""AL102 untracked-timer: `threading.Timer` and `loop.call_later` / `call_at` handles dropped."""

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
    wrap_call,
)
from auditlint.context import FileContext
from auditlint.rule import Patch, Rule, bad, ok

_TIMER = frozenset({"threading.Timer"})
_LOOP_TIMERS = frozenset({"call_later", "call_at"})
# What may be done with a Timer kept in a local without keeping a way to cancel it.
_TIMER_SETUP = frozenset(
    {("call", "start"), ("set", "daemon"), ("set", "name"), ("call", "setDaemon"), ("call", "setName")}
)
_STARTED = frozenset({("call", "start")})


class UntrackedTimer(Rule):
    """
    ## What it does
    Finds timers whose handle is dropped, so nothing can ever cancel them:
    `threading.Timer(...).start()` (or a Timer kept only in a local that is started and never
    stored, returned, passed or cancelled), and `loop.call_later(...)` / `loop.call_at(...)`
    whose handle is used as a bare statement, assigned to `_` or kept in a local that is never
    read. A timer re-armed from its own callback (`def tick(): ...; loop.call_later(5, tick)`)
    is called out as such: it runs forever.

    Names are resolved through imports (`from threading import Timer`). `call_later` and
    `call_at` count only on an event loop (see AL101 for how a loop is recognised). A handle
    that is stored (`self._timer = ...`, a collection), returned, passed to a call, cancelled in
    the same scope or kept in a module global is not reported; neither is a Timer that is
    never started.

    ## Why is this bad?
    A timer nobody holds cannot be cancelled: on shutdown, reload or when the job should stop,
    it fires anyway, and a self re-arming timer keeps its callback and everything it references
    alive for the life of the process. It is the Python form of a `setInterval` without
    `clearInterval`.

    ## Example
    ```python
    import threading

    def refresh():
        reload_config()
        threading.Timer(60, refresh).start()
    ```

    ## Use instead
    ```python
    import threading
    import weakref

    _timers: weakref.WeakSet[threading.Timer] = weakref.WeakSet()

    def refresh():
        reload_config()
        timer = threading.Timer(60, refresh)
        _timers.add(timer)
        timer.start()

    def stop_timers():
        for timer in list(_timers):
            timer.cancel()
    ```
    or, with `fix-style = "runtime"`, `track(threading.Timer(60, refresh)).start()` from
    `auditlint.runtime`, cancelled with `default_registry.cancel_all()`.

    ## Fix safety
    The fix is **safe**: it only records the handle. In stdlib style it declares a module-level
    `weakref.WeakSet` (`_timers` for `threading.Timer`, `_timer_handles` for asyncio timer
    handles): the running thread or the event loop keeps a pending timer alive, so the set
    forgets timers that have fired and never grows without bound; iterate it to cancel them.
    In runtime style it wraps the timer in `auditlint.runtime.track`.

    ## Options
    None.
    """

    code = "AL102"
    name = "untracked-timer"
    summary = "Timer handle dropped: it can never be cancelled"
    triggers = ("Timer", "call_later", "call_at")
    fix_safety = "safe"
    examples = (
        bad(
            """
            import threading

            def refresh():
                reload_config()
                threading.Timer(60, refresh).start()
            """,
            fixed="""
            import threading
            import weakref

            _timers: weakref.WeakSet[threading.Timer] = weakref.WeakSet()

            def refresh():
                reload_config()
                timer = threading.Timer(60, refresh)
                _timers.add(timer)
                timer.start()
            """,
            title="a Timer re-armed from its own callback",
        ),
        bad(
            """
            import threading

            def refresh():
                reload_config()
                threading.Timer(60, refresh).start()
            """,
            fixed="""
            import threading
            from auditlint.runtime import track

            def refresh():
                reload_config()
                track(threading.Timer(60, refresh)).start()
            """,
            fix_style="runtime",
        ),
        bad(
            """
            from threading import Timer

            def remind(user):
                t = Timer(3600, send_reminder, args=(user,))
                t.daemon = True
                t.start()
            """,
            fixed="""
            from threading import Timer
            import threading
            import weakref

            _timers: weakref.WeakSet[threading.Timer] = weakref.WeakSet()

            def remind(user):
                t = Timer(3600, send_reminder, args=(user,))
                _timers.add(t)
                t.daemon = True
                t.start()
            """,
            title="a local that is only started",
        ),
        bad(
            """
            import asyncio

            async def expire(key, ttl):
                loop = asyncio.get_running_loop()
                loop.call_later(ttl, cache.pop, key, None)
            """,
            fixed="""
            import asyncio
            import weakref

            _timer_handles: weakref.WeakSet[asyncio.TimerHandle] = weakref.WeakSet()

            async def expire(key, ttl):
                loop = asyncio.get_running_loop()
                _timer_handles.add(loop.call_later(ttl, cache.pop, key, None))
            """,
        ),
        bad(
            """
            import asyncio

            async def expire(key, ttl):
                loop = asyncio.get_running_loop()
                loop.call_later(ttl, cache.pop, key, None)
            """,
            fixed="""
            import asyncio
            from auditlint.runtime import track

            async def expire(key, ttl):
                loop = asyncio.get_running_loop()
                track(loop.call_later(ttl, cache.pop, key, None))
            """,
            fix_style="runtime",
        ),
        bad(
            """
            import asyncio

            class Poller:
                def __init__(self):
                    self.loop = asyncio.get_event_loop()

                def tick(self):
                    self.poll()
                    self.loop.call_later(5, self.tick)
            """,
            fixed="""
            import asyncio
            import weakref

            _timer_handles: weakref.WeakSet[asyncio.TimerHandle] = weakref.WeakSet()

            class Poller:
                def __init__(self):
                    self.loop = asyncio.get_event_loop()

                def tick(self):
                    self.poll()
                    _timer_handles.add(self.loop.call_later(5, self.tick))
            """,
            title="a recursive `call_later` chain",
        ),
        bad(
            """
            import asyncio

            def schedule(loop: asyncio.AbstractEventLoop, when):
                handle = loop.call_at(when, flush)
                _ = asyncio.get_running_loop().call_later(1, flush)
            """,
            fixed="""
            import asyncio
            import weakref

            _timer_handles: weakref.WeakSet[asyncio.TimerHandle] = weakref.WeakSet()

            def schedule(loop: asyncio.AbstractEventLoop, when):
                handle = loop.call_at(when, flush)
                _timer_handles.add(handle)
                _timer_handles.add(asyncio.get_running_loop().call_later(1, flush))
            """,
            count=2,
            title="`call_at` in a local never read; `_ = call_later(...)`",
        ),
        bad(
            """
            import asyncio

            def schedule(loop: asyncio.AbstractEventLoop, when):
                handle = loop.call_at(when, flush)
            """,
            fixed="""
            import asyncio
            from auditlint.runtime import track

            def schedule(loop: asyncio.AbstractEventLoop, when):
                handle = track(loop.call_at(when, flush))
            """,
            fix_style="runtime",
        ),
        ok(
            """
            import threading

            class Heartbeat:
                def start(self):
                    self._timer = threading.Timer(30, self.beat)
                    self._timer.start()

            def later(fn):
                t = threading.Timer(5, fn)
                t.start()
                return t

            def with_cancel(fn, done):
                t = threading.Timer(5, fn)
                t.start()
                done.wait()
                t.cancel()

            def registered(fn, timers):
                t = threading.Timer(5, fn)
                timers.append(t)
                t.start()

            def never_started(fn):
                threading.Timer(5, fn)
            """,
            title="stored, returned, cancelled, registered, never started",
        ),
        ok(
            """
            import asyncio

            HANDLE = asyncio.get_event_loop().call_later(5, print)

            class Poller:
                def __init__(self, loop):
                    self.loop = loop
                    self.handle = None

                def tick(self):
                    self.handle = self.loop.call_later(5, self.tick)

            async def wait_a_bit(fut):
                loop = asyncio.get_running_loop()
                h = loop.call_later(1, fut.set_result, None)
                try:
                    return await fut
                finally:
                    h.cancel()

            def arm(loop):
                return loop.call_at(loop.time() + 5, print)
            """,
            title="handles kept, returned or cancelled",
        ),
        ok(
            """
            import sched
            import asyncio

            def plan(scheduler: sched.scheduler, timers):
                scheduler.enter(5, 1, print)
                timers.call_later(5, print)
                asyncio.get_running_loop().call_soon(print)
            """,
            title="not event-loop timers",
        ),
    )

    def visit_Call(self, node: cst.Call, ctx: FileContext) -> None:
        func = node.func
        if ctx.qualname(func) in _TIMER:
            drop = dropped_result(
                ctx,
                node,
                chain_methods=frozenset({"start"}),
                allowed_uses=_TIMER_SETUP,
                required_uses=_STARTED,
                statement=False,
            )
            if drop is not None:
                callback = positionals(node)[1].value if len(positionals(node)) > 1 else None
                callback = callback or getattr(keyword(node, "function"), "value", None)
                ctx.report(
                    node,
                    self._message(ctx, drop, node, callback, timer=True),
                    self._fix(ctx, node, drop, True),
                )
            return
        if not (isinstance(func, cst.Attribute) and func.attr.value in _LOOP_TIMERS):
            return
        args = positionals(node)
        keywords = {a.keyword.value for a in node.args if a.keyword is not None}
        if len(args) < 2 or has_star_args(node) or not keywords <= {"context"}:
            return
        if not is_event_loop(ctx, func.value):
            return
        drop = dropped_result(ctx, node)
        if drop is not None:
            ctx.report(
                node,
                self._message(ctx, drop, node, args[1].value, timer=False),
                self._fix(ctx, node, drop, False),
            )

    # ----------------------------------------------------------------------------------------

    def _message(
        self,
        ctx: FileContext,
        drop: Drop,
        node: cst.Call,
        callback: Optional[cst.BaseExpression],
        *,
        timer: bool,
    ) -> str:
        text = ctx.code(node.func)
        display = text if len(text) <= 60 else "..." + text[-57:]
        fn = ctx.function
        if isinstance(fn, cst.FunctionDef) and callback is not None and self._rearms(callback, fn.name.value):
            return f"`{display}` re-arms `{fn.name.value}` from its own callback and drops the handle"
        if drop.kind == "local":
            return f"Timer `{drop.name}` is never stored, returned or cancelled"
        if timer:
            return f"`{display}` is started and its handle dropped: it cannot be cancelled"
        return f"Handle returned by `{display}` is dropped: the timer cannot be cancelled"

    @staticmethod
    def _rearms(callback: cst.BaseExpression, function: str) -> bool:
        if isinstance(callback, cst.Name):
            return callback.value == function
        return (
            isinstance(callback, cst.Attribute)
            and isinstance(callback.value, cst.Name)
            and callback.value.value in ("self", "cls")
            and callback.attr.value == function
        )

    def _fix(self, ctx: FileContext, node: cst.Call, drop: Drop, timer: bool) -> Optional[Patch]:
        if ctx.fix_style == "runtime":
            ref = runtime_ref(ctx, "track")
            if ref is None:
                return None
            return Patch.safe(
                {node: wrap_call(ref[0], node)}, title="Keep the timer with `track(...)`", imports=ref[1]
            )
        weakref = module_ref(ctx, "weakref")
        owner = module_ref(ctx, "threading" if timer else "asyncio")
        if weakref is None or owner is None:
            return None
        kind = f"{owner[0]}.Timer" if timer else f"{owner[0]}.TimerHandle"
        registry, declaration = module_global(
            ctx,
            lambda n: f"{n}: {weakref[0]}.WeakSet[{kind}] = {weakref[0]}.WeakSet()",
            "_timers" if timer else "_timer_handles",
            "_auditlint_timers" if timer else "_auditlint_timer_handles",
        )
        changes: dict[cst.CSTNode, object]
        if drop.kind == "local" or (timer and drop.kind == "underscore"):
            assert drop.name is not None
            changes = split_statement(
                drop.container, drop.small, [drop.small, small(f"{registry}.add({drop.name})")]
            )
        elif drop.kind == "chain":
            assert isinstance(drop.small, cst.Expr) and isinstance(drop.small.value, cst.Call)
            outer = drop.small.value
            assert isinstance(outer.func, cst.Attribute)
            keep = fresh_name(ctx, "timer", "background_timer")
            new = [
                cst.Assign(targets=[cst.AssignTarget(cst.Name(keep))], value=node),
                small(f"{registry}.add({keep})"),
                cst.Expr(outer.with_changes(func=outer.func.with_changes(value=cst.Name(keep)))),
            ]
            changes = split_statement(drop.container, drop.small, new)
        elif drop.kind == "underscore":
            add = cst.Expr(wrap_call(f"{registry}.add", node), semicolon=drop.small.semicolon)
            changes = {drop.small: add}
        else:
            changes = {node: wrap_call(f"{registry}.add", node)}
        return Patch.safe(
            changes,  # type: ignore[arg-type]
            title=f"Keep the timer in a module-level `{registry}`",
            imports=[*owner[1], *weakref[1]],
            module_statements=[declaration],
        )
