"""AL602 json-in-loop: a JSON call in a loop that gives the same result on every iteration."""

from __future__ import annotations

from typing import Optional, Sequence

import libcst as cst

from auditlint.analysis.jsoncalls import (
    JsonCall,
    assigned_name,
    call_key,
    display,
    fresh_local_name,
    hoist_into_local,
    json_call,
    local_name_base,
)
from auditlint.analysis.loops import leaves_loop_after
from auditlint.analysis.mutation import ScopeMutations, loop_region, scope_mutations
from auditlint.analysis.walk import iter_descendants
from auditlint.context import FileContext
from auditlint.rule import Patch, Rule, bad, ok

_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp)
_EXITS = (cst.Continue, cst.Break, cst.Return, cst.Raise)


def _index(stack: Sequence[cst.CSTNode], node: cst.CSTNode) -> int:
    for i, item in enumerate(stack):
        if item is node:
            return i
    return -1


def _in_class_body(ctx: FileContext) -> bool:
    for node in reversed(ctx.stack):
        if isinstance(node, (cst.FunctionDef, cst.Lambda)):
            return False
        if isinstance(node, cst.ClassDef):
            return True
    return False


def _exits_early(statement: cst.CSTNode) -> bool:
    """A statement that may skip the rest of the iteration (`continue`, `break`, `return`, `raise`)."""
    return any(isinstance(n, _EXITS) for n in iter_descendants(statement, into_scopes=False))


def _runs_at_least_once(loop: cst.CSTNode) -> bool:
    """`while True:` / `while 1:`, or a `for` over a non-empty literal or `range(<positive>)`."""
    if isinstance(loop, cst.While):
        test = loop.test
        return (isinstance(test, cst.Name) and test.value == "True") or (
            isinstance(test, cst.Integer) and test.evaluated_value != 0
        )
    if not isinstance(loop, cst.For):
        return False
    it = loop.iter
    if isinstance(it, (cst.List, cst.Tuple, cst.Set)):
        return bool(it.elements)
    if (
        isinstance(it, cst.Call)
        and isinstance(it.func, cst.Name)
        and it.func.value == "range"
        and len(it.args) == 1
        and isinstance(it.args[0].value, cst.Integer)
    ):
        return it.args[0].value.evaluated_value > 0
    return False


def _json_literal(node: cst.BaseExpression) -> bool:
    """A literal `json.dumps` cannot fail on: strings, numbers, True/False/None, and lists,
    tuples and string-keyed dicts of those."""
    if isinstance(node, (cst.SimpleString, cst.ConcatenatedString, cst.Integer, cst.Float)):
        return True
    if isinstance(node, cst.Name):
        return node.value in ("True", "False", "None")
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        return isinstance(node.expression, (cst.Integer, cst.Float))
    if isinstance(node, (cst.List, cst.Tuple)):
        return all(isinstance(e, cst.Element) and _json_literal(e.value) for e in node.elements)
    if isinstance(node, cst.Dict):
        return all(
            isinstance(e, cst.DictElement)
            and isinstance(e.key, (cst.SimpleString, cst.ConcatenatedString))
            and _json_literal(e.value)
            for e in node.elements
        )
    return False


def _unconditional(path: Sequence[cst.CSTNode]) -> bool:
    """`path` runs from a loop down to a node: does the node run on every iteration?"""
    loop = path[0]
    for parent, child in zip(path, path[1:]):
        if isinstance(parent, (cst.For, cst.While)):
            if parent is not loop and not (isinstance(parent, cst.For) and child is parent.iter):
                return False
        elif isinstance(parent, cst.If) or isinstance(parent, cst.IfExp):
            if child is not parent.test:
                return False
        elif isinstance(parent, cst.BooleanOperation):
            if child is parent.right:
                return False
        elif isinstance(parent, _COMPREHENSIONS):
            if parent is not loop or parent.for_in.ifs or parent.for_in.inner_for_in is not None:
                if child is not parent.for_in:
                    return False
        elif isinstance(parent, cst.CompFor):
            if parent.inner_for_in is not None and child is parent.inner_for_in:
                return False
        elif isinstance(parent, (cst.IndentedBlock, cst.Module)):
            for statement in parent.body:
                if statement is child:
                    break
                if _exits_early(statement):
                    return False
        elif isinstance(parent, (cst.Try, cst.TryStar, cst.With, cst.Match, cst.Else, cst.Finally)):
            return False
    return True


