"""auditlint: finds and fixes the concurrency, resource and hot-path antipatterns of production
Python services. The public Python API lives here; everything else is internal.

The API is loaded on first use, so `import auditlint.runtime` never pulls in LibCST or click.
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = [
    "Applicability",
    "Edit",
    "Finding",
    "Fix",
    "__version__",
    "fix_source",
    "lint_paths",
    "lint_source",
]

_LAZY = {
    "fix_source": "auditlint.api",
    "lint_paths": "auditlint.api",
    "lint_source": "auditlint.api",
    "Applicability": "auditlint.model",
    "Edit": "auditlint.model",
    "Finding": "auditlint.model",
    "Fix": "auditlint.model",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'auditlint' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
