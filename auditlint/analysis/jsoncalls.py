"""Which calls serialise or parse JSON: `json`, `orjson`, `ujson`, `simplejson` and `rapidjson`
`dumps`/`loads` reached through any import alias, plus the helpers the JSON rules share to
compare two calls and to name the local a fix introduces.

Names are resolved with the caller's resolver (`FileContext.qualname`), so `import json as j`,
`from json import dumps as d` and `import simplejson as json` are all recognised for what they
are, and a local that shadows the module is not.
"""

from __future__ import annotations

import ast
import keyword
import re
from dataclasses import dataclass
from typing import Any, Optional, Protocol, Union

import libcst as cst

#: Qualified callee -> (library, kind). `kind` is "dumps" (value to text; str, or bytes for
#: orjson) or "loads" (text to a new value).
JSON_FUNCTIONS: dict[str, tuple[str, str]] = {
    "json.dumps": ("json", "dumps"),
    "json.loads": ("json", "loads"),
    "simplejson.dumps": ("simplejson", "dumps"),
    "simplejson.loads": ("simplejson", "loads"),
    "orjson.dumps": ("orjson", "dumps"),
    "orjson.loads": ("orjson", "loads"),
    "ujson.dumps": ("ujson", "dumps"),
    "ujson.loads": ("ujson", "loads"),
    "ujson.encode": ("ujson", "dumps"),
    "ujson.decode": ("ujson", "loads"),
    "rapidjson.dumps": ("rapidjson", "dumps"),
    "rapidjson.loads": ("rapidjson", "loads"),
}

#: Keyword names of the payload when it is not passed positionally (json and simplejson only;
#: orjson's and ujson's first parameters are positional-only).
_PAYLOAD_KEYWORDS = {"dumps": ("obj",), "loads": ("s",)}

#: Options under which the call runs user code (hooks, encoder or decoder classes).
HOOK_KEYWORDS = frozenset(
    {
        "default",
        "cls",
        "object_hook",
        "object_pairs_hook",
        "parse_float",
        "parse_int",
        "parse_constant",
        "for_json",
        "iterable_as_array",
    }
)


class QualnameResolver(Protocol):
    """What the JSON analyses need from the file context."""

    def qualname(self, node: cst.CSTNode) -> Optional[str]: ...


@dataclass(frozen=True)
class JsonCall:
    """One recognised JSON call."""

    node: cst.Call
    qualname: str
    #: "json", "orjson", "ujson", "simplejson" or "rapidjson".
    library: str
    #: "dumps" or "loads".
    kind: str
    #: The value serialised or the text parsed; None when it cannot be told (`*args`).
    payload: Optional[cst.BaseExpression]
    #: Every argument other than the payload.
    options: tuple[cst.Arg, ...]

    @property
    def plain(self) -> bool:
        """Only the payload, no options: `json.loads(json.dumps(x))` in its simplest form."""
        return self.payload is not None and not self.options

    @property
    def has_hooks(self) -> bool:
        """The call may run user code: a hook option, or `*args`/`**kwargs` that may hold one."""
        return self.payload is None or any(
            a.star or (a.keyword is not None and a.keyword.value in HOOK_KEYWORDS) for a in self.options
        )

    @property
    def returns_immutable(self) -> bool:
        """`dumps` returns str (bytes for orjson): sharing the result can never be observed."""
        return self.kind == "dumps"


def json_call(node: cst.CSTNode, resolver: QualnameResolver) -> Optional[JsonCall]:
    """The JSON call `node` is, or None (also None for a callee that only looks like one)."""
    if not isinstance(node, cst.Call):
        return None
    qualname = resolver.qualname(node.func)
    if qualname is None:
        return None
    found = JSON_FUNCTIONS.get(qualname)
    if found is None:
        return None
    library, kind = found
    payload: Optional[cst.BaseExpression] = None
    options: list[cst.Arg] = []
    for arg in node.args:
        if payload is None and not arg.star and arg.keyword is None and not options:
            payload = arg.value
        elif (
            payload is None
            and arg.keyword is not None
            and library in ("json", "simplejson")
            and arg.keyword.value in _PAYLOAD_KEYWORDS[kind]
        ):
            payload = arg.value
        else:
            options.append(arg)
    if any(a.star for a in node.args):
        payload = None
    return JsonCall(node, qualname, library, kind, payload, tuple(options))


def is_json_callee(func: cst.BaseExpression, resolver: QualnameResolver) -> bool:
    """True when `func` names one of the JSON functions (used to tell harmless calls apart)."""
    name = resolver.qualname(func)
    return name is not None and name in JSON_FUNCTIONS


def expression_key(node: cst.CSTNode) -> str:
    """A layout-independent key of an expression: equal for `f(a,b)` and `f( a, b )`."""
    code = cst.Module([]).code_for_node(node)
    try:
        return ast.dump(ast.parse(f"(\n{code}\n)", mode="eval"))
    except SyntaxError:
        return code


