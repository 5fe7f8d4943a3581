"""AL401 http-without-timeout: HTTP and socket calls that can wait forever."""

from __future__ import annotations

import re
from typing import Optional

import libcst as cst

from auditlint.analysis.calls import (
    add_keyword,
    has_star_kwargs,
    is_none,
    keyword,
    literal_number,
    positionals,
    replace_keyword_value,
)
from auditlint.context import FileContext
from auditlint.rule import ImportSpec, Option, Patch, Rule, bad, ok

_VERBS = "get|options|head|post|put|patch|delete|request"
_REQUESTS_FN = re.compile(rf"^requests(?:\.api)?\.(?:{_VERBS})$")
_REQUESTS_SESSION = re.compile(rf"^requests(?:\.sessions)?\.(?:Session|session)\(\)\.(?:{_VERBS})$")
_URLLIB3_POOL_CALL = re.compile(
    r"^urllib3(?:\.poolmanager)?\.(?:PoolManager|ProxyManager)\(\)\."
    r"(?:request|urlopen|request_encode_url|request_encode_body)$"
)
_URLLIB3_POOL_CTOR = re.compile(
    r"^urllib3(?:\.connectionpool)?\.(?:HTTPConnectionPool|HTTPSConnectionPool|connection_from_url)$"
)

#: Callee -> index of the positional parameter that carries the timeout (None: keyword only).
_POSITIONAL_TIMEOUT: dict[str, Optional[int]] = {
    "urllib.request.urlopen": 2,
    "six.moves.urllib.request.urlopen": 2,
    "http.client.HTTPConnection": 2,
    "http.client.HTTPSConnection": None,
    "socket.create_connection": 1,
    "urllib3.request": None,
}


def _is_session_ctor(qualname: Optional[str]) -> bool:
    return qualname in ("aiohttp.ClientSession", "aiohttp.client.ClientSession")


