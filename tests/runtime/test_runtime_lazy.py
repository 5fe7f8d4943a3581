"""lazy(): built on first use, once under racing threads, again in a forked child."""

from __future__ import annotations

import asyncio
import os
import threading
import time
from typing import Any

import pytest

from auditlint.runtime import is_built, lazy, reset, resolve


class Controller:
    builds = 0
    lock = threading.Lock()

    def __init__(self, name: str, *, slow: float = 0.0) -> None:
        time.sleep(slow)  # widens the race window for the threads test
        with Controller.lock:
            Controller.builds += 1
        self.name = name
        self.pid = os.getpid()
        self.items = [1, 2, 3]

    def greet(self, who: str) -> str:
        return f"{self.name} greets {who}"


@pytest.fixture(autouse=True)
def _count_from_zero() -> None:
    Controller.builds = 0


def test_built_on_first_use_only() -> None:
    proxy = lazy(Controller, "patients")
    assert Controller.builds == 0 and not is_built(proxy)
    assert "not built" in repr(proxy)
    assert proxy.greet("ops") == "patients greets ops"
    assert Controller.builds == 1 and is_built(proxy)
    assert proxy.name == "patients"
    assert Controller.builds == 1


def test_exactly_once_under_sixteen_racing_threads() -> None:
    proxy = lazy(Controller, "raced", slow=0.05)
    barrier = threading.Barrier(16)
    seen: list[int] = []

    def use() -> None:
        barrier.wait()
        seen.append(id(resolve(proxy)))

    threads = [threading.Thread(target=use) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert Controller.builds == 1
    assert len(seen) == 16 and len(set(seen)) == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only")
def test_rebuilt_in_a_forked_child() -> None:
    proxy = lazy(Controller, "forked")
    parent_pid = proxy.pid
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(read_end)
            report = f"{int(is_built(proxy))} {proxy.pid} {Controller.builds}"
            os.write(write_end, report.encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        built_before_use, child_pid, builds = pipe.read().split()
    os.waitpid(pid, 0)
    assert built_before_use == "0"
    assert int(child_pid) == pid != parent_pid
    assert int(builds) == 2  # the parent's build, inherited as a count, plus the child's own
    assert proxy.pid == parent_pid  # the parent keeps its object


def test_reset_rebuilds_on_next_use() -> None:
    proxy = lazy(Controller, "reset")
    first = resolve(proxy)
    reset(proxy)
    assert not is_built(proxy)
    assert resolve(proxy) is not first
    assert Controller.builds == 2
    with pytest.raises(TypeError):
        reset(first)


def test_forwards_protocols() -> None:
    items: dict[str, int] = lazy(dict, a=1, b=2)
    assert len(items) == 2 and "a" in items and sorted(items) == ["a", "b"]
    items["c"] = 3
    del items["a"]
    assert items == {"b": 2, "c": 3} and items != {}
    assert bool(lazy(list)) is False
    assert hash(lazy(str, "x")) == hash("x")
    assert lazy(int, 3) < 4 and lazy(int, 3) >= lazy(int, 3)
    assert lazy(len, "abc") == 3  # a callable result compares like the value itself
    assert lazy(lambda: len)("abcd") == 4
    assert str(lazy(str, "text")) == "text"

    proxy: Any = lazy(Controller, "attrs")
    proxy.extra = 5
    assert resolve(proxy).extra == 5
    del proxy.extra
    assert not hasattr(proxy, "extra")
    assert "greet" in dir(proxy)
    assert repr(proxy).startswith("<")
    assert isinstance(proxy, Controller)  # through the forwarded __class__
    assert type(proxy) is not Controller and proxy is not resolve(proxy)  # documented


def test_context_managers_both_kinds() -> None:
    with lazy(open, os.devnull) as handle:
        assert not handle.closed

    class Session:
        async def __aenter__(self) -> str:
            return "entered"

        async def __aexit__(self, *exc: object) -> None:
            return None

    async def main() -> str:
        async with lazy(Session) as value:
            return str(value)

    assert asyncio.run(main()) == "entered"


def test_a_factory_that_uses_its_own_proxy_fails_clearly() -> None:
    proxy: object = None

    def factory() -> object:
        return proxy.anything  # type: ignore[attr-defined]

    proxy = lazy(factory)
    with pytest.raises(RuntimeError, match="being built"):
        resolve(proxy)


def test_a_failed_build_is_retried() -> None:
    attempts = []

    def flaky() -> str:
        attempts.append(1)
        if len(attempts) == 1:
            raise ConnectionError("first try")
        return "ok"

    proxy = lazy(flaky)
    with pytest.raises(ConnectionError):
        str(proxy)
    assert str(proxy) == "ok" and len(attempts) == 2