def call_key(call: JsonCall) -> str:
    """Equal for two calls of the same function with the same arguments (keyword order aside)."""
    positional = [expression_key(a.value) for a in call.node.args if a.keyword is None]
    keywords = sorted(
        (a.keyword.value, expression_key(a.value)) for a in call.node.args if a.keyword is not None
    )
    return repr((call.qualname, positional, keywords))


def display(node: cst.CSTNode, limit: int = 40) -> str:
    """Short source text of a node for messages (one line, truncated)."""
    text = " ".join(cst.Module([]).code_for_node(node).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


_IDENT = re.compile(r"[^0-9a-zA-Z_]+")


def local_name_base(call: JsonCall) -> str:
    """A readable base for the local a fix introduces: `payload_json` for `json.dumps(payload)`,
    `template_data` for `json.loads(TEMPLATE)`."""
    stem = ""
    node: Any = call.payload
    while isinstance(node, (cst.Attribute, cst.Subscript)):
        if isinstance(node, cst.Attribute):
            stem = node.attr.value
            break
        element = node.slice[0].slice if len(node.slice) == 1 else None
        if isinstance(element, cst.Index) and isinstance(element.value, cst.SimpleString):
            stem = _IDENT.sub(
                "_", element.value.evaluated_value if isinstance(element.value.evaluated_value, str) else ""
            )
            break
        node = node.value
    if not stem and isinstance(node, cst.Name):
        stem = node.value
    stem = stem.strip("_").lower()
    if not stem or not stem.isidentifier() or stem[0].isdigit():
        stem = "payload" if call.kind == "dumps" else "parsed"
    suffix = "_json" if call.kind == "dumps" else "_data"
    if stem.endswith(suffix):
        suffix = ""
    return stem + suffix


def scope_identifiers(scope: cst.CSTNode, module: cst.Module, cache: dict[Any, Any]) -> set[str]:
    """Every identifier-like word in the source of `scope` (comments and strings included, to
    stay on the safe side), memoised in the file's cache."""
    key = ("jsoncalls.identifiers", id(scope))
    found = cache.get(key)
    if found is None:
        found = set(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", module.code_for_node(scope)))
        cache[key] = found
    assert isinstance(found, set)
    return found


def fresh_local_name(base: str, scope: cst.CSTNode, module: cst.Module, cache: dict[Any, Any]) -> str:
    """A name for a new local of `scope` (a function, or the module) that cannot clash.

    It appears nowhere in the scope's source, so it shadows nothing the scope reads and no
    nested function sees another variable of that name; at module level it appears nowhere in
    the file. Fixes of one pass are applied together, so no two of them in the same scope get
    the same name.
    """
    taken = scope_identifiers(scope, module, cache)
    handed_out: set[str] = cache.setdefault(("jsoncalls.handed_out", id(scope)), set())
    name = base
    n = 2
    while name in taken or name in handed_out or keyword.iskeyword(name):
        name = f"{base}_{n}"
        n += 1
    handed_out.add(name)
    return name


def assignment_line(name: str, value: cst.BaseExpression) -> cst.SimpleStatementLine:
    """`name = value` as a statement line."""
    return cst.SimpleStatementLine([cst.Assign([cst.AssignTarget(cst.Name(name))], value)])


def hoist_into_local(
    statement: Union[cst.SimpleStatementLine, cst.BaseCompoundStatement],
    name: str,
    value: cst.BaseExpression,
    uses: list[cst.CSTNode],
) -> cst.FlattenSentinel[cst.BaseStatement]:
    """`name = value` inserted before `statement`, with every node of `uses` inside the statement
    replaced by `name`. Blank lines and comments that led the statement now lead the new line,
    so the local sits right where the statement began."""
    new_statement: cst.CSTNode = statement
    for use in uses:
        new_statement = new_statement.deep_replace(use, cst.Name(name))
    assert isinstance(new_statement, (cst.SimpleStatementLine, cst.BaseCompoundStatement))
    line = assignment_line(name, value).with_changes(leading_lines=statement.leading_lines)
    return cst.FlattenSentinel([line, new_statement.with_changes(leading_lines=())])


def assigned_name(statement: cst.CSTNode) -> Optional[tuple[str, cst.BaseExpression]]:
    """(name, value) when `statement` is exactly `name = value` (one plain target)."""
    if (
        isinstance(statement, cst.SimpleStatementLine)
        and len(statement.body) == 1
        and isinstance(statement.body[0], cst.Assign)
        and len(statement.body[0].targets) == 1
        and isinstance(statement.body[0].targets[0].target, cst.Name)
    ):
        assign = statement.body[0]
        target = assign.targets[0].target
        assert isinstance(target, cst.Name)
        return target.value, assign.value
    return None
