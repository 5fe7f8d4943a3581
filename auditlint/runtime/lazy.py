"""`lazy(factory, *args, **kwargs)`: a thread-safe, fork-aware proxy built on first use.

It replaces import-time singletons (`client = Client()` at module level): the object is built
once, by whichever thread touches it first, and again in a child process after `os.fork()`.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

__all__ = ["is_built", "lazy", "reset", "resolve"]

T = TypeVar("T")

_UNSET: Any = object()


class _LazyProxy:
    """Forwards every attribute, calls and the common protocols to the built object.

    Attribute access goes through `__getattribute__` (not `__getattr__`, whose failed lookup
    first costs an exception on every access), and the proxy's own state lives in slots read
    through their descriptors. `__class__` is forwarded too, so `isinstance(proxy, Cls)` holds
    (and builds the object); `type(proxy)` and `proxy is obj` still see the proxy: use
    `resolve(proxy)` where identity or the exact type matters.
    """

    __slots__ = ("__weakref__", "_args", "_builder", "_factory", "_lock", "_obj")

    def __init__(self, factory: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        _set_factory(self, factory)
        _set_args(self, (args, kwargs))
        _set_lock(self, threading.RLock())
        _set_builder(self, None)
        _set_obj(self, _UNSET)
        _live[id(self)] = self

    def __getattribute__(self, name: str) -> Any:
        obj = _get_obj(self)
        if obj is _UNSET:
            obj = _build(self)
        return getattr(obj, name)

    def __setattr__(self, name: str, value: Any) -> None:
        setattr(_target(self), name, value)

    def __delattr__(self, name: str) -> None:
        delattr(_target(self), name)

    def __dir__(self) -> list[str]:
        return dir(_target(self))

    def __repr__(self) -> str:
        obj = _get_obj(self)
        if obj is _UNSET:
            return f"<lazy {_get_factory(self)!r} (not built)>"
        return repr(obj)

    def __str__(self) -> str:
        return str(_target(self))

    def __bool__(self) -> bool:
        return bool(_target(self))

    def __len__(self) -> int:
        return len(_target(self))

    def __iter__(self) -> Iterator[Any]:
        return iter(_target(self))

    def __contains__(self, item: object) -> bool:
        return item in _target(self)

    def __getitem__(self, key: Any) -> Any:
        return _target(self)[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        _target(self)[key] = value

    def __delitem__(self, key: Any) -> None:
        del _target(self)[key]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return _target(self)(*args, **kwargs)

    def __enter__(self) -> Any:
        return _target(self).__enter__()

    def __exit__(self, *exc_info: Any) -> Any:
        return _target(self).__exit__(*exc_info)

    async def __aenter__(self) -> Any:
        return await _target(self).__aenter__()

    async def __aexit__(self, *exc_info: Any) -> Any:
        return await _target(self).__aexit__(*exc_info)

    def __eq__(self, other: object) -> bool:
        return bool(_target(self) == resolve(other))

    def __ne__(self, other: object) -> bool:
        return bool(_target(self) != resolve(other))

    def __lt__(self, other: object) -> bool:
        return bool(_target(self) < resolve(other))

    def __le__(self, other: object) -> bool:
        return bool(_target(self) <= resolve(other))

    def __gt__(self, other: object) -> bool:
        return bool(_target(self) > resolve(other))

    def __ge__(self, other: object) -> bool:
        return bool(_target(self) >= resolve(other))

    def __hash__(self) -> int:
        return hash(_target(self))


def _slot(name: str) -> tuple[Callable[[_LazyProxy], Any], Callable[[_LazyProxy, Any], None]]:
    descriptor = _LazyProxy.__dict__[name]
    return descriptor.__get__, descriptor.__set__


_get_obj, _set_obj = _slot("_obj")
_get_factory, _set_factory = _slot("_factory")
_get_args, _set_args = _slot("_args")
_get_lock, _set_lock = _slot("_lock")
_get_builder, _set_builder = _slot("_builder")

_live: weakref.WeakValueDictionary[int, _LazyProxy] = weakref.WeakValueDictionary()


def _build(proxy: _LazyProxy) -> Any:
    # Double-checked: callers read the slot without the lock; only the first users get here.
    with _get_lock(proxy):
        obj = _get_obj(proxy)
        if obj is not _UNSET:
            return obj
        if _get_builder(proxy) == threading.get_ident():
            raise RuntimeError(f"lazy({_get_factory(proxy)!r}) was used while it was being built")
        _set_builder(proxy, threading.get_ident())
        try:
            args, kwargs = _get_args(proxy)
            obj = _get_factory(proxy)(*args, **kwargs)
        finally:
            _set_builder(proxy, None)
        _set_obj(proxy, obj)
        return obj


def _target(proxy: _LazyProxy) -> Any:
    obj = _get_obj(proxy)
    return _build(proxy) if obj is _UNSET else obj


def lazy(factory: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """A proxy that builds `factory(*args, **kwargs)` on first use and then forwards to it.

    Building happens once even when many threads race for it; a factory that raises is
    tried again on the next use. After `os.fork()` the child builds its own object on first
    use: the parent's is dropped there (not closed, since a socket it holds is still the
    parent's). Typed as `T` so code using it keeps its types.
    """
    return cast(T, _LazyProxy(factory, args, kwargs))


def resolve(obj: T) -> T:
    """The object behind a `lazy` proxy (building it if needed); anything else unchanged."""
    # type() and not isinstance(): the proxy forwards __class__, isinstance would build it.
    if type(obj) is _LazyProxy:
        return cast(T, _target(cast(_LazyProxy, obj)))
    return obj


def reset(obj: object) -> None:
    """Drop the built object so the next use builds a new one (tests, reconfiguration)."""
    if type(obj) is not _LazyProxy:
        raise TypeError(f"reset() takes a lazy proxy, not {type(obj).__name__}")
    with _get_lock(obj):
        _set_obj(obj, _UNSET)


def is_built(obj: object) -> bool:
    """True once the proxy has built its object (and not been reset since)."""
    if type(obj) is not _LazyProxy:
        raise TypeError(f"is_built() takes a lazy proxy, not {type(obj).__name__}")
    return _get_obj(obj) is not _UNSET


def _after_fork_in_child() -> None:
    for proxy in list(_live.values()):
        # The parent's lock may have been held by a thread that does not exist in the child.
        _set_lock(proxy, threading.RLock())
        _set_builder(proxy, None)
        _set_obj(proxy, _UNSET)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
