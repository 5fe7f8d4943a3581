"""Cache vocabulary (AL701): which names look like caches or data stores, which calls write to a
store and which invalidate a cache, and which imports and decorators put a cache in sight.

Pure questions about names and nodes; the rule adds what it learns from bindings and classes.
"""

from __future__ import annotations

import re
from typing import Callable, Iterator, Optional

import libcst as cst

from auditlint.analysis.walk import iter_descendants

QualnameFn = Callable[[cst.CSTNode], Optional[str]]

#: A name containing one of these words is taken for a cache (`self._cache`, `redis_client`).
CACHE_WORDS: tuple[str, ...] = ("cache", "redis", "memcache")
#: Top-level modules whose import means the module works with a cache.
CACHE_MODULES: frozenset[str] = frozenset(
    {
        "redis",
        "aioredis",
        "cachetools",
        "pymemcache",
        "memcache",
        "pylibmc",
        "diskcache",
        "aiocache",
        "flask_caching",
        "django_redis",
        "dogpile",
        "cachelib",
    }
)
CACHE_QUALNAME_PREFIXES: tuple[str, ...] = ("django.core.cache", "django.views.decorators.cache")
#: Decorators that memoise a function; `f.cache_clear()` invalidates them.
CACHE_DECORATORS: frozenset[str] = frozenset(
    {
        "functools.lru_cache",
        "functools.cache",
        "cachetools.cached",
        "cachetools.func.ttl_cache",
        "cachetools.func.lru_cache",
        "cachetools.func.lfu_cache",
        "async_lru.alru_cache",
        "aiocache.cached",
    }
)

#: Methods that drop or refresh an entry when called on a cache.
INVALIDATE_ON_CACHE: frozenset[str] = frozenset(
    {
        "delete",
        "delete_many",
        "delete_multi",
        "unlink",
        "pop",
        "remove",
        "discard",
        "clear",
        "invalidate",
        "evict",
        "expire",
        "expireat",
        "pexpire",
        "set",
        "set_many",
        "setex",
        "mset",
        "hdel",
        "hset",
        "cache_clear",
        "flushdb",
        "flushall",
        "__delitem__",
    }
)
_INVALIDATE_WORDS = frozenset({"invalidate", "invalidates", "invalidation", "evict", "purge", "bust"})
_CACHE_VERBS = frozenset(
    {
        "clear",
        "invalidate",
        "evict",
        "delete",
        "del",
        "drop",
        "purge",
        "bust",
        "reset",
        "refresh",
        "update",
        "set",
        "remove",
        "flush",
        "expire",
        "pop",
        "sync",
        "put",
        "store",
        "write",
    }
)

