"""What the behaviour tests, the suite and `benchmarks/audit_table.py` share about the sample
service: where it is, the environment it reads, reachability of the loopback servers, copying
and fixing it with auditlint, seeding and cleaning its database schema and Redis keys."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Optional, Sequence
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[2]
ORIGINAL = ROOT / "fixtures" / "sample_service"
BEHAVIOUR = Path(__file__).resolve().parent / "behaviour.py"
PG_DSN = os.environ.get("AUDITLINT_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")
REDIS_URL = os.environ.get("AUDITLINT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
STYLES = ("stdlib", "runtime")


def _can_connect(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), timeout=1.0
        ):
            return True
    except OSError:
        return False


def unreachable() -> Optional[str]:
    """Why the sample service cannot run here (a server is missing), or None."""
    if not _can_connect(PG_DSN, 5432):
        return (
            f"PostgreSQL is not reachable at {PG_DSN}: start one with trust auth and a `test` database "
            f"(e.g. `docker run -d -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust -e POSTGRES_DB=test "
            f"postgres:16`) or point AUDITLINT_TEST_PG_DSN at one"
        )
    if not _can_connect(REDIS_URL, 6379):
        return (
            f"Redis is not reachable at {REDIS_URL}: start one (e.g. `redis-server --daemonize yes` or "
            f"`docker run -d -p 6379:6379 redis:7`) or point AUDITLINT_TEST_REDIS_URL at one"
        )
    return None


def unique_name(prefix: str = "svc") -> str:
    """A name valid as an SQL identifier and a Redis key prefix that no other run uses."""
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def service_env(schema: str, prefix: str, api_url: str, **settings: object) -> dict[str, str]:
    """The environment the service reads (`billing.config.BillingSettings.from_env`)."""
    env = {
        "BILLING_PG_DSN": PG_DSN,
        "BILLING_PG_SCHEMA": schema,
        "BILLING_REDIS_URL": REDIS_URL,
        "BILLING_REDIS_PREFIX": prefix,
        "BILLING_CLAIMS_API_URL": api_url,
    }
    env.update({f"BILLING_{key.upper()}": str(value) for key, value in settings.items()})
    return env


def copy_service(dest: Path, style: Optional[str] = None) -> Path:
    """Copy the original service to `dest`; with a style, also a `pyproject.toml` selecting it."""
    shutil.copytree(ORIGINAL, dest, ignore=shutil.ignore_patterns("__pycache__", ".auditlint_cache"))
    if style is not None:
        (dest / "pyproject.toml").write_text(f'[tool.auditlint]\nfix-style = "{style}"\n', encoding="utf-8")
    return dest


def auditlint(args: Sequence[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the auditlint command of this interpreter in `cwd`."""
    return subprocess.run(
        [sys.executable, "-m", "auditlint", *args, "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )


def fix_copy(dest: Path, style: str) -> subprocess.CompletedProcess[str]:
    """Copy the service to `dest` and fix the copy with `auditlint --fix --unsafe-fixes`."""
    copy_service(dest, style)
    result = auditlint(["--fix", "--unsafe-fixes", "."], dest)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"auditlint --fix failed in {dest}:\n{result.stdout}\n{result.stderr}")
    return result


def sources(root: Path) -> dict[str, str]:
    """The service's Python files by relative path."""
    return {str(p.relative_to(root)): p.read_text(encoding="utf-8") for p in sorted(root.rglob("*.py"))}


def start_behaviour(root: Path) -> subprocess.Popen[str]:
    """Start the behaviour tests against the service at `root`, in a fresh interpreter."""
    env = dict(os.environ, SAMPLE_SERVICE_ROOT=str(root), PYTHONDONTWRITEBYTECODE="1")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(ROOT),
            str(BEHAVIOUR),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Wait for a process `start_behaviour` started."""
    out, err = proc.communicate(timeout=timeout)
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def run_behaviour(root: Path) -> subprocess.CompletedProcess[str]:
    """Run the behaviour tests against the service at `root`, in a fresh interpreter."""
    return finish(start_behaviour(root))


async def create_schema(schema: str, schema_sql: str) -> None:
    """Create the service's tables (`billing.db.SCHEMA_SQL`) in a schema of their own."""
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        await conn.execute(f'SET search_path TO "{schema}"')
        await conn.execute(schema_sql)
    finally:
        await conn.close()


async def drop_schema(schema: str) -> None:
    import asyncpg

    conn = await asyncpg.connect(PG_DSN)
    try:
        await conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    finally:
        await conn.close()


def flush_prefix(prefix: str) -> None:
    """Delete the Redis keys of one run."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(client.scan_iter(f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


async def seed(
    schema: str, orgs: int, claims_per_org: int, *, tag: str, webhooks_per_org: int = 0, hook_url: str = ""
) -> dict[str, list[int]]:
    """Organisations with pending claims (numbered `<tag>-<org>-<n>`), patients, and webhooks
    (`<hook_url>/hooks/<id>`) for `claim.updated`; returns the ids it made."""
    import asyncpg

    conn = await asyncpg.connect(PG_DSN, server_settings={"search_path": schema})
    made: dict[str, list[int]] = {"orgs": [], "claims": [], "patients": [], "webhooks": []}
    try:
        for o in range(orgs):
            org_id = await conn.fetchval(
                "INSERT INTO organisations (name) VALUES ($1) RETURNING id", f"{tag} org {o}"
            )
            made["orgs"].append(org_id)
            patient_id = await conn.fetchval(
                "INSERT INTO patients (org_id, name, mrn) VALUES ($1, $2, $3) RETURNING id",
                org_id,
                f"Patient {tag} {o}",
                f"{tag}-mrn-{o}",
            )
            made["patients"].append(patient_id)
            for n in range(claims_per_org):
                claim_id = await conn.fetchval(
                    "INSERT INTO claims (org_id, patient_id, claim_number, amount_cents) VALUES ($1, $2, $3, $4) "
                    "RETURNING id",
                    org_id,
                    patient_id,
                    f"{tag}-{o}-{n}",
                    1000 + n,
                )
                made["claims"].append(claim_id)
            for _ in range(webhooks_per_org):
                hook_id = await conn.fetchval(
                    "INSERT INTO webhooks (org_id, url, event_type) VALUES ($1, '', 'claim.updated') RETURNING id",
                    org_id,
                )
                await conn.execute(
                    "UPDATE webhooks SET url = $1 WHERE id = $2", f"{hook_url}/hooks/{hook_id}", hook_id
                )
                made["webhooks"].append(hook_id)
    finally:
        await conn.close()
    return made
