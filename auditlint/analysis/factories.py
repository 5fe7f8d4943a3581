"""What a module-level call builds (AL501): the one table of known client, pool, engine and
connection factories, the conventional cheap objects that stay silent, and the name and
`__init__` signs of a project class that plays a service role.

Entries are qualified names as `FileContext.qualname` spells them; a trailing `.*` in a user
entry (rule options) matches everything under that prefix.
"""

from __future__ import annotations

import re
from typing import Callable, Iterable, Optional

import libcst as cst

from auditlint.analysis.walk import iter_descendants

# Callables the analysis takes from the rule, so it does not depend on FileContext itself.
QualnameFn = Callable[[cst.CSTNode], Optional[str]]
NameTest = Callable[[str], bool]

#: Qualified callee -> True when a `lazy(...)` / accessor fix is sound for it. Factories whose
#: result must be awaited or entered before use (asyncpg pools) are reported without a fix.
KNOWN_FACTORIES: dict[str, bool] = {
    # Redis
    "redis.Redis": True,
    "redis.StrictRedis": True,
    "redis.from_url": True,
    "redis.Redis.from_url": True,
    "redis.StrictRedis.from_url": True,
    "redis.client.Redis": True,
    "redis.client.StrictRedis": True,
    "redis.ConnectionPool": True,
    "redis.ConnectionPool.from_url": True,
    "redis.BlockingConnectionPool": True,
    "redis.RedisCluster": True,
    "redis.cluster.RedisCluster": True,
    "redis.sentinel.Sentinel": True,
    "redis.asyncio.Redis": True,
    "redis.asyncio.from_url": True,
    "redis.asyncio.Redis.from_url": True,
    "redis.asyncio.ConnectionPool": True,
    "redis.asyncio.ConnectionPool.from_url": True,
    "aioredis.from_url": True,
    "aioredis.Redis": True,
    "aioredis.Redis.from_url": True,
    # SQL engines, pools and connections
    "sqlalchemy.create_engine": True,
    "sqlalchemy.engine.create_engine": True,
    "sqlalchemy.engine_from_config": True,
    "sqlalchemy.ext.asyncio.create_async_engine": True,
    "sqlalchemy.orm.Session": True,
    "sqlmodel.create_engine": True,
    "asyncpg.create_pool": False,
    "asyncpg.pool.create_pool": False,
    "psycopg_pool.ConnectionPool": True,
    "psycopg_pool.AsyncConnectionPool": True,
    "psycopg2.connect": True,
    "psycopg2.pool.SimpleConnectionPool": True,
    "psycopg2.pool.ThreadedConnectionPool": True,
    "psycopg.connect": True,
    "psycopg.Connection.connect": True,
    "pymysql.connect": True,
    "MySQLdb.connect": True,
    "mysql.connector.connect": True,
    "mysql.connector.pooling.MySQLConnectionPool": True,
    "cx_Oracle.connect": True,
    "oracledb.connect": True,
    "oracledb.create_pool": True,
    "pyodbc.connect": True,
    "clickhouse_driver.Client": True,
    "cassandra.cluster.Cluster": True,
    "neo4j.GraphDatabase.driver": True,
    # Document stores, search, queues, object storage
    "pymongo.MongoClient": True,
    "pymongo.mongo_client.MongoClient": True,
    "motor.motor_asyncio.AsyncIOMotorClient": True,
    "mongoengine.connect": True,
    "elasticsearch.Elasticsearch": True,
    "elasticsearch.AsyncElasticsearch": True,
    "opensearchpy.OpenSearch": True,
    "kafka.KafkaProducer": True,
    "kafka.KafkaConsumer": True,
    "confluent_kafka.Producer": True,
    "confluent_kafka.Consumer": True,
    "pika.BlockingConnection": True,
    "boto3.client": True,
    "boto3.resource": True,
    "minio.Minio": True,
    "google.cloud.storage.Client": True,
    "google.cloud.bigquery.Client": True,
    "google.cloud.firestore.Client": True,
    "google.cloud.pubsub_v1.PublisherClient": True,
    "google.cloud.pubsub_v1.SubscriberClient": True,
    "pymemcache.client.base.Client": True,
    "pymemcache.Client": True,
    "pymemcache.client.hash.HashClient": True,
    "memcache.Client": True,
    "pylibmc.Client": True,
    "influxdb_client.InfluxDBClient": True,
    "hvac.Client": True,
    # HTTP and RPC clients
    "requests.Session": True,
    "requests.session": True,
    "requests.sessions.Session": True,
    "httpx.Client": True,
    "httpx.AsyncClient": True,
    "aiohttp.ClientSession": True,
    "urllib3.PoolManager": True,
    "grpc.insecure_channel": True,
    "grpc.secure_channel": True,
    "grpc.aio.insecure_channel": True,
    "grpc.aio.secure_channel": True,
    "openai.OpenAI": True,
    "openai.AsyncOpenAI": True,
    "anthropic.Anthropic": True,
    "anthropic.AsyncAnthropic": True,
    "slack_sdk.WebClient": True,
    "smtplib.SMTP": True,
    "smtplib.SMTP_SSL": True,
    "paramiko.SSHClient": True,
    # Processes and threads started on construction
    "multiprocessing.Pool": True,
    "multiprocessing.pool.Pool": True,
    "multiprocessing.pool.ThreadPool": True,
    "multiprocessing.Manager": True,
}

