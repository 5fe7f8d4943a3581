"""AL201 await-in-loop: independent awaits run one at a time in a `for` loop or comprehension."""

from __future__ import annotations

from typing import Optional, Sequence

import libcst as cst

from auditlint.analysis.loops import (
    LISTENER_WORDS,
    LoopFacts,
    contains_await,
    dotted_path,
    is_async_loop,
    is_sleep,
    leaves_loop_after,
    local_defs,
    loop_facts,
    ordered_resource,
    ordered_resource_in,
    rate_limited,
    read_paths,
    repeated_nodes,
    runs_subtests,
    shared_ordered_resource,
    words,
)
from auditlint.analysis.mutation import target_names
from auditlint.analysis.walk import iter_children, iter_descendants
from auditlint.context import FileContext
from auditlint.rule import Option, Patch, Rule, bad, ok
from auditlint.rules.al202_unbounded_fan_out import BoundedGather, fixed_size

#: Awaited calls that already run work together (or pace it): a loop of them is batching.
_BATCHING = frozenset(
    {
        "asyncio.gather", "asyncio.wait", "asyncio.as_completed", "asyncio.tasks.gather",
        "asyncio.tasks.wait", "asyncio.shield", "asyncio.to_thread",
        "auditlint.runtime.gather_bounded", "auditlint.runtime.map_bounded",
        "auditlint.runtime.bounded.gather_bounded", "auditlint.runtime.bounded.map_bounded",
    }
)  # fmt: skip
_REITERABLE_CALLS = frozenset({"list", "tuple", "sorted", "range", "dict", "set"})
#: Lifecycle steps of the items themselves: starting, stopping or closing components one by
#: one is an ordered start-up or shutdown, not a batch of independent requests.
_LIFECYCLE = frozenset(
    {
        "start", "stop", "close", "aclose", "shutdown", "cleanup", "startup", "setup", "teardown",
        "wait_closed", "join", "cancel", "__anext__", "__aenter__", "__aexit__", "asend", "athrow",
        "connect", "disconnect",
    }
)  # fmt: skip


#: Callables received as parameters that are one message channel (ASGI `send`/`receive`).
_CHANNELS = frozenset({"send", "receive"})


def _yields(loop: cst.CSTNode) -> bool:
    """The body yields: a generator hands its items out one at a time, as they are made."""
    return any(
        isinstance(n, cst.Yield)
        for part in repeated_nodes(loop)
        for n in (part, *iter_descendants(part, into_scopes=False))
    )


def _ordered_steps(call: cst.Call, facts: LoopFacts) -> bool:
    """The call is a lifecycle step of the item (`await site.start()`, `await it.__anext__()`)
    or tells a listener about an event (`await trace.send_start(...)`, `await
    app.on_prepare.send(...)`): steps meant to run one after another."""
    func = call.func
    if (
        isinstance(func, cst.Call)
        and isinstance(func.func, cst.Name)
        and func.func.value == "getattr"
        and func.args
        and isinstance(func.args[0].value, cst.Name)
    ):
        # `await getattr(plugin, f"pre_{name}")(...)`: a hook looked up on each item
        root = func.args[0].value.value
        return root in facts.targets and any(w in LISTENER_WORDS for w in words(root))
    if not isinstance(func, cst.Attribute):
        return False
    chain: list[str] = [func.attr.value]
    receiver: cst.BaseExpression = func.value
    while isinstance(receiver, cst.Attribute):
        chain.append(receiver.attr.value)
        receiver = receiver.value
    if not isinstance(receiver, cst.Name):
        return False
    root = receiver.value
    if func.attr.value in _LIFECYCLE and root in facts.targets | facts.assigned:
        return True
    if root not in facts.targets | facts.assigned:
        return False
    identifiers = [root, *chain[1:]]
    return any(w in LISTENER_WORDS for ident in identifiers for w in words(ident)) or any(
        ident.startswith("on_") for ident in identifiers
    )


def _names_of_target(node: cst.BaseExpression) -> Optional[list[str]]:
    """Names a `for` target binds, or None when it also writes attributes or items."""
    if isinstance(node, cst.Name):
        return [node.value]
    if isinstance(node, (cst.Tuple, cst.List)):
        out: list[str] = []
        for el in node.elements:
            inner = _names_of_target(el.value)
            if inner is None:
                return None
            out.extend(inner)
        return out
    if isinstance(node, cst.StarredElement):
        return _names_of_target(node.value)
    return None


def _has(node: cst.CSTNode, kinds: tuple[type, ...]) -> bool:
    return isinstance(node, kinds) or any(
        isinstance(n, kinds) for n in iter_descendants(node, into_scopes=False)
    )


