"""AL601 json-round-trip: `json.loads(json.dumps(x))` used to copy a value."""

from __future__ import annotations

from typing import Optional

import libcst as cst

from auditlint.analysis.jsoncalls import JsonCall, display, json_call, scope_identifiers
from auditlint.analysis.walk import iter_descendants
from auditlint.context import FileContext
from auditlint.rule import ImportSpec, Patch, Rule, bad, ok


class JsonRoundTrip(Rule):
    """
    ## What it does
    Finds `json.loads(json.dumps(x))`: a value serialised to JSON text and parsed straight
    back, almost always to get a deep copy. The same for `orjson`, `ujson`, `simplejson` and
    `rapidjson`, through any import alias (`import json as j`, `from json import dumps as d`),
    and through a local that holds the text and is read only by the `loads`
    (`text = json.dumps(x)` then `json.loads(text)` in the same function and loop).

    Not reported: a `loads` with `object_hook=`, `parse_float=` or another hook, which
    converts the data rather than copying it; the reverse, `json.dumps(json.loads(s))`, which
    normalises text; two
    different libraries (`json.loads(orjson.dumps(x))`), which usually converts types on
    purpose; a `loads` inside a loop of a text serialised once before it (a prepared
    template).

    ## Why is this bad?
    Writing and re-parsing the whole structure as text is one of the slowest ways to copy it:
    every number and string is formatted and parsed again, under the GIL, on the request
    path — the audit's "Inefficient JSON parsing".

    ## Example
    ```python
    import json

    def snapshot(claim):
        return json.loads(json.dumps(claim))
    ```

    ## Use instead
    ```python
    from auditlint.runtime import json_clone

    def snapshot(claim):
        return json_clone(claim)
    ```

    `json_clone` copies dicts and lists and shares the immutable leaves. Measured with
    `benchmarks/bench_json_clone.py` (CPython 3.11), per copy:

    | payload | round trip | `copy.deepcopy` | `json_clone` |
    |---|---|---|---|
    | webhook event, 8 keys | 9.9 µs | 9.8 µs | 1.5 µs (6.6x, 6.4x) |
    | FHIR-like patient, ~60 nodes | 17.4 µs | 22.6 µs | 5.5 µs (3.1x, 4.1x) |
    | page of 50 claims | 663 µs | 1169 µs | 297 µs (2.2x, 3.9x) |
    | bundle of 500 patients | 6.6 ms | 12.4 ms | 3.3 ms (2.0x, 3.7x) |
    | 1000 floats | 420 µs | 276 µs | 50 µs (8.4x, 5.5x) |

    ## Fix safety
    The round trip is often a deliberate normalisation, so by default the rule only reports.
    With `fix-style = "runtime"` it offers an **unsafe** fix to `json_clone(x)`, only for a
    plain `json.loads(json.dumps(x))` (no options, no `default=`/`cls=` hooks; not for the
    other libraries, whose type conversions differ). `json_clone` gives the same result for
    JSON data, and like the round trip turns tuples and list/dict subclasses into lists and
    dicts, str/int/float subclasses (enums) into plain values, and non-str keys into strings
    (`1` -> `"1"`, `True` -> `"true"`, `None` -> `"null"`); it raises `TypeError` on sets and
    other objects json cannot encode. It differs in two corners: NaN and infinities pass
    through even where `allow_nan` rules would matter, and a structure that contains itself
    raises `RecursionError` instead of `ValueError`. `copy.deepcopy` is not offered: it keeps
    tuples, non-str keys and arbitrary objects, and was slower than the round trip on most
    payloads above. In `stdlib` style no fix is offered.

    ## Options
    None.
    """

    code = "AL601"
    name = "json-round-trip"
    summary = "JSON round trip used to copy a value"
    triggers = ("loads", ("ujson", "decode"))
    fix_safety = "unsafe"
    examples = (
        bad(
            """
            import json
            def snapshot(claim):
                return json.loads(json.dumps(claim))
            """
        ),
        bad(
            """
            import json
            def snapshot(claim):
                return json.loads(json.dumps(claim))
            """,
            fixed="""
            import json
            from auditlint.runtime import json_clone

            def snapshot(claim):
                return json_clone(claim)
            """,
            fix_style="runtime",
        ),
        bad(
            """
            import json as j
            copy = j.loads(j.dumps({"a": [1, 2]}))
            """,
            fixed="""
            import json as j
            from auditlint.runtime import json_clone

            copy = json_clone({"a": [1, 2]})
            """,
            fix_style="runtime",
            title="an alias of the module",
        ),
        bad(
            """
            from json import dumps as d, loads as l
            def f(x):
                return l(d(x))
            """,
            title="aliased functions",
        ),
        bad(
            """
            import orjson
            def f(x):
                return orjson.loads(orjson.dumps(x))
            """,
            fixed=None,
            fix_style="runtime",
            title="orjson: reported, never fixed",
        ),
        bad(
            """
            import ujson
            def f(x):
                return ujson.decode(ujson.encode(x))
            """,
            title="ujson's encode/decode names",
        ),
        bad(
            """
            import simplejson as json
            def f(x):
                return json.loads(json.dumps(x))
            """,
            title="simplejson imported as json",
        ),
        bad(
            """
            import json
            def f(x):
                return json.loads(json.dumps(x, default=str))
            """,
            fixed=None,
            fix_style="runtime",
            title="a default= hook: reported, not fixed",
        ),
        bad(
            """
            import json
            def f(x):
                text = json.dumps(x)
                return json.loads(text)
            """,
            fixed=None,
            fix_style="runtime",
            title="through a local read once",
        ),
        bad(
            """
            import json
            class Cache:
                def get(self, key):
                    return json.loads(json.dumps(self.items[key]))
            """,
            title="a method",
        ),
        ok(
            """
            import json
            def normalise(text):
                return json.dumps(json.loads(text))
            """,
            title="the reverse normalises text",
        ),
        ok(
            """
            import json
            from collections import namedtuple
            def to_objects(d):
                return json.loads(json.dumps(d), object_hook=lambda p: namedtuple("O", p.keys())(*p.values()))
            """,
            title="a parse hook converts the data: not a copy",
        ),
        ok(
            """
            import json
            import orjson
            def f(x):
                return json.loads(orjson.dumps(x))
            """,
            title="mixed libraries",
        ),
        ok(
            """
            import json
            import simplejson
            def f(x):
                return simplejson.loads(json.dumps(x))
            """,
            title="mixed libraries (json and simplejson)",
        ),
        ok(
            """
            import json
            def f(x):
                text = json.dumps(x)
                log(text)
                return json.loads(text)
            """,
            title="the text is also used on its own",
        ),
        ok(
            """
            import json
            def rows(template, n):
                text = json.dumps(template)
                return [json.loads(text) for _ in range(n)]
            """,
            title="a template serialised once, parsed per item",
        ),
        ok(
            """
            def f(json, x):
                return json.loads(json.dumps(x))
            """,
            title="a parameter that shadows the module",
        ),
        ok(
            """
            import json
            def f(x, s):
                return json.loads(s), json.dumps(x)
            """
        ),
    )

    def visit_Call(self, node: cst.Call, ctx: FileContext) -> None:
        outer = json_call(node, ctx)
        if outer is None or outer.kind != "loads" or outer.payload is None:
            return
        via_local = isinstance(outer.payload, cst.Name)
        inner_node = self._text_source(outer.payload, ctx) if via_local else outer.payload
        inner = json_call(inner_node, ctx) if inner_node is not None else None
        if inner is None or inner.kind != "dumps" or inner.payload is None or inner.library != outer.library:
            return
        if outer.has_hooks:
            return  # `object_hook=` and the like convert the data: not a copy
        message = (
            f"`{display(node.func)}({display(inner.node.func)}(...))` copies "
            f"`{display(inner.payload)}` through JSON text"
        )
        ctx.report(node, message, None if via_local else self._fix(outer, inner, ctx))

    def _text_source(self, name: cst.BaseExpression, ctx: FileContext) -> Optional[cst.BaseExpression]:
        """The `dumps` call a local holds, when it is bound once in this function, read only
        here, and bound in the same loop iteration as this read."""
        assert isinstance(name, cst.Name)
        scope = ctx.binding_scope(name.value)
        if scope is None or scope is not ctx.frames[-1].node:
            return None
        facts = ctx.facts(scope)
        bindings = facts.bindings.get(name.value, [])
        if len(bindings) != 1 or bindings[0].kind != "assign" or len(facts.reads(name.value)) != 1:
            return None
        if ctx.loops and not any(n is bindings[0].node for n in iter_descendants(ctx.loops[-1])):
            return None
        return bindings[0].value

    def _fix(self, outer: JsonCall, inner: JsonCall, ctx: FileContext) -> Optional[Patch]:
        if ctx.fix_style != "runtime" or outer.library != "json" or not (outer.plain and inner.plain):
            return None
        if (
            "json_clone" in scope_identifiers(ctx.module, ctx.module, ctx.cache)
            and ctx.resolve_name("json_clone") != "auditlint.runtime.json_clone"
        ):
            return None  # the name is taken by something else
        assert inner.payload is not None
        replacement = cst.Call(cst.Name("json_clone"), [cst.Arg(inner.payload)])
        return Patch.unsafe(
            {outer.node: replacement.with_changes(lpar=outer.node.lpar, rpar=outer.node.rpar)},
            title="Copy with `json_clone`",
            imports=[ImportSpec("auditlint.runtime", "json_clone")],
        )