#: Conventional module-level objects that are cheap and meant to live at import time.
CHEAP: frozenset[str] = frozenset(
    {
        "logging.getLogger",
        "logging.Logger",
        "structlog.get_logger",
        "structlog.getLogger",
        "structlog.stdlib.get_logger",
        "typing.TypeVar",
        "typing_extensions.TypeVar",
        "typing.ParamSpec",
        "typing_extensions.ParamSpec",
        "typing.NewType",
        "typing.NamedTuple",
        "re.compile",
        "regex.compile",
        "collections.namedtuple",
        "enum.Enum",
        "enum.IntEnum",
        "enum.StrEnum",
        "enum.Flag",
        "enum.IntFlag",
        "fastapi.APIRouter",
        "fastapi.FastAPI",
        "fastapi.routing.APIRouter",
        "flask.Flask",
        "flask.Blueprint",
        "starlette.applications.Starlette",
        "starlette.routing.Router",
        "contextvars.ContextVar",
        "threading.local",
        "threading.Lock",
        "threading.RLock",
        "sqlalchemy.orm.sessionmaker",
        "sqlalchemy.orm.scoped_session",
    }
)

#: Settings objects read from the environment; silent unless `report-settings` is on.
SETTINGS_FACTORIES: frozenset[str] = frozenset(
    {"environ.Env", "dynaconf.Dynaconf", "decouple.AutoConfig", "decouple.Config"}
)
SETTINGS_BASES: frozenset[str] = frozenset(
    {"pydantic.BaseSettings", "pydantic_settings.BaseSettings", "pydantic.v1.BaseSettings"}
)
_SETTINGS_NAME = re.compile(r"(?:Settings|Config|Configuration)$")

#: Class-name endings that say "this object talks to the outside world or owns a resource".
ROLE_SUFFIXES: tuple[str, ...] = (
    "Controller",
    "Service",
    "Client",
    "Repository",
    "Repo",
    "Manager",
    "Pool",
    "Engine",
    "Session",
    "Connection",
    "Connector",
    "Gateway",
    "Producer",
    "Consumer",
    "Publisher",
    "Dao",
    "DAO",
)

#: Base classes whose instances are data or enumerations, never services.
DATA_BASES: frozenset[str] = frozenset(
    {
        "enum.Enum",
        "enum.IntEnum",
        "enum.StrEnum",
        "enum.Flag",
        "enum.IntFlag",
        "typing.NamedTuple",
        "typing.TypedDict",
        "typing_extensions.TypedDict",
        "pydantic.BaseModel",
    }
)
_DATACLASS_DECORATORS: frozenset[str] = frozenset(
    {
        "dataclasses.dataclass",
        "attr.s",
        "attr.attrs",
        "attr.define",
        "attr.frozen",
        "attrs.define",
        "attrs.frozen",
        "pydantic.dataclasses.dataclass",
    }
)

#: Calls in an `__init__` that open something or start work: the instance is a live resource.
_INIT_IO_CALLS: frozenset[str] = frozenset(
    {
        "socket.socket",
        "socket.create_connection",
        "subprocess.Popen",
        "subprocess.run",
        "subprocess.check_output",
        "asyncio.create_task",
        "asyncio.ensure_future",
        "asyncio.open_connection",
        "urllib.request.urlopen",
        "sqlite3.connect",
        "shelve.open",
        "dbm.open",
    }
)
#: Method names that connect, open or start, whatever the receiver.
_INIT_IO_METHODS: frozenset[str] = frozenset(
    {
        "connect",
        "start",
        "open",
        "create_task",
        "ensure_future",
        "start_soon",
        "run_forever",
        "login",
        "listen",
    }
)
#: Calls a trivial `__init__` may make: building empty containers, locks, `super().__init__`.
_TRIVIAL_CALLS: frozenset[str] = frozenset(
    {"dict", "list", "set", "tuple", "frozenset", "str", "int", "float", "bool", "object", "super"}
)


def matches(qualname: str, entries: Iterable[str]) -> bool:
    """True when `qualname` is one of `entries` (an entry `pkg.*` matches anything under `pkg`)."""
    for entry in entries:
        if entry == qualname or (entry.endswith(".*") and qualname.startswith(entry[:-1])):
            return True
    return False