class AwaitInLoop(Rule):
    """
    ## What it does
    Finds an `await` of a call in the body of a `for` loop or in a comprehension
    (`[await f(x) for x in xs]`) when the iterations are independent, so the calls could run
    together instead of one after another.

    It stays silent when the order matters or it cannot tell:

    - a later iteration depends on an earlier one: the awaited call reads a name the body
      assigns later (`cursor = await fetch(cursor)`), an accumulator, or an object the body
      changes (a set of seen ids, `self.offset`);
    - the loop breaks or returns on an awaited result (`if await exists(x): return x`), or
      unconditionally, or a `break` / `return` always follows the await (it runs once);
    - the call uses one ordered resource — a connection, transaction, cursor, lock,
      semaphore, queue, event, stream, websocket, file (`conn.fetch(q)`, `save(conn, row)`,
      or a function of this file that uses `self.conn`), or a wrapper the body builds around
      one (`w = PayloadWriter(writer); await part.write(w)`), or ASGI's `send` / `receive`
      received as parameters; those are AL203's business when they
      run queries. An unresolved `session` counts as one (it may be SQLAlchemy's), an
      `aiohttp.ClientSession` or `httpx.AsyncClient` does not;
    - the loop runs inside a lock or a transaction (`async with conn.transaction():`), or
      a `with` block in its body holds one;
    - the awaited callee is the loop variable (`for handler in handlers: await handler(e)`:
      a chain of callbacks run in order) or a listener's method (`for trace in traces: await
      trace.send_start(e)`, `await app.on_prepare.send(e)`), the call is a lifecycle step of
      the item (`await site.start()`, `stop`, `close`, `cleanup`...: an ordered start-up or
      shutdown), or the call uses nothing that changes between
      iterations (`for _ in range(3): await ping()`: a repetition, not a batch of items);
    - the loop sleeps or throttles (deliberate rate limiting), or yields (a generator hands
      out its items one at a time);
    - `async for` bodies, `while` loops (polling), generator expressions, the await in a
      loop's iterable (it runs once), an `await` of something that is not a call
      (`await task`), and batches (`await asyncio.gather(...)` per chunk);
    - awaits that use the result of an earlier await in the same iteration
      (`r = await get(u); await r.json()`), or the same per-item object as an earlier await
      (`await c.send(x); await c.receive()`): only the first await of that chain is reported;
    - loops of test cases (`with self.subTest(...)` in the body), and a callee bound per
      iteration (`method = getattr(client, name); await method(url)`).

    Names are resolved through imports and aliases (`from asyncio import sleep`,
    `import asyncio as aio`), bindings in the same function and `self.attr` in the class.

    ## Why is this bad?
    Each iteration waits for a full round trip before the next starts: a hundred
    organisations cost a hundred round trips, minutes instead of seconds — the audit's
    "sequential queries in loops".

    ## Example
    ```python
    async def refresh_all(claim_ids):
        for claim_id in claim_ids:
            await refresh_claim(claim_id)
    ```

    ## Use instead
    ```python
    import asyncio

    async def refresh_all(claim_ids):
        sem = asyncio.Semaphore(10)

        async def bounded(aw):
            async with sem:
                return await aw

        await asyncio.gather(*(bounded(refresh_claim(claim_id)) for claim_id in claim_ids))
    ```

    or, with `fix-style = "runtime"`,
    `await gather_bounded(*(refresh_claim(c) for c in claim_ids), limit=10)`.

    ## Fix safety
    The fix is **unsafe**: the calls now overlap (at most `max-concurrency` at once), so
    their side effects interleave, and a failure no longer stops the items after it: in
    stdlib style the calls already started keep running and the ones not started never run;
    `gather_bounded` cancels the started ones. It is offered only
    where the rewrite is provably equivalent otherwise:

    - the body is one `await f(x)` statement: a bounded gather over the same items;
    - the body is `out.append(await f(x))`: `out.extend(await <bounded gather>)`;
    - a comprehension `[await f(x) for x in xs]`: the bounded gather, which is a list;
    - `r = await f(x)` followed by statements that neither await, break nor return: the calls
      run first, bounded, then the rest of the body loops over `zip(items, results)`.

    It is not offered when the loop variable is read after the loop, when the loop has an
    `else`, or when the call's arguments await. The bounded gather keeps the results in
    order; it never makes concurrent calls on one connection, since such loops are not
    reported.

    ## Options
    - `max-concurrency` (int, default 10): the most calls the fix lets run at once.
    """

    code = "AL201"
    name = "await-in-loop"
    summary = "Independent awaits run one at a time in a loop"
    triggers = (("await", "for"),)
    fix_safety = "unsafe"
    options = (Option("max-concurrency", "int", 10, "The most calls the fix lets run at once."),)
    examples = (
        bad(
            """
            async def refresh_all(claim_ids):
                for claim_id in claim_ids:
                    await refresh_claim(claim_id)
            """,
            fixed="""
            import asyncio

            async def refresh_all(claim_ids):
                _sem = asyncio.Semaphore(10)

                async def _bounded(aw):
                    async with _sem:
                        return await aw

                await asyncio.gather(*(_bounded(refresh_claim(claim_id)) for claim_id in claim_ids))
            """,
        ),
        bad(
            """
            async def refresh_all(claim_ids):
                for claim_id in claim_ids:
                    await refresh_claim(claim_id)
            """,
            fixed="""
            from auditlint.runtime import gather_bounded

            async def refresh_all(claim_ids):
                await gather_bounded(*(refresh_claim(claim_id) for claim_id in claim_ids), limit=10)
            """,
            fix_style="runtime",
        ),
        bad(
            """
            import asyncio as aio
            async def load(ids):
                users = []
                for user_id in ids:
                    users.append(await get_user(user_id))
                return users
            """,
            fixed="""
            import asyncio as aio
            async def load(ids):
                users = []
                _sem = aio.Semaphore(10)

                async def _bounded(aw):
                    async with _sem:
                        return await aw

                users.extend(await aio.gather(*(_bounded(get_user(user_id)) for user_id in ids)))
                return users
            """,
            title="`out.append(await f(x))`, `import asyncio as aio`",
        ),
        bad(
            """
            async def load(ids):
                users = []
                for user_id in ids:
                    users.append(await get_user(user_id))
                return users
            """,
            fixed="""
            from auditlint.runtime import gather_bounded

            async def load(ids):
                users = []
                users.extend(await gather_bounded(*(get_user(user_id) for user_id in ids), limit=4))
                return users
            """,
            fix_style="runtime",
            options={"max-concurrency": 4},
        ),
        bad(
            """
            async def prices(skus):
                return [await fetch_price(sku) for sku in skus]
            """,
            fixed="""
            from auditlint.runtime import gather_bounded

            async def prices(skus):
                return await gather_bounded(*(fetch_price(sku) for sku in skus), limit=10)
            """,
            fix_style="runtime",
            title="a comprehension",
        ),
        bad(
            """
            async def prices(skus):
                return [await fetch_price(sku) for sku in skus if sku]
            """,
            fixed="""
            import asyncio

            async def prices(skus):
                _sem = asyncio.Semaphore(10)

                async def _bounded(aw):
                    async with _sem:
                        return await aw

                return await asyncio.gather(*(_bounded(fetch_price(sku)) for sku in skus if sku))
            """,
        ),
        bad(
            """
            class Mailer:
                async def send_all(self, messages):
                    for message in messages:
                        await self.client.post("/send", json=message)
            """,
            fixed="""
            from auditlint.runtime import gather_bounded

            class Mailer:
                async def send_all(self, messages):
                    await gather_bounded(*(self.client.post("/send", json=message) for message in messages), limit=10)
            """,
            fix_style="runtime",
            title="a method",
        ),
        bad(
            """
            import httpx
            async def statuses(urls):
                async with httpx.AsyncClient() as client:
                    out = {}
                    for url in urls:
                        response = await client.get(url)
                        out[url] = response.status_code
                    return out
            """,
            fixed="""
            import httpx
            from auditlint.runtime import gather_bounded

            async def statuses(urls):
                async with httpx.AsyncClient() as client:
                    out = {}
                    _items = list(urls)
                    for url, response in zip(_items, await gather_bounded(*(client.get(url) for url in _items), limit=10)):
                        out[url] = response.status_code
                    return out
            """,
            fix_style="runtime",
            title="`r = await f(x)` then a body that only uses `r`",
        ),
        bad(
            """
            async def totals(accounts):
                total = 0
                for account in accounts:
                    balance = await get_balance(account)
                    if balance is None:
                        continue
                    total += balance
                return total
            """,
            fixed="""
            import asyncio

            async def totals(accounts):
                total = 0
                _sem = asyncio.Semaphore(10)

                async def _bounded(aw):
                    async with _sem:
                        return await aw

                _items = list(accounts)
                for account, balance in zip(_items, await asyncio.gather(*(_bounded(get_balance(account)) for account in _items))):
                    if balance is None:
                        continue
                    total += balance
                return total
            """,
            title="an accumulator the call does not read",
        ),
        bad(
            """
            def make_worker(queue_names):
                async def drain_all():
                    for name in queue_names:
                        await purge(name)
                    print(name)
                return drain_all
            """,
            title="a nested function; the loop variable is read after the loop: no fix",
        ),
        bad(
            """
            async def poll(api, claims):
                statuses = []
                for claim in claims:
                    statuses.append(await api.status(claim))
                return [claim for claim, status in zip(claims, statuses) if status]
            """,
            fixed="""
            from auditlint.runtime import gather_bounded

            async def poll(api, claims):
                statuses = []
                statuses.extend(await gather_bounded(*(api.status(claim) for claim in claims), limit=10))
                return [claim for claim, status in zip(claims, statuses) if status]
            """,
            fix_style="runtime",
            title="a comprehension after the loop binds its own variable of the same name",
        ),
        bad(
            """
            async def sync_orgs(orgs):
                for org in orgs:
                    await sync_org(org)
                    for claim in org.claims:
                        await refresh_claim(claim)
            """,
            fixed="""
            from auditlint.runtime import gather_bounded

            async def sync_orgs(orgs):
                for org in orgs:
                    await sync_org(org)
                    await gather_bounded(*(refresh_claim(claim) for claim in org.claims), limit=10)
            """,
            count=2,
            fix_style="runtime",
            title="one finding per awaited call; a body of several statements is not fixed",
        ),
        bad(
            """
            async def check(hosts):
                for host in hosts:
                    if host.enabled:
                        await ping(host)
                    if host.name == "stop":
                        break
            """,
            title="a break that does not depend on an awaited result",
        ),
        ok(
            """
            async def all_pages(client):
                cursor = None
                pages = []
                for _ in range(100):
                    page = await client.fetch(cursor)
                    pages.append(page)
                    cursor = page.next_cursor
                return pages
            """,
            title="the next call needs the previous result",
        ),
        ok(
            """
            async def fold(values):
                acc = initial()
                for v in values:
                    acc = await merge(acc, v)
                return acc
            """,
            title="an accumulator read by the awaited call",
        ),
        ok(
            """
            async def crawl(urls):
                seen = set()
                for url in urls:
                    await visit(url, seen)
                    seen.add(url)
            """,
            title="an object the body changes and the call reads",
        ),
        ok(
            """
            async def first_free(names):
                for name in names:
                    if await is_free(name):
                        return name
                for name in names:
                    taken = await lookup(name)
                    if taken:
                        break
            """,
            title="return or break on an awaited result",
        ),
        ok(
            """
            import asyncpg
            async def insert_all(dsn, rows):
                conn = await asyncpg.connect(dsn)
                for row in rows:
                    await conn.execute("INSERT INTO t VALUES ($1)", row)
                for row in rows:
                    await insert_row(conn, row)
            """,
            title="one connection: calls on it must not overlap",
        ),
        ok(
            """
            import asyncio
            async def ordered(items, lock: asyncio.Lock, queue: asyncio.Queue, writer: asyncio.StreamWriter, ws):
                for item in items:
                    await queue.put(item)
                for item in items:
                    async with lock:
                        await handle(item)
                for item in items:
                    writer.write(item)
                    await writer.drain()
                for item in items:
                    await ws.send(item)
            """,
            title="a lock, a queue, a stream writer, a websocket",
        ),
        ok(
            """
            class Repo:
                def __init__(self, conn):
                    self.conn = conn
                async def save(self, item):
                    await self.conn.execute("INSERT ...", item)
                async def save_all(self, items):
                    for item in items:
                        await self.save(item)
            """,
            title="a method of this class that uses `self.conn`",
        ),
        ok(
            """
            import asyncio
            from asyncio import sleep
            async def polite(urls, client):
                for url in urls:
                    await client.get(url)
                    await asyncio.sleep(0.5)
                for url in urls:
                    await sleep(1)
            """,
            title="a sleep between calls: rate limiting",
        ),
        ok(
            """
            import asyncio
            async def consume(stream, fetch_all, client):
                async for msg in stream:
                    await handle(msg)
                while True:
                    await poll()
                for item in await fetch_all():
                    print(item)
                for task in [asyncio.create_task(job()) for _ in range(3)]:
                    await task
                for chunk in chunks:
                    await asyncio.gather(*(send(x) for x in chunk))
            """,
            title="`async for`, `while`, the iterable, awaiting tasks, batches",
        ),
        ok(
            """
            import aiohttp
            async def bodies(urls):
                async with aiohttp.ClientSession() as session:
                    for url in urls:
                        async with session.get(url) as resp:
                            print(await resp.text())
            """,
            title="an await that reads an earlier awaited value",
        ),
        ok(
            """
            async def dispatch(handlers, event, conn, rows):
                for handler in handlers:
                    await handler(event)
                async with conn.transaction():
                    for row in rows:
                        await insert(row)
            """,
            title="callbacks run in order; a loop inside a transaction",
        ),
        ok(
            """
            async def warm_up(n):
                for _ in range(n):
                    await ping_backend()
            """,
            title="the same call repeated: nothing differs between iterations",
        ),
        ok(
            """
            async def retry(call):
                for attempt in range(3):
                    try:
                        return await call()
                    except OSError:
                        continue
            """,
            title="a retry loop returns on success",
        ),
        ok(
            """
            async def notify_owner(members, owner_id):
                for member in members:
                    if member.id == owner_id:
                        await notify(member)
                        break
            """,
            title="an await that a `break` or `return` always follows runs once",
        ),
        ok(
            """
            async def start(self, sites, traces, apps, request):
                for site in sites:
                    await site.start()
                for trace in traces:
                    await trace.send_request_start(request)
                for app in apps:
                    await app.on_response_prepare.send(request)
                    if on_startup := app.on_startup:
                        await on_startup.send(app)
                for plugin in self.plugins:
                    await getattr(plugin, "pre_request")(request)
            """,
            title="lifecycle steps of each item; events told to listeners in order",
        ),
        ok(
            """
            async def write_parts(parts, writer):
                for part, encoding in parts:
                    await writer.write(b"--boundary")
                    w = PayloadWriter(writer, encoding)
                    await part.write(w)
                    await w.write_eof()
            """,
            title="a wrapper around one stream, built in each iteration",
        ),
        ok(
            """
            async def app(scope, receive, send):
                for chunk in chunks():
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            """,
            title="ASGI `send` and `receive` received as parameters: one channel",
        ),
        ok(
            """
            async def read_all(fields):
                for name, upload in fields:
                    data = await upload.read()
                    yield name, data
            """,
            title="a generator that yields each item as it is made",
        ),
        ok(
            """
            class CacheTests:
                async def test_set(self, cache):
                    for key, value in self.cases.items():
                        with self.subTest(key=key):
                            await cache.aset(key, value)
                    for name in ("get", "post"):
                        method = getattr(self.client, name)
                        await method("/redirect/")
            """,
            title="test cases under `subTest`; a callee picked per iteration",
        ),
        bad(
            """
            async def check_all(apps):
                for app in apps:
                    client = Communicator(app)
                    await client.send_input({"type": "http.request"})
                    await client.receive_output()
                    await client.wait()
            """,
            title="steps on one per-item object: only the first is reported",
        ),
        bad(
            """
            async def save_all(users):
                for user in users:
                    await user.save()
            """,
            fixed="""
            import asyncio

            async def save_all(users):
                _sem = asyncio.Semaphore(10)

                async def _bounded(aw):
                    async with _sem:
                        return await aw

                await asyncio.gather(*(_bounded(user.save()) for user in users))
            """,
            title="a method of each item that is not a lifecycle step",
        ),
    )

    def visit_Await(self, node: cst.Await, ctx: FileContext) -> None:
        if not ctx.loops:
            return
        loop = ctx.loops[-1]
        if isinstance(loop, (cst.While, cst.GeneratorExp)) or is_async_loop(loop):
            return
        call = node.expression
        if not isinstance(call, cst.Call):
            return
        if ctx.resolve_call_target(call.func) in _BATCHING or is_sleep(ctx, call):
            return
        facts = loop_facts(loop, ctx.cache)
        if isinstance(call.func, cst.Name) and call.func.value in facts.targets | facts.assigned:
            return  # `for handler in handlers: await handler(event)`: a chain run in order
        if _ordered_steps(call, facts):
            return
        if (
            isinstance(call.func, cst.Name)
            and call.func.value in _CHANNELS
            and ctx.param_of(call.func.value) is not None
        ):
            return  # ASGI's `await send({...})`: messages on one channel, in order
        per_item = facts.targets | facts.assigned
        if not any(isinstance(n, cst.Name) and n.value in per_item for n in (call, *iter_descendants(call))):
            return  # the same call each time (`for _ in range(3): await ping()`): a repetition
        if self._under_ordered_block(ctx) or leaves_loop_after(ctx.stack, loop):
            return  # ... or `if found: await notify(x); return` runs once
        if not self._independent(node, call, loop, facts, ctx):
            return
        text = ctx.code(call.func)
        text = text if len(text) <= 50 else text[:47] + "..."
        ctx.report(
            node,
            f"`await {text}(...)` in a loop runs one call at a time",
            self._fix(node, call, loop, facts, ctx),
        )

    # ---- detection ------------------------------------------------------------------------

    def _independent(
        self, node: cst.Await, call: cst.Call, loop: cst.CSTNode, facts: LoopFacts, ctx: FileContext
    ) -> bool:
        if not self._loop_allows(loop, facts, ctx):
            return False
        if facts.depends_on_earlier_iteration(call, contains_await) is not None:
            return False
        derived = facts.derived_names(contains_await, async_sources=True)
        for name in {n.value for n in (call, *iter_descendants(call)) if isinstance(n, cst.Name)} & derived:
            # A name the body sets from an await before this one: a later step of a chain
            # whose first await is reported. A loop variable is fresh unless rebound first.
            if name not in facts.targets or _rebound_before(loop, name, node):
                return False
        wrappers = self._wrappers(loop, facts, ctx)
        if wrappers and any(isinstance(n, cst.Name) and n.value in wrappers for n in iter_descendants(call)):
            return False
        if ordered_resource_in(ctx, call, facts.targets | facts.assigned) is not None:
            return False
        if _later_step(loop, call, node, facts):
            return False
        return all(shared_ordered_resource(ctx, fdef) is None for fdef in local_defs(ctx, call.func))

    def _wrappers(self, loop: cst.CSTNode, facts: LoopFacts, ctx: FileContext) -> frozenset[str]:
        """Names the body binds to a wrapper of a shared ordered resource (`w =
        PayloadWriter(writer)`): made in each iteration, but still that one stream."""
        key = ("AL201.wrappers", id(loop))
        found = ctx.cache.get(key)
        if isinstance(found, frozenset):
            return found
        fresh = facts.targets | facts.assigned
        names: set[str] = set()
        for part in repeated_nodes(loop):
            for n in (part, *iter_descendants(part, into_scopes=False)):
                if not (
                    isinstance(n, cst.Assign)
                    and len(n.targets) == 1
                    and isinstance(n.targets[0].target, cst.Name)
                    and isinstance(n.value, cst.Call)
                ):
                    continue
                for arg in n.value.args:
                    value = arg.value
                    if (
                        isinstance(value, (cst.Name, cst.Attribute))
                        and dotted_path(value) is not None
                        and str(dotted_path(value)).split(".", 1)[0] not in fresh
                        and ordered_resource(ctx, value, strong_only=True) is not None
                    ):
                        names.add(n.targets[0].target.value)
        result = frozenset(names)
        ctx.cache[key] = result
        return result

    def _loop_allows(self, loop: cst.CSTNode, facts: LoopFacts, ctx: FileContext) -> bool:
        """The checks that depend on the loop only, memoised per loop."""
        key = ("AL201.loop", id(loop))
        found = ctx.cache.get(key)
        if found is None:
            found = not (
                rate_limited(ctx, loop)
                or _yields(loop)
                or runs_subtests(loop)
                or facts.stops_early_on(contains_await, async_sources=True)
                or self._ordered_block(loop, ctx, facts.targets | facts.assigned)
            )
            ctx.cache[key] = found
        return bool(found)

    def _ordered_block(self, loop: cst.CSTNode, ctx: FileContext, fresh: frozenset[str]) -> bool:
        """A `with` block in the body holds a lock, a transaction or another ordered resource."""
        if not isinstance(loop, cst.For):
            return False
        return any(
            isinstance(n, cst.With) and _holds_ordered(ctx, n, fresh)
            for n in iter_descendants(loop.body, into_scopes=False)
        )

    def _under_ordered_block(self, ctx: FileContext) -> bool:
        """The loop runs inside a lock or a transaction of the same function: its calls are
        meant to run in that one critical section (and may use its connection implicitly)."""
        loop = ctx.loops[-1]
        key = ("AL201.withs", id(loop))
        found = ctx.cache.get(key)
        if found is None:
            found = any(_holds_ordered(ctx, w, frozenset()) for w in ctx.withs)
            ctx.cache[key] = found
        return bool(found)

    # ---- the fix --------------------------------------------------------------------------

    def _fix(
        self, node: cst.Await, call: cst.Call, loop: cst.CSTNode, facts: LoopFacts, ctx: FileContext
    ) -> Optional[Patch]:
        if not ctx.in_async_function or _has(call, (cst.Await, cst.Yield, cst.NamedExpr)):
            return None
        writer = BoundedGather(ctx, int(self.opts["max-concurrency"]))
        if isinstance(loop, (cst.ListComp, cst.SetComp)):
            return self._fix_comprehension(node, call, loop, writer, ctx)
        if (
            not isinstance(loop, cst.For)
            or loop.orelse is not None
            or not isinstance(loop.body, cst.IndentedBlock)
        ):
            return None
        targets = _names_of_target(loop.target)
        if targets is None:
            return None
        body = loop.body.body
        first = body[0] if body else None
        if not isinstance(first, cst.SimpleStatementLine) or len(first.body) != 1:
            return None
        small = first.body[0]
        if isinstance(small, cst.Assign) and small.value is node and len(body) > 1:
            return self._fix_assign(small, call, loop, body[1:], targets, facts, writer, ctx)
        if len(body) != 1 or self._read_after(ctx, loop, targets):
            return None
        clauses = f"for {ctx.code(loop.target)} in {ctx.code(loop.iter)}"
        gathered = writer.over_items(ctx.code(call), clauses)
        if isinstance(small, cst.Expr) and small.value is node:
            new = cst.parse_statement(f"await {gathered}\n")
            return self._patch(loop, [_keep_comments(loop, first, new)], writer)
        if (
            isinstance(small, cst.Expr)
            and isinstance(small.value, cst.Call)
            and isinstance(small.value.func, cst.Attribute)
            and small.value.func.attr.value == "append"
            and len(small.value.args) == 1
            and small.value.args[0].value is node
            and not small.value.args[0].keyword
            and not small.value.args[0].star
        ):
            receiver = small.value.func.value
            path = dotted_path(receiver)
            if path is None or path.split(".", 1)[0] in targets:
                return None
            reads = read_paths(call) | read_paths(loop.iter)
            if any(r == path or r.startswith(path + ".") or path.startswith(r + ".") for r in reads):
                return None
            new = cst.parse_statement(f"{ctx.code(receiver)}.extend(await {gathered})\n")
            return self._patch(loop, [_keep_comments(loop, first, new)], writer)
        return None

    def _patch(self, loop: cst.For, new: Sequence[cst.BaseStatement], writer: BoundedGather) -> Patch:
        return Patch.unsafe(
            {loop: writer.statements(loop, new)}, title=writer.title(), imports=writer.imports
        )

    def _read_after(self, ctx: FileContext, loop: cst.For, targets: list[str]) -> bool:
        """A loop variable is read outside the loop (it would keep the last item otherwise).
        A comprehension that binds the same name reads its own variable, not the loop's."""
        inside = {id(n) for n in iter_descendants(loop)}
        facts = ctx.facts()
        for name in targets:
            own = _comprehension_scoped(ctx.frames[-1].node, name)
            if any(id(read) not in inside and id(read) not in own for read in facts.reads(name)):
                return True
        return False

    def _fix_comprehension(
        self, node: cst.Await, call: cst.Call, comp: cst.BaseComp, writer: BoundedGather, ctx: FileContext
    ) -> Optional[Patch]:
        if not isinstance(comp, cst.ListComp) or comp.elt is not node:
            return None
        if any(_has(part, (cst.Await, cst.NamedExpr)) for part in _clause_parts(comp.for_in)):
            return None
        expr = cst.parse_expression(writer.over_items(ctx.code(call), ctx.code(comp.for_in).strip()))
        new: cst.BaseExpression = cst.Await(expression=expr)
        outer = ctx.stack[-3] if len(ctx.stack) >= 3 else None
        if not isinstance(outer, (cst.Assign, cst.AnnAssign, cst.Return, cst.Expr, cst.Arg, cst.Element)):
            new = new.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
        if writer.runtime:
            return Patch.unsafe({comp: new}, title=writer.title(), imports=writer.imports)
        stmt = ctx.statement()
        if not isinstance(stmt, cst.SimpleStatementLine):
            return None
        new_stmt = stmt.deep_replace(comp, new)
        assert isinstance(new_stmt, cst.SimpleStatementLine)
        return Patch.unsafe(
            {stmt: writer.statements(stmt, [new_stmt])}, title=writer.title(), imports=writer.imports
        )

    def _fix_assign(
        self,
        assign: cst.Assign,
        call: cst.Call,
        loop: cst.For,
        rest: Sequence[cst.BaseStatement],
        targets: list[str],
        facts: LoopFacts,
        writer: BoundedGather,
        ctx: FileContext,
    ) -> Optional[Patch]:
        """`for x in xs: r = await f(x); rest` -> `for x, r in zip(items, await gather): rest`."""
        if len(assign.targets) != 1 or not isinstance(assign.targets[0].target, cst.Name):
            return None
        result = assign.targets[0].target.value
        if result in targets:
            return None
        for stmt in rest:
            if _has(stmt, (cst.Await, cst.Yield, cst.Return, cst.Break, cst.With, cst.For, cst.While)):
                return None  # an inner loop's `break` is fine, but keep the proof simple
            if isinstance(stmt, (cst.FunctionDef, cst.ClassDef)):
                return None
        iter_reads = read_paths(loop.iter)
        changed = set(facts.mutations(contains_await)) | set(facts.assigned)
        if any(r == c or r.startswith(c + ".") or c.startswith(r + ".") for r in iter_reads for c in changed):
            return None
        statements: list[cst.BaseStatement] = []
        items = ctx.code(loop.iter)
        if not self._reiterable(ctx, loop.iter):
            name = "_items"
            taken = {n.value for n in iter_descendants(ctx.module) if isinstance(n, cst.Name)}
            n = 1
            while name in taken:
                n += 1
                name = f"_items{n}"
            statements.append(cst.parse_statement(f"{name} = list({items})\n"))
            items = name
        target = ctx.code(loop.target)
        if isinstance(loop.target, cst.Tuple) and not loop.target.lpar:
            target = f"({target})"
        gathered = writer.over_items(ctx.code(call), f"for {target} in {items}")
        header = cst.parse_statement(f"for {target}, {result} in zip({items}, await {gathered}):\n    pass\n")
        assert isinstance(header, cst.For) and isinstance(loop.body, cst.IndentedBlock)
        block = loop.body.with_changes(body=list(rest))
        first = loop.body.body[0]
        comment = first.trailing_whitespace.comment if isinstance(first, cst.SimpleStatementLine) else None
        if comment is not None and block.header.comment is None:
            # The comment of the `r = await f(x)` line moves to the loop header that runs f.
            block = block.with_changes(
                header=block.header.with_changes(whitespace=cst.SimpleWhitespace("  "), comment=comment)
            )
        statements.append(header.with_changes(body=block))
        return self._patch(loop, statements, writer)

    def _reiterable(self, ctx: FileContext, iterable: cst.BaseExpression) -> bool:
        """Evaluating `iterable` twice gives the same items: a literal or a local bound to a
        fresh list (not a generator or an iterator)."""
        if isinstance(iterable, (cst.List, cst.Tuple)):
            return fixed_size(ctx, iterable) and not _has(iterable, (cst.Call,))
        if isinstance(iterable, cst.Name):
            value = ctx.value_of(iterable)
            if isinstance(value, (cst.List, cst.Tuple, cst.ListComp)):
                return True
            if isinstance(value, cst.Call) and isinstance(value.func, cst.Name):
                return value.func.value in _REITERABLE_CALLS and ctx.binding_scope(value.func.value) is None
        return False