#: Write methods whose plain name is ambiguous (`dict.update`): they need a store-like receiver.
WRITE_EXACT: frozenset[str] = frozenset({"update", "delete", "save", "upsert", "insert"})
WRITE_PREFIXES: tuple[str, ...] = ("update_", "delete_", "upsert_", "bulk_", "insert_", "save_")
#: Write methods no container or progress bar has: a write whatever the receiver is called.
WRITE_UNAMBIGUOUS: frozenset[str] = frozenset(
    {
        "update_one",
        "update_many",
        "insert_one",
        "insert_many",
        "delete_one",
        "replace_one",
        "bulk_write",
        "bulk_create",
        "bulk_update",
        "bulk_insert_mappings",
        "bulk_update_mappings",
        "bulk_save_objects",
        "put_item",
        "update_item",
        "delete_item",
        "batch_write_item",
        "upsert",
    }
)
EXECUTE_METHODS: frozenset[str] = frozenset({"execute", "executemany", "exec_driver_sql"})
#: Words of a receiver's name that say it is a database, repository or remote store.
STORE_WORDS: frozenset[str] = frozenset(
    {
        "repo",
        "repos",
        "repository",
        "repositories",
        "store",
        "storage",
        "datastore",
        "dao",
        "dal",
        "db",
        "database",
        "model",
        "models",
        "session",
        "crud",
        "objects",
        "orm",
        "mongo",
        "dynamo",
        "dynamodb",
        "client",
        "conn",
        "connection",
        "cursor",
        "cur",
        "tx",
        "txn",
        "transaction",
        "uow",
        "persistence",
        "gateway",
        "mapper",
        "es",
        "elastic",
        "elasticsearch",
    }
)
#: The stronger subset for `update_*`-style names: a connection or client may have methods
#: such as `update_settings` that write nothing.
REPOSITORY_WORDS: frozenset[str] = frozenset(
    {
        "repo",
        "repos",
        "repository",
        "repositories",
        "store",
        "storage",
        "datastore",
        "dao",
        "dal",
        "db",
        "database",
        "crud",
        "orm",
        "mongo",
        "dynamo",
        "dynamodb",
        "persistence",
        "gateway",
        "mapper",
        "model",
        "models",
        "objects",
    }
)
#: Query-builder steps: `Model.objects.filter(...).update(...)` is one ORM write.
ORM_STEPS: frozenset[str] = frozenset(
    {"objects", "filter", "filter_by", "where", "query", "exclude", "select_related", "all"}
)
#: SQLAlchemy DML constructs passed to `execute`.
SQLALCHEMY_DML: frozenset[str] = frozenset(
    {
        f"{mod}.{verb}"
        for mod in (
            "sqlalchemy",
            "sqlalchemy.sql",
            "sqlalchemy.sql.expression",
            "sqlalchemy.dialects.postgresql",
            "sqlalchemy.dialects.mysql",
            "sqlalchemy.dialects.sqlite",
            "sqlmodel",
        )
        for verb in ("update", "insert", "delete")
    }
)
HTTP_PREFIXES: tuple[str, ...] = ("requests.", "httpx.", "aiohttp.", "urllib3.")
#: Hooks that run on every ORM save/delete, so an instance `save()` may already invalidate.
ORM_HOOK_WORDS: tuple[str, ...] = (
    "post_save",
    "post_delete",
    "pre_save",
    "after_update",
    "after_insert",
    "listens_for",
)

_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")


def words(identifier: str) -> set[str]:
    """Lower-case words of an identifier: `patientRepo_v2` -> {patient, repo, v, 2}."""
    out: set[str] = set()
    for part in identifier.split("_"):
        out.update(w.lower() for w in _CAMEL.findall(part))
    return out


#: Last words that make a "cache" name about something else: `cache_key`, `cache_timeout`.
_NOT_A_CACHE_TAIL = frozenset(
    {
        "key",
        "keys",
        "control",
        "timeout",
        "ttl",
        "dir",
        "directory",
        "path",
        "size",
        "enabled",
        "disabled",
        "hit",
        "hits",
        "miss",
        "misses",
        "stats",
        "info",
        "version",
        "prefix",
        "name",
        "config",
        "settings",
        "url",
        "property",
        "ok",
        "mode",
        "policy",
    }
)


def is_cache_name(identifier: str) -> bool:
    """`cache`, `_cache`, `redis_client`, `patientCache`; not `cache_key` or `cache_timeout`."""
    lowered = identifier.lower()
    if not any(w in lowered for w in CACHE_WORDS):
        return False
    found = _CAMEL.findall(identifier.split(".")[-1].split("_")[-1] or identifier)
    return not (found and found[-1].lower() in _NOT_A_CACHE_TAIL)


def chain_identifiers(expr: cst.BaseExpression) -> list[str]:
    """Identifiers along a receiver chain: `self.redis.pipeline()` -> [pipeline, redis, self]."""
    out: list[str] = []
    node: cst.BaseExpression = expr
    while True:
        if isinstance(node, cst.Call):
            node = node.func
        elif isinstance(node, cst.Attribute):
            out.append(node.attr.value)
            node = node.value
        elif isinstance(node, cst.Subscript):
            node = node.value
        else:
            if isinstance(node, cst.Name):
                out.append(node.value)
            return out


def is_cache_module(qualname: str) -> bool:
    return qualname.split(".", 1)[0] in CACHE_MODULES or qualname.startswith(CACHE_QUALNAME_PREFIXES)