class HttpWithoutTimeout(Rule):
    """
    ## What it does
    Finds HTTP and socket calls that can wait forever: `requests` calls (module functions and
    `Session` methods) without a `timeout`, `urllib.request.urlopen`, `http.client`
    connections, `socket.create_connection` and urllib3 pools built without one, and an explicit
    `timeout=None` (or an empty `aiohttp.ClientTimeout()`) anywhere it means "no limit".

    `requests`, urllib, `http.client` and urllib3 wait forever by default. httpx (5 s) and
    aiohttp (300 s per session) have defaults, so only an explicit `timeout=None` is reported
    for them; `aiohttp.ClientSession(timeout=None)` falls back to the 300 s default and is not
    reported.

    Names are resolved through imports and aliases (`import requests as r`,
    `from requests import get`), simple bindings in the same function
    (`s = requests.Session()`, `with requests.Session() as s`) and `self.session` assigned in
    the same class. A timeout given positionally counts; a call with `**kwargs` is not
    reported (the timeout may be in there); a pool built with a timeout
    (`urllib3.PoolManager(timeout=...)`) covers its calls; a session wrapped by a helper or
    built by a subclass is not followed.

    ## Why is this bad?
    When the server stops answering, the call blocks its thread or task forever. Under load
    the workers pile up on one slow dependency until the whole service hangs — the audit's
    "external API hangs: indefinite".

    ## Example
    ```python
    import requests

    def fetch_claim(claim_id):
        return requests.get(f"https://claims.example.com/{claim_id}").json()
    ```

    ## Use instead
    ```python
    import requests

    def fetch_claim(claim_id):
        return requests.get(f"https://claims.example.com/{claim_id}", timeout=10).json()
    ```

    ## Fix safety
    The fix adds `timeout=<timeout>` (or replaces `timeout=None`). It is **unsafe**: a slow call
    that used to succeed may now raise a timeout error. For aiohttp it writes
    `aiohttp.ClientTimeout(total=<timeout>)`.

    ## Options
    - `timeout` (float, default 10): the number of seconds the fix writes.
    """

    code = "AL401"
    name = "http-without-timeout"
    summary = "HTTP or socket call without a timeout"
    triggers = (
        "requests",
        "urlopen",
        "urllib3",
        "HTTPConnection",
        "HTTPSConnection",
        "create_connection",
        "httpx",
        "aiohttp",
    )
    fix_safety = "unsafe"
    options = (Option("timeout", "float", 10.0, "Seconds written by the fix."),)
    examples = (
        bad(
            """
            import requests
            requests.get("https://example.com")
            """,
            fixed="""
            import requests
            requests.get("https://example.com", timeout=10)
            """,
        ),
        bad(
            """
            import requests as r
            r.post("https://example.com", json={}, timeout=None)
            """,
            fixed="""
            import requests as r
            r.post("https://example.com", json={}, timeout=10)
            """,
        ),
        bad(
            """
            from requests import get
            def f(url):
                return get(url)
            """,
            fixed="""
            from requests import get
            def f(url):
                return get(url, timeout=10)
            """,
        ),
        bad(
            """
            import requests
            def f(url):
                s = requests.Session()
                return s.get(url)
            """,
            fixed="""
            import requests
            def f(url):
                s = requests.Session()
                return s.get(url, timeout=30)
            """,
            options={"timeout": 30},
        ),
        bad(
            """
            import requests
            def f(url):
                with requests.Session() as s:
                    return s.request("GET", url)
            """,
            fixed="""
            import requests
            def f(url):
                with requests.Session() as s:
                    return s.request("GET", url, timeout=10)
            """,
        ),
        bad(
            """
            import requests
            class Client:
                def __init__(self):
                    self.session = requests.Session()
                def fetch(self, url):
                    return self.session.get(url)
            """,
            fixed="""
            import requests
            class Client:
                def __init__(self):
                    self.session = requests.Session()
                def fetch(self, url):
                    return self.session.get(url, timeout=10)
            """,
        ),
        bad(
            """
            import requests
            def fetch(session: requests.Session, url):
                return session.get(url)
            """,
            fixed="""
            import requests
            def fetch(session: requests.Session, url):
                return session.get(url, timeout=10)
            """,
            title="a session received as an annotated parameter",
        ),
        bad(
            """
            from urllib.request import urlopen
            urlopen("https://example.com")
            """,
            fixed="""
            from urllib.request import urlopen
            urlopen("https://example.com", timeout=10)
            """,
        ),
        bad(
            """
            import http.client
            conn = http.client.HTTPSConnection("example.com")
            """,
            fixed="""
            import http.client
            conn = http.client.HTTPSConnection("example.com", timeout=10)
            """,
        ),
        bad(
            """
            import socket
            sock = socket.create_connection(("example.com", 80))
            """,
            fixed="""
            import socket
            sock = socket.create_connection(("example.com", 80), timeout=10)
            """,
        ),
        bad(
            """
            import urllib3
            http = urllib3.PoolManager()
            http.request("GET", "https://example.com")
            """,
            fixed="""
            import urllib3
            http = urllib3.PoolManager()
            http.request("GET", "https://example.com", timeout=10)
            """,
        ),
        bad(
            """
            import httpx
            httpx.get("https://example.com", timeout=None)
            """,
            fixed="""
            import httpx
            httpx.get("https://example.com", timeout=10)
            """,
        ),
        bad(
            """
            import aiohttp
            async def f(session: aiohttp.ClientSession):
                async with aiohttp.ClientSession() as s:
                    await s.get("https://example.com", timeout=None)
            """,
            fixed="""
            import aiohttp
            async def f(session: aiohttp.ClientSession):
                async with aiohttp.ClientSession() as s:
                    await s.get("https://example.com", timeout=aiohttp.ClientTimeout(total=10))
            """,
        ),
        bad(
            """
            import aiohttp
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout())
            """,
            fixed="""
            import aiohttp
            session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
            """,
        ),
        ok(
            """
            import requests
            requests.get("https://example.com", timeout=5)
            requests.post("https://example.com", timeout=(3.05, 27))
            """
        ),
        ok(
            """
            import requests
            def f(url, **kwargs):
                return requests.get(url, **kwargs)
            """,
            title="the timeout may be in **kwargs",
        ),
        ok(
            """
            import httpx
            import aiohttp
            httpx.get("https://example.com")
            async def f():
                async with aiohttp.ClientSession(timeout=None) as s:
                    await s.get("https://example.com")
            """,
            title="httpx and aiohttp have default timeouts",
        ),
        ok(
            """
            import requests
            def f(requests):
                return requests.get("https://example.com")
            """,
            title="a local that shadows the module",
        ),
        ok(
            """
            import urllib3
            http = urllib3.PoolManager(timeout=urllib3.Timeout(connect=2.0, read=7.0))
            http.request("GET", "https://example.com")
            """,
            title="a pool built with a timeout covers its calls",
        ),
        ok(
            """
            from urllib.request import urlopen
            import socket
            urlopen("https://example.com", None, 5)
            socket.create_connection(("example.com", 80), 5)
            """,
            title="positional timeouts",
        ),
        ok(
            """
            import functools
            import requests
            get = functools.partial(requests.get, timeout=5)
            get("https://example.com")
            """
        ),
        ok(
            """
            import requests
            class Api:
                def get(self, url):
                    return url
            Api().get("https://example.com")
            """
        ),
    )

    def visit_Call(self, node: cst.Call, ctx: FileContext) -> None:
        target = ctx.resolve_call_target(node.func) or self._annotated_method(node.func, ctx)
        if target is None or has_star_kwargs(node):
            return
        if _REQUESTS_FN.match(target) or _REQUESTS_SESSION.match(target):
            self._check(node, ctx, target, positional=None)
        elif target in _POSITIONAL_TIMEOUT:
            self._check(node, ctx, target, positional=_POSITIONAL_TIMEOUT[target])
        elif _URLLIB3_POOL_CALL.match(target):
            if not self._pool_has_timeout(node, ctx):
                self._check(node, ctx, target, positional=None)
        elif _URLLIB3_POOL_CTOR.match(target):
            self._check(node, ctx, target, positional=None)
        elif target.startswith("httpx."):
            self._check_explicit_none(node, ctx, target, aiohttp=False)
        elif target.startswith("aiohttp."):
            self._check_explicit_none(node, ctx, target, aiohttp=True)

    # ----------------------------------------------------------------------------------------

    @staticmethod
    def _annotated_method(func: cst.BaseExpression, ctx: FileContext) -> Optional[str]:
        """`s.get` where `s` is a parameter annotated `requests.Session` gives
        `requests.Session().get`: the annotation names the class of an instance."""
        if not isinstance(func, cst.Attribute):
            return None
        cls = ctx.annotated_type(func.value)
        return f"{cls}().{func.attr.value}" if cls else None

    def _display(self, node: cst.Call, ctx: FileContext) -> str:
        text = ctx.code(node.func)
        return text if len(text) <= 60 else text[:57] + "..."

    def _number(self) -> cst.BaseExpression:
        return literal_number(self.opts["timeout"])

    def _check(self, node: cst.Call, ctx: FileContext, target: str, positional: Optional[int]) -> None:
        arg = keyword(node, "timeout")
        if arg is not None:
            if is_none(arg.value):
                ctx.report(
                    node,
                    f"`timeout=None` lets `{self._display(node, ctx)}` wait forever",
                    self._replace_fix(node),
                )
            return
        if positional is not None and len(positionals(node)) > positional:
            value = positionals(node)[positional].value
            if is_none(value):
                ctx.report(node, f"A `None` timeout lets `{self._display(node, ctx)}` wait forever")
            return
        if target == "http.client.HTTPSConnection" and len(positionals(node)) > 2:
            return  # before 3.12 the timeout could be the fifth positional argument
        fix = Patch.unsafe(
            {node: add_keyword(node, "timeout", self._number())},
            title=f"Add `timeout={ctx.code(self._number())}`",
        )
        ctx.report(node, f"`{self._display(node, ctx)}` has no timeout", fix)

    def _replace_fix(self, node: cst.Call) -> Patch:
        number = self._number()
        return Patch.unsafe(
            {node: replace_keyword_value(node, "timeout", number)},
            title=f"Replace `timeout=None` with `timeout={cst.Module([]).code_for_node(number)}`",
        )

    def _check_explicit_none(self, node: cst.Call, ctx: FileContext, target: str, *, aiohttp: bool) -> None:
        arg = keyword(node, "timeout")
        if arg is None:
            return
        value = arg.value
        display = self._display(node, ctx)
        number = self._number()
        number_code = cst.Module([]).code_for_node(number)
        if is_none(value):
            if aiohttp and _is_session_ctor(target):
                return  # falls back to aiohttp's 300 s default
            if aiohttp:
                replacement: cst.BaseExpression = cst.parse_expression(
                    f"aiohttp.ClientTimeout(total={number_code})"
                )
                fix = Patch.unsafe(
                    {node: replace_keyword_value(node, "timeout", replacement)},
                    title=f"Use `aiohttp.ClientTimeout(total={number_code})`",
                    imports=[ImportSpec("aiohttp")],
                )
            else:
                fix = self._replace_fix(node)
            ctx.report(node, f"`timeout=None` lets `{display}` wait forever", fix)
            return
        if isinstance(value, cst.Call):
            inner = ctx.qualname(value.func)
            empty_aiohttp = inner in ("aiohttp.ClientTimeout", "aiohttp.client.ClientTimeout") and all(
                is_none(a.value) for a in value.args
            )
            empty_httpx = inner in ("httpx.Timeout",) and len(value.args) == 1 and is_none(value.args[0].value)
            if empty_aiohttp or empty_httpx:
                new_value = value.with_changes(
                    args=[
                        cst.Arg(
                            value=number,
                            keyword=cst.Name("total") if empty_aiohttp else None,
                            equal=cst.AssignEqual(
                                whitespace_before=cst.SimpleWhitespace(""),
                                whitespace_after=cst.SimpleWhitespace(""),
                            )
                            if empty_aiohttp
                            else cst.MaybeSentinel.DEFAULT,
                        )
                    ]
                )
                fix = Patch.unsafe(
                    {value: new_value},
                    title=f"Set a total timeout of {number_code} s",
                )
                ctx.report(node, f"An empty `{ctx.code(value.func)}` lets `{display}` wait forever", fix)

    def _pool_has_timeout(self, node: cst.Call, ctx: FileContext) -> bool:
        """True when the receiver's constructor call passes a timeout (or cannot be seen)."""
        func = node.func
        if not isinstance(func, cst.Attribute):
            return True
        receiver: Optional[cst.BaseExpression] = func.value
        for _ in range(4):
            if isinstance(receiver, cst.Call):
                return keyword(receiver, "timeout") is not None or has_star_kwargs(receiver)
            if receiver is None:
                return True
            receiver = ctx.value_of(receiver)
        return True