def _holds_ordered(ctx: FileContext, block: cst.With, fresh: frozenset[str]) -> bool:
    for item in block.items:
        expr = item.item
        if isinstance(expr, (cst.Name, cst.Attribute)) and ordered_resource(ctx, expr) is not None:
            return True
        if ordered_resource_in(ctx, expr, fresh) is not None:
            return True
    return False


def _keep_comments(loop: cst.For, body: cst.SimpleStatementLine, new: cst.BaseStatement) -> cst.BaseStatement:
    """`new` (which replaces `loop`) with the comments of the loop header and of its one body
    statement, so a `# noqa` or an explanation is not lost."""
    if not isinstance(new, cst.SimpleStatementLine) or not isinstance(loop.body, cst.IndentedBlock):
        return new
    comments = [line for line in body.leading_lines if line.comment is not None]
    header = loop.body.header.comment
    trailing = body.trailing_whitespace
    if header is not None:
        if trailing.comment is None:
            trailing = trailing.with_changes(whitespace=cst.SimpleWhitespace("  "), comment=header)
        else:
            comments.insert(0, cst.EmptyLine(comment=header))
    return new.with_changes(leading_lines=comments, trailing_whitespace=trailing)


def _later_step(loop: cst.CSTNode, call: cst.Call, node: cst.Await, facts: LoopFacts) -> bool:
    """An earlier await of the iteration used the same per-item object (`await c.send(x)`
    then `await c.receive()`): a later step of one conversation; the first is reported."""
    func = call.func
    if not isinstance(func, cst.Attribute):
        return False
    root = dotted_path(func.value)
    if root is None or root.split(".", 1)[0] not in facts.targets | facts.assigned:
        return False
    found = False

    def visit(n: cst.CSTNode) -> bool:
        nonlocal found
        if n is node:
            return True
        if isinstance(n, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            return False
        if (
            isinstance(n, cst.Await)
            and isinstance(n.expression, cst.Call)
            and isinstance(n.expression.func, cst.Attribute)
            and dotted_path(n.expression.func.value) == root
        ):
            found = True
        return any(visit(child) for child in iter_children(n))

    for part in repeated_nodes(loop):
        if visit(part):
            break
    return found


def _rebound_before(loop: cst.CSTNode, name: str, node: cst.CSTNode) -> bool:
    """Some assignment to `name` in the loop's repeated part completes before `node` starts
    (in source order, which is execution order within straight-line code)."""
    done = False

    def visit(n: cst.CSTNode) -> bool:
        nonlocal done
        if n is node:
            return True
        if isinstance(n, (cst.FunctionDef, cst.ClassDef, cst.Lambda)):
            return False
        for child in iter_children(n):
            if visit(child):
                return True
        if isinstance(n, (cst.Assign, cst.AugAssign, cst.AnnAssign, cst.NamedExpr, cst.WithItem, cst.For)):
            targets: list[cst.BaseExpression] = []
            if isinstance(n, cst.Assign):
                targets = [t.target for t in n.targets]
            elif isinstance(n, (cst.AugAssign, cst.AnnAssign, cst.NamedExpr, cst.For)):
                targets = [n.target]
            elif isinstance(n, cst.WithItem) and n.asname is not None:
                targets = [n.asname.name]
            if any(name in (_names_of_target(t) or []) for t in targets):
                done = True
        return False

    for part in repeated_nodes(loop):
        if visit(part):
            break
    return done


def _clause_parts(clause: Optional[cst.CompFor]) -> list[cst.CSTNode]:
    out: list[cst.CSTNode] = []
    while clause is not None:
        out.extend([clause.iter, *clause.ifs])
        clause = clause.inner_for_in
    return out


def _comprehension_scoped(scope: cst.CSTNode, name: str) -> set[int]:
    """Ids of the nodes of `scope` where `name` is a comprehension's own variable: everything in
    a comprehension one of whose `for` clauses binds it, except the first iterable (evaluated
    in the enclosing scope)."""
    out: set[int] = set()
    for node in iter_descendants(scope):
        if not isinstance(node, (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)):
            continue
        clause: Optional[cst.CompFor] = node.for_in
        binds = False
        while clause is not None:
            binds = binds or name in target_names(clause.target)
            clause = clause.inner_for_in
        if binds:
            first_iter = {id(n) for n in (node.for_in.iter, *iter_descendants(node.for_in.iter))}
            out.update(id(n) for n in iter_descendants(node) if id(n) not in first_iter)
    return out