#: Role endings also common on cheap in-process registries (`EventManager` holding a list):
#: a class so named is a service only when its `__init__` does more than store values.
WEAK_ROLE_SUFFIXES: tuple[str, ...] = ("Manager",)


def has_role_suffix(name: str) -> bool:
    return name.endswith(ROLE_SUFFIXES)


def has_strong_role_suffix(name: str) -> bool:
    """The name alone says service (`PatientController`, `BillingService`)."""
    return has_role_suffix(name) and not name.endswith(WEAK_ROLE_SUFFIXES)


def is_settings_name(name: str) -> bool:
    return _SETTINGS_NAME.search(name) is not None


def factory_trigger_words() -> tuple[str, ...]:
    """Words one of which a file must contain for AL501 to look at it (the engine's prefilter)."""
    words = {q.rsplit(".", 1)[-1] for q in KNOWN_FACTORIES}
    words.update(ROLE_SUFFIXES)
    # Lower-case role words catch user factories (`make_pool`, `get_client`) that the
    # `extend-factories` option adds: the prefilter cannot see rule options.
    words.update(s.lower() for s in ROLE_SUFFIXES)
    words.update(("__init__", "Settings", "Config", "Env", "Dynaconf"))
    return tuple(sorted(words))


def is_literal(node: cst.BaseExpression) -> bool:
    """A constant: numbers, plain strings, None/True/False, and containers of those."""
    if isinstance(node, (cst.Integer, cst.Float, cst.Imaginary, cst.SimpleString, cst.ConcatenatedString)):
        return True
    if isinstance(node, cst.Name):
        return node.value in ("None", "True", "False")
    if isinstance(node, cst.UnaryOperation) and isinstance(node.operator, cst.Minus):
        return is_literal(node.expression)
    if isinstance(node, (cst.Tuple, cst.List, cst.Set)):
        return all(isinstance(el, cst.Element) and is_literal(el.value) for el in node.elements)
    if isinstance(node, cst.Dict):
        return all(
            isinstance(el, cst.DictElement) and is_literal(el.key) and is_literal(el.value)
            for el in node.elements
        )
    return False


def init_of(cls: cst.ClassDef) -> Optional[cst.FunctionDef]:
    body = cls.body.body if isinstance(cls.body, cst.IndentedBlock) else ()
    for stmt in body:
        if isinstance(stmt, cst.FunctionDef) and stmt.name.value == "__init__":
            return stmt
    return None


def is_data_class(cls: cst.ClassDef, qualname: QualnameFn) -> bool:
    """A dataclass/attrs class or a subclass of an Enum, NamedTuple, TypedDict or BaseModel."""
    for dec in cls.decorators:
        target = dec.decorator.func if isinstance(dec.decorator, cst.Call) else dec.decorator
        if qualname(target) in _DATACLASS_DECORATORS:
            return True
    return any(qualname(base.value) in DATA_BASES for base in cls.bases)


def is_settings_class(cls: cst.ClassDef, qualname: QualnameFn) -> bool:
    return any(qualname(base.value) in SETTINGS_BASES for base in cls.bases)


def init_call_names(init: cst.FunctionDef) -> list[tuple[cst.Call, Optional[str]]]:
    """Every call in an `__init__` body with its method name (None for plain callees)."""
    out: list[tuple[cst.Call, Optional[str]]] = []
    for node in iter_descendants(init.body, into_scopes=False):
        if isinstance(node, cst.Call):
            method = node.func.attr.value if isinstance(node.func, cst.Attribute) else None
            out.append((node, method))
    return out


def init_does_io(
    init: cst.FunctionDef, qualname: QualnameFn, factories: Iterable[str], is_service_class: NameTest
) -> bool:
    """True when the `__init__` connects, opens, or starts threads, processes or tasks."""
    entries = tuple(factories)
    for call, method in init_call_names(init):
        if method in _INIT_IO_METHODS:
            return True
        target = qualname(call.func)
        if target is not None and (target in _INIT_IO_CALLS or matches(target, entries)):
            return True
        if isinstance(call.func, cst.Name):
            if call.func.value == "open" and target is None:
                return True
            if is_service_class(call.func.value):
                return True
    return False


def init_is_trivial(init: Optional[cst.FunctionDef]) -> bool:
    """An absent `__init__`, or one that only stores values and builds empty containers."""
    if init is None:
        return True
    for call, _method in init_call_names(init):
        func = call.func
        if isinstance(func, cst.Name) and func.value in _TRIVIAL_CALLS:
            continue
        if (
            isinstance(func, cst.Attribute)
            and func.attr.value == "__init__"
            and isinstance(func.value, cst.Call)
            and isinstance(func.value.func, cst.Name)
            and func.value.func.value == "super"
        ):
            continue
        return False
    return True
