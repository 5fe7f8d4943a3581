"""AL501 import-time-singleton: clients, pools, engines and services built when a module is imported."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Optional, Sequence, Union

import libcst as cst

from auditlint.analysis.bindings import ScopeFacts, is_main_guard
from auditlint.analysis.factories import (
    CHEAP,
    KNOWN_FACTORIES,
    SETTINGS_FACTORIES,
    factory_trigger_words,
    has_role_suffix,
    has_strong_role_suffix,
    init_does_io,
    init_is_trivial,
    init_of,
    is_data_class,
    is_literal,
    is_settings_class,
    is_settings_name,
    matches,
)
from auditlint.analysis.structure import call_assignment_at_import
from auditlint.analysis.walk import iter_descendants
from auditlint.context import FileContext
from auditlint.rule import ImportSpec, Option, Patch, Rule, bad, ok

_LOCK = "_lazy_singletons_lock"
_LOCK_STATEMENT = f"{_LOCK} = threading.RLock()"
_ALLOWED_PARENTS = (
    cst.SimpleStatementLine,
    cst.IndentedBlock,
    cst.Else,
    cst.Try,
    cst.TryStar,
    cst.ExceptHandler,
    cst.ExceptStarHandler,
    cst.Finally,
)

AssignNode = Union[cst.Assign, cst.AnnAssign]


def _is_type_checking(test: cst.BaseExpression, ctx: FileContext) -> bool:
    if isinstance(test, cst.Name) and test.value == "TYPE_CHECKING":
        return True
    return ctx.qualname(test) in ("typing.TYPE_CHECKING", "typing_extensions.TYPE_CHECKING")


def _runs_at_import(ctx: FileContext) -> bool:
    """True when the node being visited is a module-level statement that runs on import: not in
    a function, class, loop or `with`, not under `if __name__ == "__main__"` or `if TYPE_CHECKING`."""
    stack = ctx.stack
    if not isinstance(stack[0], cst.Module):
        return False
    for node, child in zip(stack[1:-1], stack[2:]):
        if isinstance(node, cst.If):
            if child is node.body and (is_main_guard(node.test) or _is_type_checking(node.test, ctx)):
                return False
        elif not isinstance(node, _ALLOWED_PARENTS):
            return False
    return True


def _free_for(name: str, qualname: str, facts: ScopeFacts) -> bool:
    """`name` is unbound in the module, or bound only by an import of `qualname`."""
    found = facts.bindings.get(name)
    if not found:
        return True
    return facts.imports.get(name) == qualname and all(b.kind == "import" for b in found)


def _with_blank_lines(leading: Sequence[cst.EmptyLine], count: int) -> list[cst.EmptyLine]:
    lines = list(leading)
    blank = 0
    for line in lines:
        if line.comment is not None:
            break
        blank += 1
    return [cst.EmptyLine() for _ in range(max(0, count - blank))] + lines


class ImportTimeSingleton(Rule):
    """
    ## What it does
    Finds module-level assignments that build a client, pool, engine, connection or service
    when the module is imported:

    - known factories, resolved through imports and aliases: `redis.Redis`, `redis.from_url`,
      `sqlalchemy.create_engine`, `asyncpg.create_pool`, `psycopg_pool.ConnectionPool`,
      `boto3.client`, `requests.Session`, `httpx.Client`, `aiohttp.ClientSession`,
      `pymongo.MongoClient`, Kafka, Elasticsearch, gRPC channels, `multiprocessing.Pool` and
      more (one table in `auditlint/analysis/factories.py`);
    - a class of this project (defined in the same module, imported relatively, or from a
      package whose directory contains the file) whose name ends in `Controller`, `Service`,
      `Client`, `Repository`, `Manager`, `Pool`, `Engine`, `Session`, `Connection`, `Gateway`,
      `Producer`, `Consumer`, ...; or a class of the same module whose `__init__` connects,
      opens a file or socket, builds one of the factories above, or starts a thread, process or
      task.

    It stays silent inside `if __name__ == "__main__":`, `if TYPE_CHECKING:`, functions and
    classes, and for the conventional cheap module-level objects: loggers, `TypeVar`,
    `re.compile`, `namedtuple`, Enums, dataclass constants of literals, `APIRouter()`,
    `Blueprint(...)`, `Flask(__name__)`, `FastAPI()`, `sessionmaker(...)` and settings objects
    (pydantic `BaseSettings` subclasses, classes named `*Settings`/`*Config`, `environ.Env()`,
    `Dynaconf(...)`). A same-module `*Manager` class with no base class and an `__init__`
    that only stores values is a cheap registry and not reported, and so is a class that
    extends a third-party class that is neither a known factory nor named for a role (`class
    WorkersPool(click.Choice)`); a third-party class is judged by the
    factory table only (`LoginManager()` of flask-login is not a service).

    ## Why is this bad?
    The object is built as a side effect of `import`: start-up is slow and does I/O, tests
    cannot configure or replace it before it exists, and its sockets are shared by every
    process forked after import (gunicorn `--preload`, Celery prefork, multiprocessing), where
    two processes talking over one connection corrupt each other's replies. It is the audit's
    `module.exports = new PatientController()`.

    ## Example
    ```python
    import redis

    cache = redis.Redis(host="cache.internal")
    ```

    ## Use instead
    ```python
    from auditlint.runtime import lazy
    import redis

    cache = lazy(redis.Redis, host="cache.internal")
    ```
    or, without a dependency, an accessor behind the module's `__getattr__` (PEP 562), which
    builds the object on first use, once per process, under a lock:
    ```python
    import functools
    import os
    import threading

    import redis

    _lazy_singletons_lock = threading.RLock()


    # Built on first use, once per process: a forked child builds its own.
    @functools.cache
    def _get_cache(pid):
        return redis.Redis(host="cache.internal")


    def __getattr__(name):
        if name == "cache":
            with _lazy_singletons_lock:
                return _get_cache(os.getpid())
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    ```

    ## Fix safety
    Both fixes are **unsafe**. With `fix-style = "runtime"` the value becomes
    `lazy(Factory, *args, **kwargs)`: the arguments are still evaluated at import, the object is
    built on first use (once, also under threads) and again in a forked child; `isinstance`,
    `type()` and `is` see the proxy (`auditlint.runtime.resolve(name)` gives the object).
    The standard-library fix is offered only when nothing in the module reads the name (it is
    used through `module.name` or `from module import name`, which PEP 562 serves) and the
    assignment is a plain top-level statement: it moves the call, arguments included, into a
    `functools.cache`d accessor keyed by the process id and adds the name to the module's
    `__getattr__` (extending an existing one). `from module import *` without an `__all__`
    no longer exports the name, and with `__all__` a star import builds the object. Factories
    whose result must be awaited before use (`asyncpg.create_pool`) are reported without a fix.

    ## Options
    - `extend-factories` (list of str, default `[]`): more qualified callees to report, such as
      `"myapp.db.make_pool"`; `"myapp.clients.*"` matches everything under a prefix. The file
      must also contain one of the rule's trigger words (a factory name, a role word such as
      `Client` or `pool` in either case, or `__init__`) to be looked at.
    - `extend-allowed` (list of str, default `[]`): qualified callees (or same-module class
      names) never to report, for cheap objects the rule would otherwise flag.
    - `report-settings` (bool, default false): also report settings objects built from the
      environment at import.
    """

    code = "AL501"
    name = "import-time-singleton"
    summary = "Client, pool or service built at import time"
    triggers = factory_trigger_words()
    structure = call_assignment_at_import
    fix_safety = "unsafe"
    options = (
        Option("extend-factories", "list[str]", (), "More qualified callees that build clients or pools."),
        Option("extend-allowed", "list[str]", (), "Qualified callees or class names never reported."),
        Option("report-settings", "bool", False, "Also report settings objects built from the environment."),
    )
    examples = (
        bad(
            """
            import redis

            cache = redis.Redis(host="localhost")
            """,
            fixed="""
            import redis
            import functools
            import os
            import threading

            _lazy_singletons_lock = threading.RLock()


            # Built on first use, once per process: a forked child builds its own.
            @functools.cache
            def _get_cache(pid):
                return redis.Redis(host="localhost")


            def __getattr__(name):
                if name == "cache":
                    with _lazy_singletons_lock:
                        return _get_cache(os.getpid())
                raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
            """,
        ),
        bad(
            """
            import redis

            cache = redis.Redis(host="localhost")
            """,
            fixed="""
            import redis
            from auditlint.runtime import lazy

            cache = lazy(redis.Redis, host="localhost")
            """,
            fix_style="runtime",
        ),
        bad(
            """
            from redis import Redis

            client = Redis.from_url("redis://localhost/0")

            def get(key):
                return client.get(key)
            """,
            title="the name is read in the module: no stdlib fix",
        ),
        bad(
            """
            from redis import Redis

            client = Redis.from_url("redis://localhost/0")

            def get(key):
                return client.get(key)
            """,
            fixed="""
            from redis import Redis
            from auditlint.runtime import lazy

            client = lazy(Redis.from_url, "redis://localhost/0")

            def get(key):
                return client.get(key)
            """,
            fix_style="runtime",
        ),
        bad(
            """
            import sqlalchemy as sa
            from sqlalchemy.orm import sessionmaker

            engine = sa.create_engine("postgresql://db/app", pool_size=5)
            SessionLocal = sessionmaker(bind=engine)
            """,
            fixed="""
            import sqlalchemy as sa
            from sqlalchemy.orm import sessionmaker
            from auditlint.runtime import lazy

            engine = lazy(sa.create_engine, "postgresql://db/app", pool_size=5)
            SessionLocal = sessionmaker(bind=engine)
            """,
            fix_style="runtime",
        ),
        bad(
            """
            import asyncpg

            pool = asyncpg.create_pool("postgresql://db/app")
            """,
            fix_style="runtime",
            title="an awaitable pool: report only",
        ),
        bad(
            """
            import boto3
            import requests
            import httpx
            import pymongo

            s3 = boto3.client("s3")
            http = requests.Session()
            api: httpx.Client = httpx.Client(base_url="https://api.example.com")
            mongo = pymongo.MongoClient("mongodb://db")
            """,
            fixed="""
            import boto3
            import requests
            import httpx
            import pymongo
            from auditlint.runtime import lazy

            s3 = lazy(boto3.client, "s3")
            http = lazy(requests.Session)
            api: httpx.Client = lazy(httpx.Client, base_url="https://api.example.com")
            mongo = lazy(pymongo.MongoClient, "mongodb://db")
            """,
            count=4,
            fix_style="runtime",
        ),
        bad(
            """
            import httpx

            api: httpx.Client = httpx.Client(
                base_url="https://api.example.com",
                timeout=5,
            )  # shared by all handlers
            """,
            fixed="""
            import httpx
            import functools
            import os
            import threading

            _lazy_singletons_lock = threading.RLock()


            # Built on first use, once per process: a forked child builds its own.
            @functools.cache
            def _get_api(pid) -> httpx.Client:
                return httpx.Client(
                    base_url="https://api.example.com",
                    timeout=5,
                )  # shared by all handlers


            def __getattr__(name):
                if name == "api":
                    with _lazy_singletons_lock:
                        return _get_api(os.getpid())
                raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
            """,
        ),
        bad(
            """
            from redis import Redis
            from pymongo import MongoClient

            cache = Redis()
            db = MongoClient()
            """,
            fixed="""
            from redis import Redis
            from pymongo import MongoClient
            import functools
            import os
            import threading

            _lazy_singletons_lock = threading.RLock()


            # Built on first use, once per process: a forked child builds its own.
            @functools.cache
            def _get_cache(pid):
                return Redis()


            # Built on first use, once per process: a forked child builds its own.
            @functools.cache
            def _get_db(pid):
                return MongoClient()


            def __getattr__(name):
                if name == "db":
                    with _lazy_singletons_lock:
                        return _get_db(os.getpid())
                if name == "cache":
                    with _lazy_singletons_lock:
                        return _get_cache(os.getpid())
                raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
            """,
            count=2,
            title="two singletons share one __getattr__",
        ),
        bad(
            '''
            import redis

            cache = redis.Redis()

            def __getattr__(attr):
                """Deprecated names."""
                if attr == "old_cache":
                    return None
                raise AttributeError(attr)
            ''',
            fixed='''
            import redis
            import functools
            import os
            import threading

            _lazy_singletons_lock = threading.RLock()


            # Built on first use, once per process: a forked child builds its own.
            @functools.cache
            def _get_cache(pid):
                return redis.Redis()

            def __getattr__(attr):
                """Deprecated names."""
                if attr == "cache":
                    with _lazy_singletons_lock:
                        return _get_cache(os.getpid())
                if attr == "old_cache":
                    return None
                raise AttributeError(attr)
            ''',
            title="an existing module __getattr__ is extended",
        ),
        bad(
            """
            import socket

            class Mailer:
                def __init__(self, host):
                    self.sock = socket.create_connection((host, 25), timeout=5)

            mailer = Mailer("smtp.internal")
            """,
            fixed="""
            import socket
            from auditlint.runtime import lazy

            class Mailer:
                def __init__(self, host):
                    self.sock = socket.create_connection((host, 25), timeout=5)

            mailer = lazy(Mailer, "smtp.internal")
            """,
            fix_style="runtime",
            title="a same-module class whose __init__ connects",
        ),
        bad(
            """
            import threading

            class Refresher:
                def __init__(self):
                    self.thread = threading.Thread(target=self.run, daemon=True)
                    self.thread.start()

                def run(self):
                    pass

            refresher = Refresher()
            """,
            fixed="""
            import threading
            import functools
            import os

            _lazy_singletons_lock = threading.RLock()

            class Refresher:
                def __init__(self):
                    self.thread = threading.Thread(target=self.run, daemon=True)
                    self.thread.start()

                def run(self):
                    pass


            # Built on first use, once per process: a forked child builds its own.
            @functools.cache
            def _get_refresher(pid):
                return Refresher()


            def __getattr__(name):
                if name == "refresher":
                    with _lazy_singletons_lock:
                        return _get_refresher(os.getpid())
                raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
            """,
            title="an __init__ that starts a thread",
        ),
        bad(
            """
            from .services import PatientService

            class PatientController:
                def __init__(self):
                    self.service = PatientService()

            patient_controller = PatientController()
            patient_service = PatientService()
            """,
            fixed="""
            from .services import PatientService
            from auditlint.runtime import lazy

            class PatientController:
                def __init__(self):
                    self.service = PatientService()

            patient_controller = lazy(PatientController)
            patient_service = lazy(PatientService)
            """,
            fix_style="runtime",
            count=2,
            title="project classes by role name (the audit's `new PatientController()`)",
        ),
        bad(
            """
            class BillingService:
                def charge(self, amount):
                    return amount

            billing: BillingService = BillingService()
            """,
            fixed="""
            from auditlint.runtime import lazy

            class BillingService:
                def charge(self, amount):
                    return amount

            billing: BillingService = lazy(BillingService)
            """,
            fix_style="runtime",
            title="a role name is enough, whatever `__init__` does; an annotated assignment",
        ),
        bad(
            """
            import redis

            try:
                cache = redis.Redis()
            except ImportError:
                cache = None
            """,
            title="in a module-level try: reported, no stdlib fix",
        ),
        bad(
            """
            import os

            if os.environ.get("USE_CACHE"):
                from redis import Redis as R
                cache = R()
            """,
            title="import alias inside a module-level if",
        ),
        bad(
            """
            from myapp.db import make_pool

            pool = make_pool()
            """,
            options={"extend-factories": ["myapp.db.*"]},
            fixed="""
            from myapp.db import make_pool
            from auditlint.runtime import lazy

            pool = lazy(make_pool)
            """,
            fix_style="runtime",
        ),
        bad(
            """
            from pydantic_settings import BaseSettings

            class AppSettings(BaseSettings):
                database_url: str = "sqlite://"

            settings = AppSettings()
            """,
            fixed="""
            from pydantic_settings import BaseSettings
            from auditlint.runtime import lazy

            class AppSettings(BaseSettings):
                database_url: str = "sqlite://"

            settings = lazy(AppSettings)
            """,
            fix_style="runtime",
            options={"report-settings": True},
            title="settings reported when asked to",
        ),
        ok(
            """
            import redis

            def main():
                client = redis.Redis()
                client.ping()

            class Cache:
                client = redis.Redis()

            if __name__ == "__main__":
                client = redis.Redis()
            """,
            title="functions, class bodies and the main guard",
        ),
        ok(
            """
            import logging
            import re
            from collections import namedtuple
            from dataclasses import dataclass
            from enum import Enum
            from typing import TypeVar

            from fastapi import APIRouter, FastAPI
            from flask import Blueprint, Flask

            logger = logging.getLogger(__name__)
            T = TypeVar("T")
            WORD = re.compile(r"\\w+")
            Point = namedtuple("Point", "x y")
            Color = Enum("Color", "RED GREEN")

            class Level(Enum):
                LOW = 1

            @dataclass(frozen=True)
            class RetryPolicy:
                attempts: int
                backoff: float

            DEFAULT_RETRY = RetryPolicy(3, 0.5)
            DEFAULT_LEVEL = Level(1)
            router = APIRouter()
            api = FastAPI()
            bp = Blueprint("claims", __name__)
            app = Flask(__name__)
            """,
            title="conventional cheap module-level objects",
        ),
        ok(
            """
            from pydantic_settings import BaseSettings
            import environ

            class Settings(BaseSettings):
                database_url: str = "sqlite://"

            settings = Settings()
            env = environ.Env()
            """,
            title="settings objects built from the environment",
        ),
        ok(
            """
            from typing import TYPE_CHECKING

            if TYPE_CHECKING:
                import redis
                cache = redis.Redis()
            """
        ),
        ok(
            """
            from flask_login import LoginManager
            from sqlalchemy.orm import sessionmaker

            login_manager = LoginManager()
            Session = sessionmaker()
            """,
            title="third-party classes are judged by the factory table only",
        ),
        ok(
            """
            class EventManager:
                def __init__(self):
                    self.handlers = []

            events = EventManager()
            """,
            title="a `*Manager` class of the project with a trivial __init__",
        ),
        ok(
            """
            import click
            from django.db import models

            class WorkersPool(click.Choice):
                def __init__(self):
                    super().__init__(["prefork", "threads"])

            class ActiveManager(models.Manager):
                pass

            WORKERS_POOL = WorkersPool()
            active = ActiveManager()
            """,
            title="a role name on a subclass of a third-party class that is no service",
        ),
        ok(
            """
            import redis
            from auditlint.runtime import lazy

            cache = lazy(redis.Redis, host="localhost")
            """,
            title="already lazy",
        ),
        ok(
            """
            import redis

            cache = redis.Redis()
            """,
            options={"extend-allowed": ["redis.Redis"]},
        ),
        ok(
            """
            class Redis:
                pass

            r = Redis()
            """,
            title="a local class named like a factory",
        ),
    )

    def __init__(self, options: Optional[dict[str, Any]] = None) -> None:
        super().__init__(options)
        self._classes: Optional[dict[str, cst.ClassDef]] = None
        self._roles: dict[str, bool] = {}

    # ---- detection ---------------------------------------------------------------------------

    def visit_Assign(self, node: cst.Assign, ctx: FileContext) -> None:
        if not isinstance(node.value, cst.Call) or ctx.function is not None or ctx.class_ is not None:
            return
        names = [t.target for t in node.targets]
        if not all(isinstance(n, cst.Name) for n in names) or not _runs_at_import(ctx):
            return
        self._check(node, node.value, [n.value for n in names if isinstance(n, cst.Name)], None, ctx)

    def visit_AnnAssign(self, node: cst.AnnAssign, ctx: FileContext) -> None:
        if not isinstance(node.value, cst.Call) or ctx.function is not None or ctx.class_ is not None:
            return
        if not isinstance(node.target, cst.Name) or not _runs_at_import(ctx):
            return
        self._check(node, node.value, [node.target.value], node.annotation.annotation, ctx)

    def _check(
        self,
        node: AssignNode,
        call: cst.Call,
        names: list[str],
        annotation: Optional[cst.BaseExpression],
        ctx: FileContext,
    ) -> None:
        found = self._classify(call, ctx)
        if found is None:
            return
        display, fixable = found
        name = names[0]
        patch: Optional[Patch] = None
        if fixable and len(names) == 1:
            if ctx.fix_style == "runtime":
                patch = self._runtime_fix(call, name, ctx)
            else:
                patch = self._stdlib_fix(node, call, name, annotation, ctx)
        ctx.report(node, f"`{name}` is built at import time by `{display}`", patch)

    def _classify(self, call: cst.Call, ctx: FileContext) -> Optional[tuple[str, bool]]:
        """(what builds the object, whether a lazy fix is sound), or None when it is not a service."""
        allowed: tuple[str, ...] = tuple(self.opts["extend-allowed"])
        extra: tuple[str, ...] = tuple(self.opts["extend-factories"])
        target = ctx.qualname(call.func)
        if target is not None:
            if matches(target, CHEAP) or matches(target, allowed):
                return None
            if target in SETTINGS_FACTORIES:
                return (target, True) if self.opts["report-settings"] else None
            if target in KNOWN_FACTORIES:
                return target, KNOWN_FACTORIES[target]
            if matches(target, extra):
                return target, True
            last = target.rsplit(".", 1)[-1]
            if self._is_project_module(target, ctx):
                if is_settings_name(last):
                    return (target, True) if self.opts["report-settings"] else None
                if has_role_suffix(last):
                    return target, True
            return None
        if not isinstance(call.func, cst.Name):
            return None
        name = call.func.value
        cls = self._module_classes(ctx).get(name)
        if cls is None or name in allowed:
            return None
        if is_data_class(cls, ctx.qualname) and all(is_literal(a.value) for a in call.args):
            return None
        if is_settings_class(cls, ctx.qualname) or is_settings_name(name):
            return (name, True) if self.opts["report-settings"] else None
        return (name, True) if self._is_service_class(name, ctx) else None

    def _is_project_module(self, qualname: str, ctx: FileContext) -> bool:
        """A relative import, or a package whose directory holds the file being linted."""
        if qualname.startswith("."):
            return True
        top = qualname.split(".", 1)[0]
        return top in PurePath(ctx.path).parts[:-1]

    def _module_classes(self, ctx: FileContext) -> dict[str, cst.ClassDef]:
        """Top-level classes bound once in the module (a second binding makes the name unknown)."""
        if self._classes is None:
            facts = ctx.facts(ctx.module)
            self._classes = {
                stmt.name.value: stmt
                for stmt in ctx.module.body
                if isinstance(stmt, cst.ClassDef) and len(facts.bindings.get(stmt.name.value, ())) == 1
            }
        return self._classes

    def _is_service_class(self, name: str, ctx: FileContext) -> bool:
        known = self._roles.get(name)
        if known is not None:
            return known
        cls = self._module_classes(ctx).get(name)
        if cls is None or name in self.opts["extend-allowed"]:
            return False
        self._roles[name] = False  # a guard against classes that build each other
        factories = (*KNOWN_FACTORIES, *self.opts["extend-factories"])
        init = init_of(cls)
        role = False
        if is_data_class(cls, ctx.qualname) or is_settings_class(cls, ctx.qualname):
            role = False
        elif init is not None and init_does_io(
            init, ctx.qualname, factories, lambda n: self._is_service_class(n, ctx)
        ):
            role = True
        elif self._foreign_kind(cls, factories, ctx):
            role = False  # `class WorkersPool(click.Choice)` is a click parameter type
        elif has_strong_role_suffix(name):
            role = True
        elif has_role_suffix(name):
            plain = all(isinstance(b.value, cst.Name) and b.value.value == "object" for b in cls.bases)
            role = not (plain and not cls.keywords and init_is_trivial(init))
        self._roles[name] = role
        return role

    def _foreign_kind(self, cls: cst.ClassDef, factories: Sequence[str], ctx: FileContext) -> bool:
        """The class extends a third-party class that is neither a known factory nor named for
        a role: it is what that base is (`click.Choice`, `models.Manager`), whatever its name."""
        for base in cls.bases:
            target = ctx.qualname(base.value)
            if target is None or self._is_project_module(target, ctx):
                continue
            last = target.rsplit(".", 1)[-1]
            if not (matches(target, factories) or has_strong_role_suffix(last)):
                return True
        return False

    # ---- fixes -------------------------------------------------------------------------------

    def _runtime_fix(self, call: cst.Call, name: str, ctx: FileContext) -> Optional[Patch]:
        facts = ctx.facts(ctx.module)
        if not _free_for("lazy", "auditlint.runtime.lazy", facts):
            return None
        if any(a.keyword is not None and a.keyword.value == "factory" for a in call.args):
            return None  # would collide with lazy()'s own first parameter
        if call.args:
            ws = call.whitespace_before_args
            after: cst.BaseParenthesizableWhitespace = (
                ws if isinstance(ws, cst.ParenthesizedWhitespace) else cst.SimpleWhitespace(" ")
            )
            first = cst.Arg(value=call.func, comma=cst.Comma(whitespace_after=after))
        else:
            first = cst.Arg(value=call.func)
        new = cst.Call(
            func=cst.Name("lazy"),
            args=[first, *call.args],
            lpar=call.lpar,
            rpar=call.rpar,
            whitespace_after_func=call.whitespace_after_func,
            whitespace_before_args=cst.SimpleWhitespace(""),
        )
        return Patch.unsafe(
            {call: new},
            title=f"Build `{name}` on first use with `lazy(...)`",
            imports=[ImportSpec("auditlint.runtime", "lazy")],
        )

    def _stdlib_fix(
        self,
        node: AssignNode,
        call: cst.Call,
        name: str,
        annotation: Optional[cst.BaseExpression],
        ctx: FileContext,
    ) -> Optional[Patch]:
        module = ctx.module
        line = ctx.parent
        # Only a plain top-level statement: a conditional binding cannot become an accessor.
        if len(ctx.stack) != 3 or not isinstance(line, cst.SimpleStatementLine) or len(line.body) != 1:
            return None
        facts = ctx.facts(module)
        if len(facts.bindings.get(name, ())) != 1 or facts.reads(name) or self._declared_global(name, ctx):
            return None
        if not self._deferrable(call, facts):
            return None
        accessor = f"_get_{name.lower().lstrip('_')}"
        if accessor in facts.bindings or not all(
            _free_for(m, m, facts) for m in ("functools", "os", "threading")
        ):
            return None
        lock_bindings = facts.bindings.get(_LOCK, [])
        if lock_bindings and not (
            len(lock_bindings) == 1
            and lock_bindings[0].value is not None
            and ctx.code(lock_bindings[0].value) == "threading.RLock()"
        ):
            return None
        getattr_def = self._existing_getattr(facts, module)
        if getattr_def is False:
            return None
        returns = f" -> {ctx.code(annotation)}" if annotation is not None else ""
        template = cst.parse_statement(
            "# Built on first use, once per process: a forked child builds its own.\n"
            f"@functools.cache\ndef {accessor}(pid){returns}:\n    return CALL\n"
        )
        assert isinstance(template, cst.FunctionDef) and isinstance(template.body, cst.IndentedBlock)
        ret_line = template.body.body[0]
        assert isinstance(ret_line, cst.SimpleStatementLine)
        ret = ret_line.body[0]
        assert isinstance(ret, cst.Return)
        body = template.body.with_changes(
            body=[
                ret_line.with_changes(
                    body=[ret.with_changes(value=call)], trailing_whitespace=line.trailing_whitespace
                )
            ]
        )
        first = module.body[0] is line
        accessor_def = template.with_changes(
            body=body,
            leading_lines=_with_blank_lines(line.leading_lines, 0 if first else 2)
            + list(template.leading_lines),
        )
        branch = f'if {{param}} == "{name}":\n    with {_LOCK}:\n        return {accessor}(os.getpid())\n'
        changes: dict[cst.CSTNode, Any] = {}
        if isinstance(getattr_def, cst.FunctionDef):
            param = getattr_def.params.params[0].name.value if getattr_def.params.params else None
            if param is None or not isinstance(getattr_def.body, cst.IndentedBlock):
                return None
            stmts = list(getattr_def.body.body)
            at = 1 if stmts and _is_docstring(stmts[0]) else 0
            stmts.insert(at, cst.parse_statement(branch.format(param=param)))
            changes[line] = accessor_def
            changes[getattr_def] = getattr_def.with_changes(body=getattr_def.body.with_changes(body=stmts))
        else:
            new_getattr = cst.parse_statement(
                "def __getattr__(name):\n"
                + "".join(f"    {ln}\n" for ln in branch.format(param="name").splitlines())
                + '    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")\n'
            ).with_changes(leading_lines=[cst.EmptyLine(), cst.EmptyLine()])
            anchor = self._getattr_anchor(module)
            if anchor is line:
                changes[line] = cst.FlattenSentinel([accessor_def, new_getattr])
            else:
                changes[line] = accessor_def
                changes[anchor] = cst.FlattenSentinel([anchor, new_getattr])
        return Patch.unsafe(
            changes,
            title=f"Build `{name}` on first use in a cached accessor behind `__getattr__`",
            imports=[ImportSpec("functools"), ImportSpec("os"), ImportSpec("threading")],
            module_statements=[_LOCK_STATEMENT],
        )

    @staticmethod
    def _existing_getattr(facts: ScopeFacts, module: cst.Module) -> Union[cst.FunctionDef, None, bool]:
        """The module's `def __getattr__` to extend, None when there is none, False when it is
        bound in a way a fix cannot extend safely (an import, an assignment, several defs)."""
        found = facts.bindings.get("__getattr__")
        if not found:
            return None
        if len(found) != 1 or found[0].kind != "def":
            return False
        for stmt in module.body:
            if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "__getattr__":
                return False if stmt.asynchronous is not None else stmt
        return False

    @staticmethod
    def _getattr_anchor(module: cst.Module) -> cst.BaseStatement:
        """The statement a new `__getattr__` goes after: the last one that is not a main guard,
        so the function exists before a script's main code runs."""
        for stmt in reversed(module.body):
            if not (isinstance(stmt, cst.If) and is_main_guard(stmt.test)):
                return stmt
        return module.body[-1]

    @staticmethod
    def _declared_global(name: str, ctx: FileContext) -> bool:
        key = ("AL501-globals",)
        names = ctx.cache.get(key)
        if names is None:
            names = {
                item.name.value
                for n in iter_descendants(ctx.module)
                if isinstance(n, cst.Global)
                for item in n.names
            }
            ctx.cache[key] = names
        return name in names

    @staticmethod
    def _deferrable(call: cst.Call, facts: ScopeFacts) -> bool:
        """The call means the same when run later: no walrus, await or yield in it, and every
        module name it reads is bound only once (so first use sees what import saw)."""
        for n in iter_descendants(call):
            if isinstance(n, (cst.NamedExpr, cst.Await, cst.Yield)):
                return False
            if isinstance(n, cst.Name) and len(facts.bindings.get(n.value, ())) > 1:
                return False
        return True


def _is_docstring(stmt: cst.BaseStatement) -> bool:
    return (
        isinstance(stmt, cst.SimpleStatementLine)
        and len(stmt.body) == 1
        and isinstance(stmt.body[0], cst.Expr)
        and isinstance(stmt.body[0].value, (cst.SimpleString, cst.ConcatenatedString))
    )
