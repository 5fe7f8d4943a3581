"""Standard-library-only helpers that auditlint's fixes rewrite code to use.

Importing this package never imports LibCST, click or any third-party module; integrations
(asyncpg, psycopg, redis, requests, prometheus_client, ...) are recognised by duck typing.
"""

from __future__ import annotations

from .bounded import gather_bounded, map_bounded
from .cache import BulkInvalidation, ainvalidate_many, invalidate_many
from .http import with_default_timeout
from .jobs import AsyncPeriodicJob, JobScheduler, JobStats, PeriodicJob
from .jsonutil import SerializedPayload, json_clone
from .lazy import is_built, lazy, reset, resolve
from .matview import arefresh_materialized_view, refresh_materialized_view
from .metrics import Metrics, export_prometheus, metrics
from .pool import pooled
from .registry import Registry, default_registry, track

__all__ = [
    "AsyncPeriodicJob",
    "BulkInvalidation",
    "JobScheduler",
    "JobStats",
    "Metrics",
    "PeriodicJob",
    "Registry",
    "SerializedPayload",
    "ainvalidate_many",
    "arefresh_materialized_view",
    "default_registry",
    "export_prometheus",
    "gather_bounded",
    "invalidate_many",
    "is_built",
    "json_clone",
    "lazy",
    "map_bounded",
    "metrics",
    "pooled",
    "refresh_materialized_view",
    "reset",
    "resolve",
    "track",
    "with_default_timeout",
]
