"""AL603 repeated-serialization: the same value serialised twice with nothing changed between."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional, Sequence

import libcst as cst

from auditlint.analysis.factories import is_literal
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
from auditlint.analysis.mutation import ScopeMutations, scope_mutations
from auditlint.context import FileContext
from auditlint.rule import Patch, Rule, bad, ok

if TYPE_CHECKING:
    from auditlint.rule import Replacement

_CONDITIONAL = (cst.ListComp, cst.SetComp, cst.GeneratorExp, cst.DictComp, cst.Lambda)


@dataclass
class _Seen:
    """A `dumps` call already visited in the current function."""

    call: JsonCall
    key: str
    stack: tuple[cst.CSTNode, ...]
    loops: tuple[cst.CSTNode, ...]


def _index(stack: Sequence[cst.CSTNode], node: cst.CSTNode) -> int:
    for i, item in enumerate(stack):
        if item is node:
            return i
    return -1


def _in_class_body(stack: Sequence[cst.CSTNode]) -> bool:
    for node in reversed(stack):
        if isinstance(node, (cst.FunctionDef, cst.Lambda)):
            return False
        if isinstance(node, cst.ClassDef):
            return True
    return False


def _statement_index(stack: Sequence[cst.CSTNode]) -> int:
    for at in range(len(stack) - 1, -1, -1):
        if isinstance(stack[at], (cst.SimpleStatementLine, cst.BaseCompoundStatement)):
            return at
    return -1


def _evaluated_unconditionally(path: Sequence[cst.CSTNode]) -> bool:
    """`path` runs from a simple statement down to a call: does running it always run the call?"""
    for parent, child in zip(path, path[1:]):
        if isinstance(parent, _CONDITIONAL):
            return False
        if isinstance(parent, cst.IfExp) and child is not parent.test:
            return False
        if isinstance(parent, cst.BooleanOperation) and child is parent.right:
            return False
    return not _in_target(path)


def _header_before(statement: cst.CSTNode, child: Sequence[cst.CSTNode]) -> list[cst.CSTNode]:
    """The part of `statement` that runs up to its `child` on the way to the second call: the
    header of an `if` or a `with` whose test or first item holds the call, else all of it."""
    if isinstance(statement, cst.With) and child and child[0] is statement.items[0]:
        return [statement.items[0]]
    if isinstance(statement, cst.If) and child and child[0] is statement.test:
        return [statement.test]
    return [statement]


def _in_target(path: Sequence[cst.CSTNode]) -> bool:
    """Does `path` (from a statement down) pass through an assignment target?"""
    for parent, child in zip(path, path[1:]):
        if isinstance(parent, cst.AssignTarget):
            return True
        if isinstance(parent, (cst.AugAssign, cst.AnnAssign)) and child is parent.target:
            return True
    return False


class RepeatedSerialization(Rule):
    """
    ## What it does
    Finds a value serialised again in the same function, with the same function and the same
    arguments, when nothing can have changed it since the first time — the audit's
    signature-then-body pattern:

    ```python
    headers = {"X-Signature": sign(json.dumps(payload))}
    requests.post(url, data=json.dumps(payload), headers=headers, timeout=5)
    ```

    `json.dumps` and its `orjson`, `ujson`, `simplejson` and `rapidjson` equivalents are
    recognised through any alias. The first call must always run before the second (an
    earlier statement of the same block, or earlier in the same statement, not under an
    `if`, a conditional expression or a comprehension), both in the same loop iteration,
    and the value must not change in between: no rebinding, method call, item or
    attribute assignment, `del`, augmented assignment, or call that could change it (the
    rules of AL602). The finding points at the second call; a third is reported too.

    Not reported: calls with different arguments (`indent=2` for a log and compact text for
    the wire are different serialisations), different libraries, calls in different
    branches, a second call in a loop the first is not in (that is AL602's case), and
    constants written in the code (`json.dumps("ok")` in two assertions).

    ## Why is this bad?
    Serialising is CPU work that grows with the payload; doing it twice doubles it for
    nothing. When the two texts are meant to be the same bytes (a signature and the body it
    signs) serialising twice also invites a mismatch as the code evolves.

    ## Example
    ```python
    import json

    def deliver(session, url, payload, sign):
        signature = sign(json.dumps(payload))
        return session.post(url, data=json.dumps(payload), headers={"X-Sig": signature})
    ```

    ## Use instead
    ```python
    import json

    def deliver(session, url, payload, sign):
        payload_json = json.dumps(payload)
        signature = sign(payload_json)
        return session.post(url, data=payload_json, headers={"X-Sig": signature})
    ```

    ## Fix safety
    The fix serialises once into a local and reuses it. When the first call is already the
    whole value of `name = json.dumps(...)`, that name is reused (if it is not rebound in
    between); otherwise a new local — a name that appears nowhere in the file — is assigned
    just before the statement of the first call. The fix is **safe**: the calls have
    identical arguments and the value has not changed, so the text is the same (strings and
    bytes are immutable). It is **unsafe** when the call has a `default=` or `cls=` hook,
    which could have side effects or depend on state. Both fix styles write the same
    standard-library code: a local is the shortest dependency-free form, and
    `auditlint.runtime.SerializedPayload` only pays off when one payload travels between
    functions, which a fix inside one function cannot see.

    ## Options
    None.
    """

    code = "AL603"
    name = "repeated-serialization"
    summary = "Same value serialised twice"
    triggers = ("dumps", ("ujson", "encode"))
    fix_safety = "safe"
    examples = (
        bad(
            """
            import json
            def deliver(session, url, payload, sign):
                signature = sign(json.dumps(payload))
                return session.post(url, data=json.dumps(payload), headers={"X-Sig": signature})
            """,
            fixed="""
            import json
            def deliver(session, url, payload, sign):
                payload_json = json.dumps(payload)
                signature = sign(payload_json)
                return session.post(url, data=payload_json, headers={"X-Sig": signature})
            """,
        ),
        bad(
            """
            import json
            def deliver(session, url, payload, sign):
                signature = sign(json.dumps(payload))
                return session.post(url, data=json.dumps(payload), headers={"X-Sig": signature})
            """,
            fixed="""
            import json
            def deliver(session, url, payload, sign):
                payload_json = json.dumps(payload)
                signature = sign(payload_json)
                return session.post(url, data=payload_json, headers={"X-Sig": signature})
            """,
            fix_style="runtime",
            title="runtime style writes the same fix",
        ),
        bad(
            """
            import json
            async def deliver(session, url, payload, sign):
                signature = sign(json.dumps(payload))
                async with session.post(url, data=json.dumps(payload), headers={"X-Sig": signature}) as r:
                    return await r.text()
            """,
            fixed="""
            import json
            async def deliver(session, url, payload, sign):
                payload_json = json.dumps(payload)
                signature = sign(payload_json)
                async with session.post(url, data=payload_json, headers={"X-Sig": signature}) as r:
                    return await r.text()
            """,
            title="aiohttp: the await comes after the body is serialised",
        ),
        bad(
            """
            import json
            async def deliver(client, url, payload, sign):
                signature = sign(json.dumps(payload))
                return await client.post(url, content=json.dumps(payload), headers={"X-Sig": signature})
            """,
            fixed="""
            import json
            async def deliver(client, url, payload, sign):
                payload_json = json.dumps(payload)
                signature = sign(payload_json)
                return await client.post(url, content=payload_json, headers={"X-Sig": signature})
            """,
            title="an await of the call that takes the text",
        ),
        bad(
            """
            import json
            def f(p, send, log):
                body = json.dumps(p, sort_keys=True)
                log(body)
                send(json.dumps(p, sort_keys=True))
            """,
            fixed="""
            import json
            def f(p, send, log):
                body = json.dumps(p, sort_keys=True)
                log(body)
                send(body)
            """,
            title="reuse the local that already holds the text",
        ),
        bad(
            """
            from orjson import dumps as to_bytes
            def f(p, send):
                return send(to_bytes(p), len(to_bytes(p)))
            """,
            fixed="""
            from orjson import dumps as to_bytes
            def f(p, send):
                p_json = to_bytes(p)
                return send(p_json, len(p_json))
            """,
            title="orjson, twice in one statement",
        ),
        bad(
            """
            import json
            class Webhook:
                def send(self, client):
                    client.headers["X-Digest"] = digest(json.dumps(self.event))
                    client.post(self.url, content=json.dumps(self.event))
            """,
            fixed="""
            import json
            class Webhook:
                def send(self, client):
                    event_json = json.dumps(self.event)
                    client.headers["X-Digest"] = digest(event_json)
                    client.post(self.url, content=event_json)
            """,
            title="a method; an unrelated attribute of another object is changed",
        ),
        bad(
            """
            import json
            def f(items, send):
                for item in items:
                    send(json.dumps(item))
                    print(json.dumps(item))
            """,
            fixed="""
            import json
            def f(items, send):
                for item in items:
                    item_json = json.dumps(item)
                    send(item_json)
                    print(item_json)
            """,
            title="both in the same loop iteration",
        ),
        bad(
            """
            import json
            def f(p, send):
                send(json.dumps(p, default=str))
                send(json.dumps(p, default=str))
            """,
            fixed="""
            import json
            def f(p, send):
                p_json = json.dumps(p, default=str)
                send(p_json)
                send(p_json)
            """,
            title="a default= hook: an unsafe fix",
        ),
        bad(
            """
            import json
            def f(p, a, b, c):
                a(json.dumps(p))
                b(json.dumps(p))
                c(json.dumps(p))
            """,
            fixed="""
            import json
            def f(p, a, b, c):
                p_json = json.dumps(p)
                a(p_json)
                b(p_json)
                c(p_json)
            """,
            count=2,
            title="three times",
        ),
        ok(
            """
            import json
            def f(p, send):
                send(json.dumps(p))
                p["sent"] = True
                send(json.dumps(p))
            """,
            title="changed in between",
        ),
        ok(
            """
            import json
            def f(p, send, touch):
                send(json.dumps(p))
                touch(p)
                send(json.dumps(p))
            """,
            title="passed to a call in between",
        ),
        ok(
            """
            import json
            def f(p, send):
                send(json.dumps(p))
                p.update(x=1)
                send(json.dumps(p))
            """,
            title="a method call in between",
        ),
        ok(
            """
            import json
            def f(p, q, send):
                send(json.dumps(p))
                p = q
                send(json.dumps(p))
            """,
            title="rebound in between",
        ),
        ok(
            """
            import json
            def f(p, log, send):
                log(json.dumps(p, indent=2))
                send(json.dumps(p))
            """,
            title="different arguments",
        ),
        ok(
            """
            import json
            import orjson
            def f(p, send):
                send(json.dumps(p))
                send(orjson.dumps(p))
            """,
            title="different libraries",
        ),
        ok(
            """
            import json
            def f(p, send, flag):
                if flag:
                    send(json.dumps(p))
                else:
                    send(json.dumps(p))
            """,
            title="different branches",
        ),
        ok(
            """
            import json
            def f(p, send, flag):
                if flag:
                    send(json.dumps(p))
                send(json.dumps(p))
            """,
            title="the first call is conditional",
        ),
        ok(
            """
            import json
            def f(p, send):
                send(json.dumps(p))
                def later():
                    return json.dumps(p)
                send(later)
            """,
            title="a nested function",
        ),
        ok(
            """
            import json
            def f(p, items, send):
                send(json.dumps(p))
                for item in items:
                    send(json.dumps(p))
            """,
            title="the second call is in a loop (AL602's case)",
        ),
        ok(
            """
            import json
            def f(send):
                send(json.dumps(make()))
                send(json.dumps(make()))
            """,
            title="a call in the argument",
        ),
        ok(
            """
            import json
            def a(p):
                return json.dumps(p)
            def b(p):
                return json.dumps(p)
            """,
            title="different functions",
        ),
        ok(
            """
            import json
            def test_text(resp):
                assert resp.text == json.dumps("ok")
                assert resp.body == json.dumps("ok").encode()
            """,
            title="a constant written in the code",
        ),
        ok(
            """
            import json
            async def f(p, send):
                await send(json.dumps(p))
                await send(json.dumps(p))
            """,
            title="an await between: another task may change a parameter",
        ),
        ok(
            """
            import json
            async def f(p, session, sign):
                signature = sign(json.dumps(p))
                async with session.get("/token") as r:
                    await session.post(data=json.dumps(p), headers={"X-Sig": signature})
            """,
            title="an async with entered before the second call",
        ),
    )

    def __init__(self, options: Optional[dict[str, object]] = None) -> None:
        super().__init__(options)
        self._seen: dict[int, list[_Seen]] = {}

    def visit_Call(self, node: cst.Call, ctx: FileContext) -> None:
        call = json_call(node, ctx)
        if call is None or call.kind != "dumps" or call.payload is None or _in_class_body(ctx.stack):
            return
        if is_literal(call.payload):
            return  # `json.dumps("ok")` in two assertions: a constant, not a payload
        seen = _Seen(call, call_key(call), tuple(ctx.stack), tuple(ctx.loops))
        earlier = self._seen.setdefault(id(ctx.frames[-1].node), [])
        same = [e for e in earlier if e.key == seen.key]
        earlier.append(seen)
        if not same:
            return
        mutations = scope_mutations(ctx.frames[-1].node, ctx, ctx.cache)
        if any(mutations.chains(arg.value) is None for arg in node.args):
            return
        for first in same:
            region = self._region(first, seen, mutations)
            if region is not None:
                ctx.report(
                    node,
                    f"`{display(node)}` repeats an earlier serialisation of `{display(call.payload)}`",
                    self._fix(first, seen, region, mutations, ctx),
                )
                return

    def _region(
        self, first: _Seen, second: _Seen, mutations: ScopeMutations
    ) -> Optional[list[cst.BaseStatement]]:
        """The statements from the first call's to the second's, when the first always runs
        before the second and nothing in between changes the arguments; else None."""
        if len(first.loops) != len(second.loops) or any(
            a is not b for a, b in zip(first.loops, second.loops)
        ):
            return None
        at = _statement_index(first.stack)
        if at < 1 or not isinstance(first.stack[at], cst.SimpleStatementLine):
            return None
        if not _evaluated_unconditionally(first.stack[at:]):
            return None
        block = first.stack[at - 1]
        if not isinstance(block, (cst.IndentedBlock, cst.Module)):
            return None
        if len(second.stack) <= at or second.stack[at - 1] is not block:
            return None
        if any(n is first.call.node for n in second.stack):
            return None
        body = list(block.body)
        start = _index(body, first.stack[at])
        end = _index(body, second.stack[at])
        if start < 0 or end < start:
            return None
        if end == start and _in_target(second.stack[at:]):
            return None  # targets are evaluated after the value: the order is not the source's
        region = body[start : end + 1]
        evaluated = [*region[:-1], *_header_before(region[-1], second.stack[at + 1 : at + 2])]
        if any(
            mutations.may_change(arg.value, evaluated, until=second.call.node) for arg in second.call.node.args
        ):
            return None
        return region

    def _fix(
        self,
        first: _Seen,
        second: _Seen,
        region: list[cst.BaseStatement],
        mutations: ScopeMutations,
        ctx: FileContext,
    ) -> Patch:
        make = Patch.unsafe if second.call.has_hooks else Patch.safe
        statement = region[0]
        assert isinstance(statement, (cst.SimpleStatementLine, cst.BaseCompoundStatement))
        held = assigned_name(statement)
        if held is not None and held[1] is first.call.node:
            name = held[0]
            if not mutations.rebound(name, region[1:]) and name not in mutations.facts.declared_outer:
                return make({second.call.node: cst.Name(name)}, title=f"Reuse `{name}`")
        name = fresh_local_name(local_name_base(first.call), ctx.frames[-1].node, ctx.module, ctx.cache)
        uses: list[cst.CSTNode] = [first.call.node]
        changes: dict[cst.CSTNode, Replacement] = {}
        if len(region) == 1:
            uses.append(second.call.node)
        else:
            changes[second.call.node] = cst.Name(name)
        changes[statement] = hoist_into_local(statement, name, first.call.node, uses)
        return make(changes, title=f"Serialise once into `{name}` and reuse it")
