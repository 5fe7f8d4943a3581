"""AL701 bulk-write-without-invalidation: a loop of writes that leaves a cache stale."""

from __future__ import annotations

from pathlib import PurePath
from typing import Any, Optional, Sequence, Union

import libcst as cst

from auditlint.analysis.caches import (
    EXECUTE_METHODS,
    HTTP_PREFIXES,
    INVALIDATE_ON_CACHE,
    ORM_HOOK_WORDS,
    STORE_WORDS,
    WRITE_EXACT,
    WRITE_PREFIXES,
    WRITE_UNAMBIGUOUS,
    chain_identifiers,
    decorated_with_cache,
    identifiers,
    is_cache_module,
    is_cache_name,
    is_invalidating_name,
    is_orm_chain,
    is_store_name,
    last_word,
    load_names,
    sqlalchemy_dml,
)
from auditlint.analysis.calls import positionals
from auditlint.analysis.loops import leaves_loop_after
from auditlint.analysis.sql import is_write, sql_text, text_call_argument
from auditlint.analysis.walk import iter_children, iter_descendants
from auditlint.context import FileContext
from auditlint.rule import ImportSpec, Patch, Rule, bad, ok

Scope = Union[cst.ClassDef, cst.Module]
_MAX_DEPTH = 3
_COMPREHENSIONS = (cst.ListComp, cst.SetComp, cst.DictComp, cst.GeneratorExp)
_ATOMS = (
    cst.Name,
    cst.Attribute,
    cst.Call,
    cst.Subscript,
    cst.SimpleString,
    cst.FormattedString,
    cst.ConcatenatedString,
    cst.Integer,
    cst.Float,
)


class _Substitute(cst.CSTTransformer):
    """Replace variables (not attribute or keyword names) by expressions."""

    def __init__(self, mapping: dict[str, cst.BaseExpression]) -> None:
        super().__init__()
        self.mapping = mapping
        self.skip: set[int] = set()

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        self.skip.add(id(node.attr))
        return True

    def visit_Arg(self, node: cst.Arg) -> bool:
        if node.keyword is not None:
            self.skip.add(id(node.keyword))
        return True

    def leave_Name(self, original_node: cst.Name, updated_node: cst.Name) -> cst.BaseExpression:
        if id(original_node) in self.skip:
            return updated_node
        return self.mapping.get(original_node.value, updated_node)


class _InsertAfter(cst.CSTTransformer):
    """Insert statements after one statement (by identity) inside a subtree."""

    def __init__(self, anchor: cst.CSTNode, extra: Sequence[cst.BaseStatement]) -> None:
        super().__init__()
        self.anchor = anchor
        self.extra = extra

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> Union[cst.BaseStatement, cst.FlattenSentinel[cst.BaseStatement]]:
        if original_node is self.anchor:
            return cst.FlattenSentinel([updated_node, *self.extra])
        return updated_node


def _functions(scope: Scope) -> list[cst.FunctionDef]:
    if isinstance(scope, cst.Module):
        return [s for s in scope.body if isinstance(s, cst.FunctionDef)]
    if isinstance(scope.body, cst.IndentedBlock):
        return [s for s in scope.body.body if isinstance(s, cst.FunctionDef)]
    return []


def _decorator_names(fn: cst.FunctionDef) -> set[str]:
    out = set()
    for dec in fn.decorators:
        if isinstance(dec.decorator, cst.Name):
            out.add(dec.decorator.value)
    return out


def _first_param(fn: cst.FunctionDef) -> Optional[str]:
    params = [*fn.params.posonly_params, *fn.params.params]
    return params[0].name.value if params else None


def _param_names(fn: cst.FunctionDef) -> set[str]:
    p = fn.params
    names = {x.name.value for x in (*p.posonly_params, *p.params, *p.kwonly_params)}
    if isinstance(p.star_arg, cst.Param):
        names.add(p.star_arg.name.value)
    if p.star_kwarg is not None:
        names.add(p.star_kwarg.name.value)
    return names


def _outside_loops(fn: cst.FunctionDef) -> list[cst.CSTNode]:
    """Nodes of a function body that run once per call: not in a loop body or nested scope."""
    out: list[cst.CSTNode] = []
    stack: list[cst.CSTNode] = list(iter_children(fn.body))
    while stack:
        node = stack.pop()
        out.append(node)
        if isinstance(node, (cst.FunctionDef, cst.ClassDef, cst.Lambda, *_COMPREHENSIONS)):
            continue
        if isinstance(node, cst.For):
            stack.append(node.iter)
        elif isinstance(node, cst.While):
            stack.append(node.test)
        else:
            stack.extend(iter_children(node))
    return out


def _pure(expr: cst.BaseExpression) -> bool:
    """An expression that can be evaluated again with the same result and no side effect."""
    if isinstance(expr, cst.Name):
        return True
    if isinstance(expr, cst.Attribute):
        return _pure(expr.value)
    if isinstance(expr, cst.Subscript):
        return _pure(expr.value) and all(
            isinstance(s.slice, cst.Index) and _pure_or_literal(s.slice.value) for s in expr.slice
        )
    return isinstance(expr, (cst.Integer, cst.SimpleString))


def _pure_or_literal(expr: cst.BaseExpression) -> bool:
    return _pure(expr) or isinstance(expr, (cst.Integer, cst.SimpleString, cst.Float))


def _code(node: cst.CSTNode) -> str:
    return cst.Module([]).code_for_node(node)


