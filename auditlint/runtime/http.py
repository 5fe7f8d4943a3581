"""`with_default_timeout(session, seconds)`: a requests-like session that never waits forever.

It wraps the instance's `request` method, through which `get`, `post`, ... all pass.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, TypeVar, Union

from .metrics import metrics

__all__ = ["with_default_timeout"]

S = TypeVar("S")
Timeout = Union[float, tuple[float, float]]


def _is_timeout(error: BaseException) -> bool:
    # requests, urllib3, httpx and the stdlib all name their timeout errors "...Timeout...".
    return isinstance(error, TimeoutError) or any("Timeout" in c.__name__ for c in type(error).__mro__)


class _DefaultTimeout:
    """The `request` that `with_default_timeout` installs on a session instance."""

    __slots__ = ("__wrapped__", "_position", "seconds")

    def __init__(self, request: Callable[..., Any], seconds: Timeout) -> None:
        self.__wrapped__ = request
        self.seconds = seconds
        self._position = _timeout_position(request)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        given = kwargs.get("timeout")
        if given is None and (self._position is None or len(args) <= self._position):
            kwargs["timeout"] = self.seconds
            metrics.inc("http.default_timeout_applied")
        metrics.inc("http.requests")
        try:
            return self.__wrapped__(*args, **kwargs)
        except Exception as error:
            if _is_timeout(error):
                metrics.inc("http.timeouts")
            raise


def _timeout_position(request: Callable[..., Any]) -> int | None:
    try:
        parameters = list(inspect.signature(request).parameters.values())
    except (TypeError, ValueError):
        return None
    for index, parameter in enumerate(parameters):
        if parameter.name == "timeout":
            if parameter.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD:
                return index
            return None
    return None


def with_default_timeout(session: S, seconds: Timeout) -> S:
    """Make every call of `session` use `timeout=seconds` unless the caller passes a timeout.

    Works for `requests.Session` and anything whose verbs go through `session.request(...)`
    with a `timeout` keyword. `seconds` may be a number or a `(connect, read)` tuple. A
    caller's `timeout=None` counts as not given, because None means "wait forever" to
    requests. Applying it again updates the default instead of wrapping twice. Returns the
    session. Records `http.requests`, `http.default_timeout_applied` and `http.timeouts`.
    """
    current = getattr(session, "request", None)
    if not callable(current):
        raise TypeError(f"{type(session).__name__} has no request() method to give a default timeout")
    if isinstance(current, _DefaultTimeout):
        current.seconds = seconds
        return session
    try:
        session.request = _DefaultTimeout(current, seconds)  # type: ignore[attr-defined]
    except AttributeError:
        raise TypeError(f"cannot set attributes on {type(session).__name__}") from None
    return session