def is_invalidating_name(name: str) -> bool:
    """A function or method whose name says it invalidates: `invalidate_patient`, `evict`,
    `cache_clear`, `refresh_cache`, `BulkInvalidation`, `invalidate_many`."""
    if name in ("cache_clear", "unlink", "delete_many", "BulkInvalidation"):
        return True
    found = words(name)
    if found & _INVALIDATE_WORDS or any(w.startswith(("invalidat", "evict")) for w in found):
        return True
    return "cache" in found and bool(found & _CACHE_VERBS)


def last_identifier(expr: cst.BaseExpression) -> Optional[str]:
    """`repo` for `self.patient_repo` -> `patient_repo`; the callee name for a call receiver."""
    while isinstance(expr, cst.Call):
        expr = expr.func
    if isinstance(expr, cst.Attribute):
        return expr.attr.value
    if isinstance(expr, cst.Name):
        return expr.value
    return None


def last_word(identifier: str) -> str:
    """`repo` for `patient_repo` and `patientRepo`."""
    parts = [p for p in identifier.split("_") if p]
    if not parts:
        return ""
    found: list[str] = _CAMEL.findall(parts[-1])
    return (found[-1] if found else parts[-1]).lower()


#: Plural store words that, after a qualifier, name a collection of things rather than the
#: store: `related_models.update(...)` is a set's `update`, `Model.objects` is the manager.
_COLLECTION_PLURALS = frozenset({"models", "objects"})


def is_store_name(expr: cst.BaseExpression, *, repository: bool = False) -> bool:
    """The receiver's name ends in a store word: `self.patient_repo`, `db`, `session`; not
    `connection_kwargs`, `db_config` or `related_models` (a collection of models).
    `repository=True` asks for the stronger subset."""
    ident = last_identifier(expr)
    if ident is None:
        return False
    word = last_word(ident)
    if word in _COLLECTION_PLURALS and word != ident.lower().lstrip("_"):
        return False
    return word in (REPOSITORY_WORDS if repository else STORE_WORDS)


def is_orm_chain(expr: cst.BaseExpression) -> bool:
    """`Model.objects.filter(...)`, `session.query(M).filter_by(...)`: a query being built."""
    node = expr
    while isinstance(node, (cst.Call, cst.Attribute)):
        if isinstance(node, cst.Call):
            node = node.func
            continue
        if node.attr.value in ORM_STEPS:
            return True
        node = node.value
    return False


def sqlalchemy_dml(expr: cst.BaseExpression, qualname: QualnameFn) -> bool:
    """`update(M).where(...).values(...)` and friends, through the whole builder chain."""
    node: cst.BaseExpression = expr
    while True:
        if isinstance(node, cst.Call):
            if qualname(node.func) in SQLALCHEMY_DML:
                return True
            node = node.func
        elif isinstance(node, cst.Attribute):
            node = node.value
        else:
            return False


def decorated_with_cache(fn: cst.FunctionDef, qualname: QualnameFn) -> bool:
    for dec in fn.decorators:
        target = dec.decorator.func if isinstance(dec.decorator, cst.Call) else dec.decorator
        if qualname(target) in CACHE_DECORATORS:
            return True
    return False


def identifiers(node: cst.CSTNode) -> Iterator[str]:
    """Every name and attribute name under `node`, nested scopes included."""
    for child in iter_descendants(node):
        if isinstance(child, cst.Name):
            yield child.value


def load_names(node: cst.CSTNode) -> list[cst.Name]:
    """Names read as variables under `node`: not attribute names, not keyword argument names."""
    skip: set[int] = set()
    out: list[cst.Name] = []
    for child in iter_descendants(node):
        if isinstance(child, cst.Attribute):
            skip.add(id(child.attr))
        elif isinstance(child, cst.Arg) and child.keyword is not None:
            skip.add(id(child.keyword))
        elif isinstance(child, cst.Name) and id(child) not in skip:
            out.append(child)
    return out