class BulkWriteWithoutInvalidation(Rule):
    """
    ## What it does
    Finds a write inside a loop — `update*`, `save`, `delete*`, `upsert*`, `insert*`, `bulk_*`
    calls on a repository, database, session or ORM query, `execute` of `UPDATE`, `INSERT`,
    `DELETE` (SQL text or SQLAlchemy `update()`/`insert()`/`delete()`), Django
    `.objects.filter(...).update()`, `instance.save()` on the loop variable — in a function of
    a class or module that has a cache in sight (`self.cache`, a Redis or memcache client,
    `cachetools`, Django's cache, an `@lru_cache`/`@cache`d function), when neither the loop
    nor the code after it in the function invalidates (`delete`, `delete_many`, `unlink`,
    `pop`, `expire`, `clear`, `set` on a cache; `cache_clear()`; `invalidate*`/`evict*`
    functions; a method of the class that does one of these).

    The strongest signal is always reported: a method of the same class (or a function of the
    same module) writes one item with the same call and then invalidates, and the loop does the
    write without it.

    It stays silent when the loop calls the single-item method that already invalidates, when
    the function invalidates after the loop (or wraps it in `BulkInvalidation`), when a
    function of the same class or module calls it and invalidates afterwards, when the module
    hooks ORM saves (`post_save`, `after_update`), inside a cache's own implementation (a class
    or module named for a cache), for a write that a `return` or `break` always follows (it
    runs once), and when no cache is in sight. `dict.update`, progress bars
    and hash objects are not writes: a plain `update`/`save`/`delete` counts only on a receiver
    named like a store (`repo`, `db`, `session`, `cursor`, ...; `related_models` is a
    collection, not a store), on an ORM query, or as
    `item.save()` on the loop's own item; `update_*`-style names need a repository-like
    receiver (`repo`, `db`, `store`, ...), and a method inherited from an unseen base class
    counts only with an unambiguous name (`update_one`, `bulk_create`).

    ## Why is this bad?
    The single-item path keeps the cache consistent; the bulk path does not, so readers are
    served the old rows until the entries expire — the audit's "stale data served to users
    after bulk updates".

    ## Example
    ```python
    class PatientService:
        def update_patient(self, patient):
            self.db.update(patient)
            self.cache.delete(f"patient:{patient.id}")

        def bulk_update(self, patients):
            for p in patients:
                self.db.update(p)
    ```

    ## Use instead
    ```python
    class PatientService:
        def bulk_update(self, patients):
            for p in patients:
                self.db.update(p)
                self.cache.delete(f"patient:{p.id}")
    ```
    or, with `fix-style = "runtime"`, one round trip for all keys, also when the loop fails
    half way:
    ```python
    from auditlint.runtime import BulkInvalidation

    class PatientService:
        def bulk_update(self, patients):
            with BulkInvalidation(self.cache) as stale:
                for p in patients:
                    self.db.update(p)
                    stale.add(f"patient:{p.id}")
    ```

    ## Fix safety
    A fix exists only when the single-item path shows its invalidation: the statements are
    copied with the single-item method's parameters replaced by the loop's arguments of the
    same write (unified argument by argument; a local key variable is inlined). It is
    **unsafe**: it adds cache traffic, and a cache error can now fail the bulk write. The
    runtime style collects the keys of `cache.delete(key)` / `cache.unlink(key)` invalidations
    in `BulkInvalidation` (`async with` when the invalidation is awaited) and deletes them when
    the loop ends or raises; other invalidations are copied per item in both styles. Without a
    single-item path the finding is reported without a fix.

    ## Options
    None.
    """

    code = "AL701"
    name = "bulk-write-without-invalidation"
    summary = "Bulk write leaves a cache stale"
    triggers = (
        ("for", "cache"),
        ("for", "redis"),
        ("for", "memcache"),
        ("while", "cache"),
        ("while", "redis"),
        ("for", "invalidat"),
        ("for", "evict"),
    )
    fix_safety = "unsafe"
    options = ()
    examples = (
        bad(
            """
            class PatientService:
                def __init__(self, db, cache):
                    self.db = db
                    self.cache = cache

                def update_patient(self, patient):
                    self.db.update(patient)
                    self.cache.delete(f"patient:{patient.id}")

                def bulk_update(self, patients):
                    for p in patients:
                        self.db.update(p)
            """,
            fixed="""
            class PatientService:
                def __init__(self, db, cache):
                    self.db = db
                    self.cache = cache

                def update_patient(self, patient):
                    self.db.update(patient)
                    self.cache.delete(f"patient:{patient.id}")

                def bulk_update(self, patients):
                    for p in patients:
                        self.db.update(p)
                        self.cache.delete(f"patient:{p.id}")
            """,
        ),
        bad(
            """
            class PatientService:
                def __init__(self, db, cache):
                    self.db = db
                    self.cache = cache

                def update_patient(self, patient):
                    self.db.update(patient)
                    self.cache.delete(f"patient:{patient.id}")

                def bulk_update(self, patients):
                    for p in patients:
                        self.db.update(p)
            """,
            fixed="""
            from auditlint.runtime import BulkInvalidation

            class PatientService:
                def __init__(self, db, cache):
                    self.db = db
                    self.cache = cache

                def update_patient(self, patient):
                    self.db.update(patient)
                    self.cache.delete(f"patient:{patient.id}")

                def bulk_update(self, patients):
                    with BulkInvalidation(self.cache) as stale:
                        for p in patients:
                            self.db.update(p)
                            stale.add(f"patient:{p.id}")
            """,
            fix_style="runtime",
        ),
        bad(
            """
            import redis.asyncio as aioredis

            class ClaimRepo:
                def __init__(self, pool):
                    self.pool = pool
                    self.redis = aioredis.Redis()

                async def set_status(self, claim_id, status):
                    key = f"claim:{claim_id}"
                    await self.pool.execute("UPDATE claims SET status = $1 WHERE id = $2", status, claim_id)
                    await self.redis.delete(key)

                async def set_statuses(self, changes):
                    for cid, st in changes.items():
                        await self.pool.execute("UPDATE claims SET status = $1 WHERE id = $2", st, cid)
            """,
            fixed="""
            import redis.asyncio as aioredis
            from auditlint.runtime import BulkInvalidation

            class ClaimRepo:
                def __init__(self, pool):
                    self.pool = pool
                    self.redis = aioredis.Redis()

                async def set_status(self, claim_id, status):
                    key = f"claim:{claim_id}"
                    await self.pool.execute("UPDATE claims SET status = $1 WHERE id = $2", status, claim_id)
                    await self.redis.delete(key)

                async def set_statuses(self, changes):
                    async with BulkInvalidation(self.redis) as stale:
                        for cid, st in changes.items():
                            await self.pool.execute("UPDATE claims SET status = $1 WHERE id = $2", st, cid)
                            stale.add(f"claim:{cid}")
            """,
            fix_style="runtime",
            title="async, SQL execute, a local key inlined",
        ),
        bad(
            """
            import redis.asyncio as aioredis

            class ClaimRepo:
                def __init__(self, pool):
                    self.pool = pool
                    self.redis = aioredis.Redis()

                async def set_status(self, claim_id, status):
                    key = f"claim:{claim_id}"
                    await self.pool.execute("UPDATE claims SET status = $1 WHERE id = $2", status, claim_id)
                    await self.redis.delete(key)

                async def set_statuses(self, changes):
                    for cid, st in changes.items():
                        await self.pool.execute("UPDATE claims SET status = $1 WHERE id = $2", st, cid)
            """,
            fixed="""
            import redis.asyncio as aioredis

            class ClaimRepo:
                def __init__(self, pool):
                    self.pool = pool
                    self.redis = aioredis.Redis()

                async def set_status(self, claim_id, status):
                    key = f"claim:{claim_id}"
                    await self.pool.execute("UPDATE claims SET status = $1 WHERE id = $2", status, claim_id)
                    await self.redis.delete(key)

                async def set_statuses(self, changes):
                    for cid, st in changes.items():
                        await self.pool.execute("UPDATE claims SET status = $1 WHERE id = $2", st, cid)
                        await self.redis.delete(f"claim:{cid}")
            """,
        ),
        bad(
            """
            class Accounts:
                def __init__(self, repo):
                    self.repo = repo
                    self._cache = {}

                def rename(self, account):
                    self.repo.save(account)
                    self._cache.pop(account.id, None)

                def rename_all(self, accounts):
                    for account in accounts:
                        if account.dirty:
                            self.repo.save(account)
            """,
            fixed="""
            class Accounts:
                def __init__(self, repo):
                    self.repo = repo
                    self._cache = {}

                def rename(self, account):
                    self.repo.save(account)
                    self._cache.pop(account.id, None)

                def rename_all(self, accounts):
                    for account in accounts:
                        if account.dirty:
                            self.repo.save(account)
                            self._cache.pop(account.id, None)
            """,
            fix_style="runtime",
            title="a dict cache: the expression is copied per item in both styles",
        ),
        bad(
            """
            import redis

            r = redis.Redis()

            def close_visits(conn, visit_ids):
                with conn.cursor() as cur:
                    for vid in visit_ids:
                        cur.execute("UPDATE visits SET closed = true WHERE id = %s", (vid,))
            """,
            title="no single-item path: report only",
        ),
        bad(
            """
            class Patients:
                def get(self, conn, pid):
                    row = conn.execute("SELECT name FROM patients WHERE id = %s", (pid,)).fetchone()
                    self.cache.set(f"patient:{pid}", row[0])
                    return row[0]

                def rename(self, conn, pid, name):
                    conn.execute("UPDATE patients SET name = %s WHERE id = %s", (name, pid))
                    self.cache.delete(f"patient:{pid}")

                def rename_all(self, conn, renames):
                    for pid, name in renames:
                        conn.execute("UPDATE patients SET name = %s WHERE id = %s", (name, pid))
            """,
            fixed="""
            class Patients:
                def get(self, conn, pid):
                    row = conn.execute("SELECT name FROM patients WHERE id = %s", (pid,)).fetchone()
                    self.cache.set(f"patient:{pid}", row[0])
                    return row[0]

                def rename(self, conn, pid, name):
                    conn.execute("UPDATE patients SET name = %s WHERE id = %s", (name, pid))
                    self.cache.delete(f"patient:{pid}")

                def rename_all(self, conn, renames):
                    for pid, name in renames:
                        conn.execute("UPDATE patients SET name = %s WHERE id = %s", (name, pid))
                        self.cache.delete(f"patient:{pid}")
            """,
            title="the single-item path runs the same statement, not another `execute`",
        ),
        bad(
            """
            from django.core.cache import cache
            from .models import Patient

            def discharge(patient_ids):
                for pid in patient_ids:
                    Patient.objects.filter(id=pid).update(status="discharged")
            """,
            title="Django queryset update bypasses signals",
        ),
        bad(
            """
            from functools import lru_cache
            from sqlalchemy import update
            from .models import Patient

            @lru_cache(maxsize=1024)
            def patient_name(session, pid):
                return session.get(Patient, pid).name

            def rename(session, names):
                for pid, name in names.items():
                    session.execute(update(Patient).where(Patient.id == pid).values(name=name))
            """,
            title="SQLAlchemy update() with an lru_cache in the module",
        ),
        bad(
            """
            import cachetools

            PROFILES = cachetools.TTLCache(maxsize=1000, ttl=60)

            def save_profiles(profiles):
                for profile in profiles:
                    profile.save()
                while True:
                    break
            """,
            title="instance save() on the loop variable",
        ),
        bad(
            """
            from pymemcache.client.base import Client as Memcache

            class Inventory:
                def __init__(self, store):
                    self.store = store
                    self.mc = Memcache("localhost")

                def restock(self, items):
                    def apply():
                        for sku, qty in items:
                            self.store.update_stock(sku, qty)
                    apply()
            """,
            title="nested function inside a method",
        ),
        bad(
            """
            class Tags:
                def __init__(self, db, cache):
                    self.db = db
                    self.cache = cache

                def retag(self, post):
                    self.db.upsert_tags(post.id, post.tags)
                    self.cache.delete(post.id)
                    self.cache.delete(f"tags:{post.author}")

                def retag_all(self, posts):
                    n = 0
                    for post in posts:
                        n += 1
                        self.db.upsert_tags(post.id, post.tags)
                    return n
            """,
            fixed="""
            class Tags:
                def __init__(self, db, cache):
                    self.db = db
                    self.cache = cache

                def retag(self, post):
                    self.db.upsert_tags(post.id, post.tags)
                    self.cache.delete(post.id)
                    self.cache.delete(f"tags:{post.author}")

                def retag_all(self, posts):
                    n = 0
                    for post in posts:
                        n += 1
                        self.db.upsert_tags(post.id, post.tags)
                        self.cache.delete(post.id)
                        self.cache.delete(f"tags:{post.author}")
                    return n
            """,
            title="several invalidations are all copied",
        ),
        ok(
            """
            class PatientService:
                def __init__(self, db, cache):
                    self.db = db
                    self.cache = cache

                def update_patient(self, patient):
                    self.db.update(patient)
                    self.cache.delete(f"patient:{patient.id}")

                def bulk_update(self, patients):
                    for p in patients:
                        self.update_patient(p)
            """,
            title="the loop calls the single-item method that invalidates",
        ),
        ok(
            """
            class PatientService:
                def __init__(self, db, cache):
                    self.db = db
                    self.cache = cache

                def bulk_update(self, patients):
                    for p in patients:
                        self.db.update(p)
                    self.cache.delete_many([f"patient:{p.id}" for p in patients])
            """,
            title="invalidates after the loop",
        ),
        ok(
            """
            from functools import lru_cache

            @lru_cache
            def get_patient(db, pid):
                return db.get(pid)

            def bulk(db, patients):
                for p in patients:
                    db.update(p)
                get_patient.cache_clear()
            """
        ),
        ok(
            """
            class PatientService:
                def __init__(self, db):
                    self.db = db

                def bulk_update(self, patients):
                    for p in patients:
                        self.db.update(p)
            """,
            title="no cache in sight",
        ),
        ok(
            """
            import hashlib
            from tqdm import tqdm

            class Exporter:
                def __init__(self):
                    self.cache = {}

                def export(self, rows, pbar):
                    h = hashlib.sha256()
                    merged = {}
                    for row in rows:
                        merged.update(row)
                        h.update(row["id"].encode())
                        pbar.update(1)
                        self.cache.update({row["id"]: row})
            """,
            title="dict, hash and progress-bar updates are not writes",
        ),
        ok(
            """
            class Sessions:
                def __init__(self, redis):
                    self.redis = redis

                def expire_all(self, keys):
                    for key in keys:
                        self.redis.delete(key)
            """,
            title="cache operations are not writes",
        ),
        ok(
            """
            import redis

            r = redis.Redis()

            def totals(cur, ids):
                for i in ids:
                    cur.execute("SELECT total FROM orders WHERE id = %s", (i,))
            """,
            title="reads",
        ),
        ok(
            """
            class PatientService:
                def __init__(self, db, cache):
                    self.db = db
                    self.cache = cache

                def _write_all(self, patients):
                    for p in patients:
                        self.db.update(p)

                def update_all(self, patients):
                    self._write_all(patients)
                    self.cache.clear()
            """,
            title="the caller invalidates after calling the bulk helper",
        ),
        ok(
            """
            from django.core.cache import cache
            from django.db.models.signals import post_save
            from django.dispatch import receiver
            from .models import Patient

            @receiver(post_save, sender=Patient)
            def drop_cached(sender, instance, **kwargs):
                cache.delete(f"patient:{instance.pk}")

            def activate(patients):
                for p in patients:
                    p.active = True
                    p.save()
            """,
            title="a post_save receiver invalidates every save",
        ),
        ok(
            """
            import requests

            class Mirror:
                def __init__(self, session):
                    self.session = requests.Session()
                    self.cache = {}

                def purge_remote(self, urls):
                    for url in urls:
                        self.session.delete(url, timeout=5)
            """,
            title="HTTP calls are not store writes",
        ),
        ok(
            """
            class PatientService:
                def __init__(self, db, cache):
                    self.db = db
                    self.cache = cache

                def bulk_update(self, patients):
                    for p in patients:
                        self.db.update(p)
                        self.invalidate_patient(p.id)

                def invalidate_patient(self, pid):
                    self.cache.delete(pid)
            """,
            title="invalidates in the loop",
        ),
        ok(
            """
            class PatientService:
                def __init__(self, db, cache):
                    self.db = db
                    self.cache = cache

                def update(self, patient):
                    self.db.update(patient)
                    self.cache.delete(patient.id)

                def activate_first(self, patients):
                    for p in patients:
                        if p.pending:
                            self.db.update(p)
                            return p
            """,
            title="a write that a `return` or `break` always follows is not a bulk write",
        ),
        ok(
            """
            import redis

            cache = redis.Redis()

            def related(models, expand):
                related_models = set()
                seen_objects = {}
                for model in models:
                    related_models.update(expand(model))
                    seen_objects.update({model: True})
                return related_models
            """,
            title="`update` of a collection named for what it holds",
        ),
        ok(
            """
            class Loader:
                cache_ok = True
                cache_mode = "none"

                def load(self, db, rows):
                    for row in rows:
                        db.update(row)
            """,
            title="flags named after a cache are not caches (`cache_ok`, `cache_mode`)",
        ),
    )

    def __init__(self, options: Optional[dict[str, Any]] = None) -> None:
        super().__init__(options)
        self._memo: dict[tuple[str, int], Any] = {}

    # ---- detection ---------------------------------------------------------------------------

    def visit_Call(self, node: cst.Call, ctx: FileContext) -> None:
        fn = ctx.function
        if not isinstance(fn, cst.FunctionDef):
            return
        if (ctx.class_ is not None and is_cache_name(ctx.class_.name.value)) or is_cache_name(
            PurePath(ctx.path).stem
        ):
            return  # a cache's own implementation: its writes are the cache
        loops = [loop for loop in ctx.loops if isinstance(loop, (cst.For, cst.While))]
        if not loops or leaves_loop_after(ctx.stack, loops[-1]):
            return  # `if item.ok: repo.update(item); return` writes once
        targets = self._loop_targets(loops)
        if not self._is_write(node, ctx, targets, 0):
            return
        if self._invalidated_from(fn, loops[0], ctx) or self._callers_invalidate(fn, ctx):
            return
        if any(self._invalidates(item.item, ctx, 0) for w in ctx.withs for item in w.items):
            return  # `with BulkInvalidation(cache) as stale:` around the loop
        if self._is_instance_save(node, targets) and any(w in ctx.module.code for w in ORM_HOOK_WORDS):
            return
        single = self._single_item_path(node, fn, ctx)
        if single is None and not self._cache_in_sight(fn, ctx):
            return
        callee = ctx.code(node.func)
        callee = callee if len(callee) <= 50 else callee[:47] + "..."
        if single is None:
            ctx.report(node, f"`{callee}` in a loop with no cache invalidation")
            return
        sibling, write = single
        patch = self._fix(node, write, sibling, fn, loops, ctx)
        ctx.report(
            node, f"`{callee}` in a loop skips the cache invalidation `{sibling.name.value}` does", patch
        )

    @staticmethod
    def _loop_targets(loops: Sequence[cst.CSTNode]) -> set[str]:
        names: set[str] = set()
        for loop in loops:
            if isinstance(loop, cst.For):
                for n in [loop.target, *iter_descendants(loop.target)]:
                    if isinstance(n, cst.Name):
                        names.add(n.value)
        return names

    @staticmethod
    def _is_instance_save(call: cst.Call, targets: set[str]) -> bool:
        func = call.func
        return (
            isinstance(func, cst.Attribute)
            and func.attr.value in ("save", "delete")
            and isinstance(func.value, cst.Name)
            and func.value.value in targets
        )

    def _is_cache_expr(self, expr: cst.BaseExpression, ctx: FileContext) -> bool:
        if any(is_cache_name(i) for i in chain_identifiers(expr)):
            return True
        resolved = ctx.resolve_expr(expr)
        if resolved is not None and is_cache_module(resolved):
            return True
        if isinstance(expr, cst.Name):
            value = ctx.value_of(expr)
            if (
                value is not None
                and value is not expr
                and any(is_cache_name(i) for i in chain_identifiers(value))
            ):
                return True
            annotated = ctx.annotated_type(expr)
            if annotated is not None and is_cache_module(annotated):
                return True
        return False

    def _sibling(self, name: str, ctx: FileContext, method: bool) -> Optional[cst.FunctionDef]:
        scope: Optional[Scope] = ctx.class_ if method else ctx.module
        if scope is None:
            return None
        found = [f for f in _functions(scope) if f.name.value == name]
        return found[0] if len(found) == 1 else None

    def _is_write(self, call: cst.Call, ctx: FileContext, targets: set[str], depth: int) -> bool:
        """True when the call writes to a database, repository or remote store."""
        func = call.func
        if isinstance(func, cst.Attribute):
            method = func.attr.value
            recv = func.value
            if self._is_cache_expr(recv, ctx):
                return False
            resolved = ctx.resolve_expr(recv)
            if resolved is not None and resolved.startswith(HTTP_PREFIXES):
                return False
            if method in EXECUTE_METHODS:
                return self._is_dml(call, ctx)
            if isinstance(recv, cst.Name) and recv.value in ("self", "cls") and ctx.class_ is not None:
                sibling = self._sibling(method, ctx, method=True)
                if sibling is not None:
                    return depth < _MAX_DEPTH and self._body_writes(sibling, ctx, depth + 1)
                # An inherited method: its name alone is no evidence, unless no container has it.
                return method in WRITE_UNAMBIGUOUS
            chain = chain_identifiers(recv)
            if chain and chain[-1] in targets:
                # `for p in patients: p.save()` saves ORM instances; `for db in replicas:
                # db.save(key, value)` fans one write out to several stores, not a bulk write.
                return method in ("save", "delete") and not positionals(call)
            if method in WRITE_UNAMBIGUOUS:
                return True
            if method in WRITE_EXACT:
                return is_store_name(recv) or (method in ("update", "delete") and is_orm_chain(recv))
            return method.startswith(WRITE_PREFIXES) and is_store_name(recv, repository=True)
        if isinstance(func, cst.Name):
            sibling = self._sibling(func.value, ctx, method=False)
            if sibling is not None:
                return depth < _MAX_DEPTH and self._body_writes(sibling, ctx, depth + 1)
            target = ctx.qualname(func)
            if target is not None and target.startswith(("sqlalchemy.", "sqlmodel.")):
                return False
            if target is None or not (func.value.startswith(WRITE_PREFIXES) or func.value == "upsert"):
                return False
            # `update_wrapper`, `update_progress`: only a helper imported from a store module
            # (`from .repository import update_patient`) counts.
            return any(last_word(part) in STORE_WORDS for part in target.split(".")[:-1] if part)
        return False

    def _is_dml(self, call: cst.Call, ctx: FileContext) -> bool:
        args = positionals(call)
        if not args:
            return False
        arg: Optional[cst.BaseExpression] = text_call_argument(args[0].value, ctx.qualname)
        for _ in range(3):
            if not isinstance(arg, cst.Name):
                break
            value = ctx.value_of(arg)
            arg = None if value is None else text_call_argument(value, ctx.qualname)
        if arg is None:
            return False
        text = sql_text(arg)
        if text is not None:
            return is_write(text.text)
        return sqlalchemy_dml(arg, ctx.qualname)

    def _body_writes(self, fn: cst.FunctionDef, ctx: FileContext, depth: int) -> bool:
        key = ("writes", id(fn))
        if key not in self._memo:
            self._memo[key] = False  # recursion guard
            self._memo[key] = any(
                isinstance(n, cst.Call) and self._is_write(n, ctx, set(), depth)
                for n in iter_descendants(fn.body, into_scopes=False)
            )
        return bool(self._memo[key])

    def _invalidates(self, node: cst.CSTNode, ctx: FileContext, depth: int) -> bool:
        if isinstance(node, cst.Call):
            func = node.func
            if isinstance(func, cst.Attribute):
                method = func.attr.value
                if is_invalidating_name(method):
                    return True
                if method in INVALIDATE_ON_CACHE and self._is_cache_expr(func.value, ctx):
                    return True
                if isinstance(func.value, cst.Name) and func.value.value in ("self", "cls"):
                    sibling = self._sibling(method, ctx, method=True)
                    return (
                        sibling is not None
                        and depth < _MAX_DEPTH
                        and self._body_invalidates(sibling, ctx, depth + 1)
                    )
                return False
            if isinstance(func, cst.Name):
                if is_invalidating_name(func.value):
                    return True
                sibling = self._sibling(func.value, ctx, method=False)
                return (
                    sibling is not None
                    and depth < _MAX_DEPTH
                    and self._body_invalidates(sibling, ctx, depth + 1)
                )
            return False
        if isinstance(node, cst.Del):
            return self._cache_target(node.target, ctx)
        if isinstance(node, cst.Assign):
            return any(self._cache_target(t.target, ctx) for t in node.targets)
        return False

    def _cache_target(self, target: cst.BaseExpression, ctx: FileContext) -> bool:
        """`del cache[k]`, `cache[k] = v`, `del self._cached`: the entry is dropped or refreshed."""
        if isinstance(target, (cst.Tuple, cst.List)):
            return any(self._cache_target(e.value, ctx) for e in target.elements)
        if isinstance(target, cst.Subscript):
            return self._is_cache_expr(target.value, ctx)
        if isinstance(target, cst.Attribute):
            return is_cache_name(target.attr.value)
        return False

    def _body_invalidates(self, fn: cst.FunctionDef, ctx: FileContext, depth: int) -> bool:
        key = ("invalidates", id(fn))
        if key not in self._memo:
            self._memo[key] = False  # recursion guard
            self._memo[key] = any(
                self._invalidates(n, ctx, depth) for n in iter_descendants(fn.body, into_scopes=False)
            )
        return bool(self._memo[key])

    def _invalidation_order(self, fn: cst.FunctionDef, ctx: FileContext) -> tuple[dict[int, int], list[int]]:
        """Pre-order index of every node of the function, and the indices of invalidations."""
        key = ("order", id(fn))
        found = self._memo.get(key)
        if found is None:
            order: dict[int, int] = {}
            hits: list[int] = []
            for i, n in enumerate(iter_descendants(fn.body, into_scopes=False)):
                order[id(n)] = i
                if self._invalidates(n, ctx, 0):
                    hits.append(i)
            found = (order, hits)
            self._memo[key] = found
        return found

    def _invalidated_from(self, fn: cst.FunctionDef, node: cst.CSTNode, ctx: FileContext) -> bool:
        """Some invalidation runs in `node` (the loop) or after it in the function."""
        order, hits = self._invalidation_order(fn, ctx)
        start = order.get(id(node), 0)
        return any(h >= start for h in hits)

    def _callers_invalidate(self, fn: cst.FunctionDef, ctx: FileContext) -> bool:
        """A function of the same class or module calls `fn` and invalidates after the call."""
        key = ("callers", id(fn))
        if key in self._memo:
            return bool(self._memo[key])
        name = fn.name.value
        method = ctx.class_ is not None and fn in _functions(ctx.class_)
        scope: Optional[Scope] = ctx.class_ if method else ctx.module
        result = False
        if scope is not None and (method or fn in _functions(ctx.module)):
            for other in _functions(scope):
                if other is fn:
                    continue
                for n in iter_descendants(other.body, into_scopes=False):
                    if isinstance(n, cst.Call) and self._calls(n, name, method):
                        if self._invalidated_from(other, n, ctx):
                            result = True
                            break
                if result:
                    break
        self._memo[key] = result
        return result

    @staticmethod
    def _calls(call: cst.Call, name: str, method: bool) -> bool:
        func = call.func
        if method:
            return (
                isinstance(func, cst.Attribute)
                and func.attr.value == name
                and isinstance(func.value, cst.Name)
                and func.value.value in ("self", "cls")
            )
        return isinstance(func, cst.Name) and func.value == name

    def _cache_in_sight(self, fn: cst.FunctionDef, ctx: FileContext) -> bool:
        if any(is_cache_name(n) for n in identifiers(fn)):
            return True
        cls = ctx.class_
        if cls is not None:
            key = ("class-cache", id(cls))
            if key not in self._memo:
                self._memo[key] = any(is_cache_name(n) for n in identifiers(cls))
            if self._memo[key]:
                return True
        key = ("module-cache", id(ctx.module))
        if key not in self._memo:
            self._memo[key] = self._module_has_cache(ctx)
        return bool(self._memo[key])

    @staticmethod
    def _module_has_cache(ctx: FileContext) -> bool:
        """A cache library imported, a module-level cache object, or a memoised function."""
        facts = ctx.facts(ctx.module)
        if any(is_cache_module(q) for q in facts.imports.values()):
            return True
        if any(
            is_cache_name(name) and any(b.kind in ("assign", "annassign") for b in found)
            for name, found in facts.bindings.items()
        ):
            return True
        return any(
            isinstance(n, cst.FunctionDef) and decorated_with_cache(n, ctx.qualname)
            for n in iter_descendants(ctx.module)
        )

    def _single_item_path(
        self, write: cst.Call, fn: cst.FunctionDef, ctx: FileContext
    ) -> Optional[tuple[cst.FunctionDef, cst.Call]]:
        """A sibling function that makes the same write once, outside loops, and invalidates."""
        in_class = ctx.class_ is not None and fn in _functions(ctx.class_)
        scope: Optional[Scope] = (
            ctx.class_ if in_class else (ctx.module if fn in _functions(ctx.module) else None)
        )
        if scope is None:
            return None
        for sibling in _functions(scope):
            if sibling is fn or not self._body_invalidates(sibling, ctx, 0):
                continue
            for n in _outside_loops(sibling):
                if isinstance(n, cst.Call) and self._same_write(n, write, ctx):
                    return sibling, n
        return None

    @staticmethod
    def _same_write(a: cst.Call, b: cst.Call, ctx: FileContext) -> bool:
        """The same callee; for `execute`-like methods also the same statement (one
        `conn.execute` that reads is not the single-item path of another that writes)."""
        if isinstance(a.func, cst.Attribute) and isinstance(b.func, cst.Attribute):
            if a.func.attr.value == b.func.attr.value and a.func.attr.value in EXECUTE_METHODS:
                pa, pb = positionals(a), positionals(b)
                return bool(pa and pb and ctx.code(pa[0].value) == ctx.code(pb[0].value))
        return ctx.code(a.func) == ctx.code(b.func)

    # ---- fix ---------------------------------------------------------------------------------

    def _fix(
        self,
        write: cst.Call,
        single_write: cst.Call,
        sibling: cst.FunctionDef,
        fn: cst.FunctionDef,
        loops: Sequence[cst.CSTNode],
        ctx: FileContext,
    ) -> Optional[Patch]:
        stmt = ctx.statement()
        loop = ctx.loops[-1] if ctx.loops else None
        if loop is not loops[-1] or not isinstance(stmt, cst.SimpleStatementLine) or len(stmt.body) != 1:
            return None
        if not isinstance(stmt.body[0], (cst.Expr, cst.Assign, cst.AnnAssign, cst.AugAssign)):
            return None
        statements = self._invalidation_statements(sibling, ctx)
        if statements is None:
            return None
        mapping = self._unify_calls(single_write, write, _param_names(sibling), ctx)
        if mapping is None:
            return None
        small = stmt.body[0]
        bound: list[cst.BaseExpression] = []
        if isinstance(small, cst.Assign):
            bound = [t.target for t in small.targets]
        elif isinstance(small, (cst.AnnAssign, cst.AugAssign)):
            bound = [small.target]
        # The copied expressions run after the write: what the write statement rebinds would
        # no longer mean the item that was written.
        written = {n.value for t in bound for n in [t, *iter_descendants(t)] if isinstance(n, cst.Name)}
        for expr in mapping.values():
            if not _pure(expr) or any(
                n.value in written for n in [expr, *iter_descendants(expr)] if isinstance(n, cst.Name)
            ):
                return None
        own_self, their_self = _first_param(fn), _first_param(sibling)
        if ctx.class_ is not None and fn in _functions(ctx.class_):
            if own_self is None or own_self != their_self:
                return None
            if _decorator_names(fn) & {"staticmethod", "classmethod"} or _decorator_names(sibling) & {
                "staticmethod",
                "classmethod",
            }:
                return None
            their_self = None
        copied = []
        for s in statements:
            new = self._rewrite(s, sibling, fn, mapping, their_self, ctx)
            if new is None:
                return None
            copied.append(new)
        is_async = fn.asynchronous is not None
        if any(isinstance(n, cst.Await) for s in copied for n in iter_descendants(s)) and not is_async:
            return None
        if ctx.fix_style == "runtime":
            patch = self._bulk_patch(stmt, copied, loops[-1], fn, sibling, ctx)
            if patch is not None:
                return patch
        return Patch.unsafe(
            {stmt: cst.FlattenSentinel([stmt, *copied])},
            title=f"Invalidate each item as `{sibling.name.value}` does",
        )

    def _invalidation_statements(
        self, sibling: cst.FunctionDef, ctx: FileContext
    ) -> Optional[list[cst.SimpleStatementLine]]:
        """The sibling's invalidations, when each is a plain top-level expression or `del`
        statement of its body (a conditional or nested invalidation cannot be copied)."""
        if not isinstance(sibling.body, cst.IndentedBlock):
            return None
        out: list[cst.SimpleStatementLine] = []
        covered: set[int] = set()
        for stmt in sibling.body.body:
            if not isinstance(stmt, cst.SimpleStatementLine):
                continue
            if any(self._invalidates(n, ctx, 0) for n in iter_descendants(stmt, into_scopes=False)):
                if len(stmt.body) != 1 or not isinstance(stmt.body[0], (cst.Expr, cst.Del)):
                    return None
                out.append(stmt)
                covered.update(id(n) for n in iter_descendants(stmt))
        for n in iter_descendants(sibling.body, into_scopes=False):
            if id(n) not in covered and self._invalidates(n, ctx, 0):
                return None
        return out or None

    def _unify_calls(
        self, single: cst.Call, bulk: cst.Call, params: set[str], ctx: FileContext
    ) -> Optional[dict[str, cst.BaseExpression]]:
        mapping: dict[str, cst.BaseExpression] = {}
        if len(single.args) != len(bulk.args):
            return None
        for a, b in zip(single.args, bulk.args):
            if (a.keyword is None) != (b.keyword is None) or a.star != b.star:
                return None
            if a.keyword is not None and b.keyword is not None and a.keyword.value != b.keyword.value:
                return None
            if not self._unify(a.value, b.value, params, mapping):
                return None
        return mapping

    def _unify(
        self,
        a: cst.BaseExpression,
        b: cst.BaseExpression,
        params: set[str],
        mapping: dict[str, cst.BaseExpression],
    ) -> bool:
        """Match the single-item argument `a` against the bulk argument `b`, binding the
        single-item function's parameters to the bulk expressions they stand for."""
        if isinstance(a, cst.Name) and a.value in params:
            prev = mapping.get(a.value)
            if prev is None:
                mapping[a.value] = b
                return True
            return _code(prev) == _code(b)
        if isinstance(a, cst.Attribute) and isinstance(b, cst.Attribute):
            return a.attr.value == b.attr.value and self._unify(a.value, b.value, params, mapping)
        if isinstance(a, (cst.Tuple, cst.List)) and type(a) is type(b):
            assert isinstance(b, (cst.Tuple, cst.List))
            if len(a.elements) != len(b.elements):
                return False
            return all(
                type(x) is type(y) and self._unify(x.value, y.value, params, mapping)
                for x, y in zip(a.elements, b.elements)
            )
        if isinstance(a, cst.Subscript) and isinstance(b, cst.Subscript):
            return (
                _code(a.slice[0]) == _code(b.slice[0])
                and len(a.slice) == len(b.slice) == 1
                and self._unify(a.value, b.value, params, mapping)
            )
        return _code(a) == _code(b) and not any(n.value in params for n in load_names(a))

    def _rewrite(
        self,
        stmt: cst.SimpleStatementLine,
        sibling: cst.FunctionDef,
        fn: cst.FunctionDef,
        mapping: dict[str, cst.BaseExpression],
        their_self: Optional[str],
        ctx: FileContext,
    ) -> Optional[cst.SimpleStatementLine]:
        """The sibling's invalidation statement in terms of the bulk loop's variables: its
        parameters become the bulk write's arguments, its locals are inlined, and the globals it
        reads must mean the same in the bulk function."""
        facts = ctx.facts(sibling)
        params = _param_names(sibling)
        keep = _first_param(sibling) if their_self is None else None
        own = ctx.facts(fn)
        resolved: dict[str, Optional[cst.BaseExpression]] = {}

        def translate(node: cst.CSTNode, depth: int) -> Optional[dict[str, cst.BaseExpression]]:
            if any(
                isinstance(n, (cst.Lambda, cst.NamedExpr, cst.Yield, *_COMPREHENSIONS))
                for n in iter_descendants(node)
            ):
                return None
            sub: dict[str, cst.BaseExpression] = {}
            for name in load_names(node):
                value = name.value
                if value == keep:
                    continue
                if value in params or facts.is_bound(value):
                    found = resolve(value, depth)
                    if found is None:
                        return None
                    sub[value] = found
                elif own.is_bound(value):
                    return None  # the bulk function shadows a global the invalidation reads
            return sub

        def resolve(value: str, depth: int) -> Optional[cst.BaseExpression]:
            if value in mapping:
                return mapping[value]
            if value in params or depth > 3:
                return None
            if value not in resolved:
                resolved[value] = None  # a guard against `a = b; b = a`
                local = facts.single_value(value)
                sub = translate(local, depth + 1) if local is not None else None
                if local is not None and sub is not None:
                    new = local.visit(_Substitute(sub))
                    assert isinstance(new, cst.BaseExpression)
                    if not isinstance(new, _ATOMS):
                        new = new.with_changes(lpar=[cst.LeftParen()], rpar=[cst.RightParen()])
                    resolved[value] = new
            return resolved[value]

        small = stmt.body[0]
        sub = translate(small, 0)
        if sub is None:
            return None
        body = small.visit(_Substitute(sub))
        assert isinstance(body, cst.BaseSmallStatement)
        return cst.SimpleStatementLine(body=[body])

    def _bulk_patch(
        self,
        stmt: cst.SimpleStatementLine,
        copied: list[cst.SimpleStatementLine],
        loop: cst.CSTNode,
        fn: cst.FunctionDef,
        sibling: cst.FunctionDef,
        ctx: FileContext,
    ) -> Optional[Patch]:
        """Runtime style: collect the keys of `cache.delete(key)` invalidations in a
        `BulkInvalidation` block around the loop."""
        cache_code: Optional[str] = None
        awaited = False
        keys: list[cst.BaseExpression] = []
        for line in copied:
            expr = line.body[0]
            if not isinstance(expr, cst.Expr):
                return None
            value = expr.value
            if isinstance(value, cst.Await):
                awaited = True
                value = value.expression
            if not isinstance(value, cst.Call) or not isinstance(value.func, cst.Attribute):
                return None
            if value.func.attr.value not in ("delete", "unlink") or len(value.args) != 1:
                return None
            arg = value.args[0]
            if arg.keyword is not None or arg.star:
                return None
            code = _code(value.func.value)
            if cache_code not in (None, code) or not _pure(value.func.value):
                return None
            cache_code = code
            keys.append(arg.value)
        if cache_code is None or not isinstance(loop, (cst.For, cst.While)):
            return None
        facts = ctx.facts(ctx.module)
        if facts.bindings.get("BulkInvalidation") and facts.imports.get("BulkInvalidation") != (
            "auditlint.runtime.BulkInvalidation"
        ):
            return None
        own = ctx.facts(fn)
        var = next(
            (v for v in ("stale", "stale_keys") if not own.is_bound(v) and v not in facts.bindings), None
        )
        if var is None:
            return None
        adds = [
            cst.SimpleStatementLine(
                body=[
                    cst.Expr(
                        cst.Call(func=cst.Attribute(cst.Name(var), cst.Name("add")), args=[cst.Arg(key)])
                    )
                ]
            )
            for key in keys
        ]
        inner = loop.visit(_InsertAfter(stmt, adds))
        assert isinstance(inner, (cst.For, cst.While))
        header = cst.parse_statement(
            f"{'async ' if awaited else ''}with BulkInvalidation({cache_code}) as {var}:\n    pass\n"
        )
        assert isinstance(header, cst.With)
        block = header.with_changes(
            body=cst.IndentedBlock(body=[inner.with_changes(leading_lines=[])]),
            leading_lines=loop.leading_lines,
        )
        return Patch.unsafe(
            {loop: block},
            title=f"Invalidate the written keys with `BulkInvalidation` as `{sibling.name.value}` does",
            imports=[ImportSpec("auditlint.runtime", "BulkInvalidation")],
        )