class JsonInLoop(Rule):
    """
    ## What it does
    Finds `json.dumps` and `json.loads` calls (and their `orjson`, `ujson`, `simplejson`,
    `rapidjson` equivalents, through any alias) inside a loop — `for`, `while` or a
    comprehension — whose arguments are the same on every iteration: not the loop variable,
    not rebound in the loop, and not changed in it. A value counts as changed when the loop
    calls a method on it (other than read-only ones such as `get` or `items`), assigns or
    deletes an item or attribute of it, augments it, passes it (or anything that may alias it,
    such as `q = p["items"]`) to a call that could change it, or stores it somewhere. A global
    or module-level value counts as changed when the loop calls code that could reach it; a
    parameter or `self` attribute when the loop can `await` or `yield`, or when a `while`
    loop (polling) calls anything.

    The finding points at the JSON call. A call inside a nested function or lambda is not
    in the loop, nor is one that a `return`, `raise` or `break` always follows (it runs once
    per run of the loop); class bodies are not checked.

    ## Why is this bad?
    The same text is produced (or parsed) again on every iteration: CPU time that grows with
    the number of items, for a result that never changes — the audit's repeated
    `JSON.stringify` in hot paths.

    ## Example
    ```python
    import json
    import requests

    def notify(urls, event):
        for url in urls:
            requests.post(url, data=json.dumps(event), timeout=5)
    ```

    ## Use instead
    ```python
    import json
    import requests

    def notify(urls, event):
        event_json = json.dumps(event)
        for url in urls:
            requests.post(url, data=event_json, timeout=5)
    ```

    ## Fix safety
    The fix serialises (or parses) once into a new local just before the loop — a name that
    appears nowhere in the file — and uses it in the loop; when the statement just before
    the loop already holds the same call, its name is reused. Both fix styles write the same
    standard-library code.

    - `dumps` returns an immutable string (bytes for orjson), so sharing it is invisible. But
      the hoisted call also runs when the loop runs zero times, and for a value that cannot
      be serialised it then raises where the original did not. So the fix is **safe** when
      the call runs on every iteration and either the loop surely runs (`while True`, a
      non-empty literal, `range(3)`) or the argument is a JSON literal; when the statement
      before the loop already holds the same call, reusing its name is safe too. Otherwise
      it is **unsafe**, also when the call is conditional (under an `if`, after a `continue`,
      in a nested loop, in a comprehension with a filter, inside a `with` block): hoisted, it
      runs even when the loop would never have reached it.
    - A `loads` result is a new mutable object each time. It is hoisted only when the parsed
      value is never changed, stored, passed to unknown code, returned or yielded — through
      any alias — so one object can serve every iteration; otherwise the finding has no fix.
    - No fix for a call inside a `try` block within the loop (the error would leave the
      handler's reach), for calls with `default=`, `cls=` or other hooks (user code that may
      have side effects), or when the loop's own statement changes the value before the
      loop starts.


    ## Options
    None.
    """

    code = "AL602"
    name = "json-in-loop"
    summary = "JSON call with the same result on every loop iteration"
    triggers = ("dumps", "loads", "ujson")
    fix_safety = "safe"
    examples = (
        bad(
            """
            import json
            def notify(urls, event, post):
                for url in urls:
                    post(url, data=json.dumps(event))
            """,
            fixed="""
            import json
            def notify(urls, event, post):
                event_json = json.dumps(event)
                for url in urls:
                    post(url, data=event_json)
            """,
        ),
        bad(
            """
            import json
            def notify(urls, event, post):
                for url in urls:
                    post(url, data=json.dumps(event))
            """,
            fixed="""
            import json
            def notify(urls, event, post):
                event_json = json.dumps(event)
                for url in urls:
                    post(url, data=event_json)
            """,
            fix_style="runtime",
            title="runtime style writes the same fix",
        ),
        bad(
            """
            import orjson as oj
            def f(rows, meta):
                out = []
                for row in rows:
                    out.append((row, oj.dumps(meta)))
                return out
            """,
            fixed="""
            import orjson as oj
            def f(rows, meta):
                out = []
                meta_json = oj.dumps(meta)
                for row in rows:
                    out.append((row, meta_json))
                return out
            """,
            title="orjson through an alias; the result is bytes",
        ),
        bad(
            """
            from ujson import dumps as encode
            def f(rows, headers):
                return [(r, encode(headers)) for r in rows]
            """,
            fixed="""
            from ujson import dumps as encode
            def f(rows, headers):
                headers_json = encode(headers)
                return [(r, headers_json) for r in rows]
            """,
            title="a comprehension",
        ),
        bad(
            """
            import json
            def f(lines, RAW):
                total = 0
                for line in lines:
                    config = json.loads(RAW)
                    total += config["weight"] * len(line)
                return total
            """,
            fixed="""
            import json
            def f(lines, RAW):
                total = 0
                raw_data = json.loads(RAW)
                for line in lines:
                    config = raw_data
                    total += config["weight"] * len(line)
                return total
            """,
            title="a parse whose result is only read",
        ),
        bad(
            """
            import json
            def f(items, template):
                out = []
                for item in items:
                    row = json.loads(template)
                    row["id"] = item
                    out.append(row)
                return out
            """,
            title="a parse whose result is changed: reported, no fix",
        ),
        bad(
            """
            import json
            def f(items, p, send):
                for item in items:
                    if item:
                        send(json.dumps(p))
            """,
            fixed="""
            import json
            def f(items, p, send):
                p_json = json.dumps(p)
                for item in items:
                    if item:
                        send(p_json)
            """,
            title="conditional: an unsafe fix",
        ),
        bad(
            """
            import json
            class Notifier:
                def notify(self, send):
                    for url in self.urls:
                        send(url, json.dumps(self.payload))
            """,
            fixed="""
            import json
            class Notifier:
                def notify(self, send):
                    payload_json = json.dumps(self.payload)
                    for url in self.urls:
                        send(url, payload_json)
            """,
            title="a method serialising an attribute",
        ),
        bad(
            """
            import json
            def f(groups, p, send):
                for group in groups:
                    for x in group:
                        send(x, json.dumps(p, sort_keys=True))
            """,
            fixed="""
            import json
            def f(groups, p, send):
                p_json = json.dumps(p, sort_keys=True)
                for group in groups:
                    for x in group:
                        send(x, p_json)
            """,
            title="hoisted out of the outermost loop it does not depend on",
        ),
        bad(
            """
            import json
            def f(groups, send):
                for group in groups:
                    for x in group.items:
                        send(x, json.dumps(group.meta))
            """,
            fixed="""
            import json
            def f(groups, send):
                for group in groups:
                    meta_json = json.dumps(group.meta)
                    for x in group.items:
                        send(x, meta_json)
            """,
            title="invariant in the inner loop only",
        ),
        bad(
            """
            import json
            def f(items, p, send):
                for item in items:
                    try:
                        send(json.dumps(p))
                    except TypeError:
                        pass
            """,
            title="inside a try block in the loop: no fix",
        ),
        bad(
            """
            import json
            while True:
                print(json.dumps({"status": "ok"}))
            """,
            fixed="""
            import json
            payload_json = json.dumps({"status": "ok"})
            while True:
                print(payload_json)
            """,
            title="a literal payload at module level",
        ),
        ok(
            """
            import json
            def f(payloads, send):
                for p in payloads:
                    send(json.dumps(p))
            """,
            title="the loop variable",
        ),
        ok(
            """
            import json
            def f(rows, send):
                return [send(json.dumps(r)) for r in rows]
            """,
            title="the comprehension variable",
        ),
        ok(
            """
            import json
            def f(items, send):
                p = {}
                for item in items:
                    p = {"item": item}
                    send(json.dumps(p))
            """,
            title="rebound in the loop",
        ),
        ok(
            """
            import json
            def f(items, send):
                p = {"seen": []}
                for item in items:
                    p["seen"].append(item)
                    send(json.dumps(p))
            """,
            title="a method call on a part of it",
        ),
        ok(
            """
            import json
            def f(items, send):
                p = {}
                for item in items:
                    p[item] = True
                    send(json.dumps(p))
            """,
            title="item assignment",
        ),
        ok(
            """
            import json
            def f(items, send, state):
                for item in items:
                    state.count += 1
                    send(json.dumps(state))
            """,
            title="attribute augmented assignment",
        ),
        ok(
            """
            import json
            def f(items, send, update):
                p = {}
                for item in items:
                    update(p, item)
                    send(json.dumps(p))
            """,
            title="passed to a call that could change it",
        ),
        ok(
            """
            import json
            def f(items, send):
                p = {"children": []}
                children = p["children"]
                for item in items:
                    children.append(item)
                    send(json.dumps(p))
            """,
            title="changed through an alias",
        ),
        ok(
            """
            import json
            def f(items, send):
                p = {"n": 0}
                for item in items:
                    del p["n"]
                    send(json.dumps(p))
            """,
            title="del of an item",
        ),
        ok(
            """
            import json
            STATE = {}
            def f(items, send, process):
                for item in items:
                    process(item)
                    send(json.dumps(STATE))
            """,
            title="a global, and a call that could reach it",
        ),
        ok(
            """
            import json
            def f(items, send):
                for item in items:
                    send(json.dumps(item.payload()))
            """,
            title="a call in the argument",
        ),
        ok(
            """
            import json
            def f(items, send, p):
                for item in items:
                    def later():
                        return json.dumps(p)
                    send(later)
            """,
            title="a nested function is not in the loop",
        ),
        ok(
            """
            import json
            def find(items, target, cfg, raw):
                for item in items:
                    if item.id == target:
                        return json.dumps(cfg)
                for attempt in range(3):
                    try:
                        return json.loads(raw)
                    except ValueError:
                        pass
            """,
            title="a call followed by `return`, `raise` or `break` runs once per loop",
        ),
        bad(
            """
            import json
            def f(items, raw, send):
                for item in items:
                    cfg = json.loads(raw)
                    cfg["item"] = item
                    send(cfg)
            """,
            title="a parsed result changed in the loop: reported, not hoisted",
        ),
        ok(
            """
            import json
            async def f(items, send, p):
                for item in items:
                    await send(item)
                    print(json.dumps(p))
            """,
            title="an await lets other tasks change a parameter",
        ),
        ok(
            """
            import json
            import time
            class Reporter:
                def run(self, send):
                    while True:
                        send(json.dumps(self.state))
                        time.sleep(1)
            """,
            title="a polling loop: other threads change the state",
        ),
        ok(
            """
            import json
            def f(items, p, send):
                for item in items:
                    p = p.child
                    send(json.dumps(p))
            """
        ),
        ok(
            """
            import json
            def f(n, p, send):
                while n:
                    n, p = p.next, p.rest
                    send(json.dumps(p))
            """,
            title="tuple rebinding",
        ),
        ok(
            """
            def f(items, json, p):
                for item in items:
                    json.dumps(p)
            """,
            title="not the json module",
        ),
        ok(
            """
            import json
            def f(items, p, consume):
                consume((p["k"], json.dumps(p)) for _ in items)
            """,
            title="a generator's consumer runs between iterations and may change the value",
        ),
        bad(
            """
            import json
            async def record(repo, hooks, snapshot):
                await repo.save([(h, snapshot["id"], json.dumps(snapshot)) for h in hooks])
            """,
            title="the list goes to a call only once it is complete: reported; the statement passes the value on, so no fix",
        ),
    )

    def visit_Call(self, node: cst.Call, ctx: FileContext) -> None:
        if not ctx.loops:
            return
        call = json_call(node, ctx)
        if call is None or call.payload is None or _in_class_body(ctx):
            return
        mutations = scope_mutations(ctx.frames[-1].node, ctx, ctx.cache)
        stack = list(ctx.stack)
        for position, loop in enumerate(ctx.loops):
            polling = any(isinstance(inner, cst.While) for inner in ctx.loops[position:])
            locked = any(_index(stack, w) > _index(stack, loop) for w in ctx.withs)
            region = loop_region(loop)
            if not any(
                mutations.may_change(arg.value, region, strict_calls=polling or locked) for arg in node.args
            ):
                break
        else:
            return
        if leaves_loop_after(stack, loop):
            return  # `if found: return json.dumps(cfg)` runs once per run of the loop
        verb = "serialises the same value" if call.kind == "dumps" else "parses the same text"
        ctx.report(
            node,
            f"`{display(node)}` {verb} on every iteration",
            self._fix(call, loop, stack, mutations, ctx),
        )

    def _fix(
        self,
        call: JsonCall,
        loop: cst.CSTNode,
        stack: list[cst.CSTNode],
        mutations: ScopeMutations,
        ctx: FileContext,
    ) -> Optional[Patch]:
        node = call.node
        if call.has_hooks or (call.kind == "loads" and not mutations.result_is_private(node)):
            return None
        loop_at = _index(stack, loop)
        if any(_index(stack, t) > loop_at for t in ctx.trys):
            return None
        statement_at = self._statement_before(loop, loop_at, stack, ctx)
        if statement_at is None:
            return None
        statement = stack[statement_at]
        assert isinstance(statement, (cst.SimpleStatementLine, cst.BaseCompoundStatement))
        block = stack[statement_at - 1]
        if any(mutations.may_change(arg.value, [statement]) for arg in node.args):
            return None
        every_iteration = _unconditional(stack[loop_at:]) and not any(_index(stack, w) > loop_at for w in ctx.withs)
        reuse = self._reusable(call, statement, block, mutations, ctx)
        if reuse is not None:
            # The value is already computed before the loop: no call is added anywhere.
            make = Patch.safe if every_iteration else Patch.unsafe
            return make({node: cst.Name(reuse)}, title=f"Reuse `{reuse}`, computed before the loop")
        # A new call before the loop also runs when the loop runs zero times: safe only when
        # the loop surely runs or the call cannot raise.
        safe = every_iteration and (_runs_at_least_once(loop) or all(_json_literal(a.value) for a in node.args))
        make = Patch.safe if safe else Patch.unsafe
        name = fresh_local_name(local_name_base(call), ctx.frames[-1].node, ctx.module, ctx.cache)
        what = "Serialise" if call.kind == "dumps" else "Parse"
        return make(
            {statement: hoist_into_local(statement, name, node, [node])},
            title=f"{what} once before the loop into `{name}`",
        )

    def _statement_before(
        self, loop: cst.CSTNode, loop_at: int, stack: list[cst.CSTNode], ctx: FileContext
    ) -> Optional[int]:
        """Index in `stack` of the statement the hoisted line goes before, or None."""
        frame_at = _index(stack, ctx.frames[-1].node)
        at = loop_at
        while at > frame_at:
            node = stack[at]
            if isinstance(node, (cst.SimpleStatementSuite, cst.IndentedBlock)):
                return None
            if isinstance(node, (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
                if any(node is outer for outer in ctx.loops):
                    if node is not loop:
                        return None  # the comprehension sits in the header of an outer loop
                parent = stack[at - 1]
                return at if isinstance(parent, (cst.IndentedBlock, cst.Module)) else None
            at -= 1
        return None

    def _reusable(
        self,
        call: JsonCall,
        statement: cst.CSTNode,
        block: cst.CSTNode,
        mutations: ScopeMutations,
        ctx: FileContext,
    ) -> Optional[str]:
        """The local assigned the same call by the statement just before, still valid."""
        if not isinstance(block, (cst.IndentedBlock, cst.Module)):
            return None
        body = list(block.body)
        at = next((i for i, s in enumerate(body) if s is statement), 0)
        if at == 0:
            return None
        found = assigned_name(body[at - 1])
        if found is None:
            return None
        name, value = found
        previous = json_call(value, ctx)
        if previous is None or call_key(previous) != call_key(call):
            return None
        if mutations.rebound(name, [statement]) or name in mutations.facts.declared_outer:
            return None
        return name
