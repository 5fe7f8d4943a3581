"""BulkInvalidation / invalidate_many: bulk writes against real Redis and in-process caches."""

from __future__ import annotations

import asyncio
import functools
import gc
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from auditlint.runtime import BulkInvalidation, ainvalidate_many, invalidate_many, metrics

ROWS = 1_000


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[Any]:
    redis = pytest.importorskip("redis")
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _unlink_calls(client: Any) -> int:
    return int(client.info("commandstats").get("cmdstat_unlink", {}).get("calls", 0))


class Store:
    """A tiny cache-aside store: rows in a dict, cached copies in Redis."""

    def __init__(self, client: Any, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self.rows = {i: f"v1-{i}" for i in range(ROWS)}

    def key(self, i: int) -> str:
        return f"{self.prefix}:row:{i}"

    def warm(self) -> None:
        self.client.mset({self.key(i): value for i, value in self.rows.items()})

    def read(self, i: int) -> str:
        cached = self.client.get(self.key(i))
        if cached is not None:
            return str(cached.decode())
        return self.rows[i]

    def stale(self) -> list[int]:
        return [i for i in self.rows if self.read(i) != self.rows[i]]

    def cleanup(self) -> None:
        self.client.delete(*[self.key(i) for i in self.rows])


def test_bulk_update_leaves_no_stale_key_in_one_round_trip(
    redis_client: Any, unique: str, fresh_metrics: None
) -> None:
    store = Store(redis_client, unique)
    store.warm()
    try:
        calls_before = _unlink_calls(redis_client)
        with BulkInvalidation(redis_client) as inv:
            for i in range(ROWS):
                store.rows[i] = f"v2-{i}"
                inv.add(store.key(i))
            assert store.stale()  # inside the block the cache still serves old rows
        assert store.stale() == []
        assert redis_client.exists(*[store.key(i) for i in range(ROWS)]) == 0
        assert _unlink_calls(redis_client) - calls_before == 1
        assert metrics.counter("cache.invalidated_keys", {"backend": "redis"}) == ROWS
    finally:
        store.cleanup()


def test_an_update_failing_half_way_still_invalidates_what_it_changed(redis_client: Any, unique: str) -> None:
    store = Store(redis_client, unique)
    store.warm()
    try:
        with pytest.raises(RuntimeError, match="row 500"):
            with BulkInvalidation(redis_client) as inv:
                for i in range(ROWS):
                    if i == 500:
                        raise RuntimeError("row 500 violates a constraint")
                    store.rows[i] = f"v2-{i}"
                    inv.add(store.key(i))
        assert store.stale() == []
        assert redis_client.exists(*[store.key(i) for i in range(500)]) == 0
        assert redis_client.exists(*[store.key(i) for i in range(500, ROWS)]) == 500
    finally:
        store.cleanup()


def test_the_antipattern_leaves_stale_keys(redis_client: Any, unique: str) -> None:
    store = Store(redis_client, unique)
    store.warm()
    try:
        for i in range(ROWS):
            store.rows[i] = f"v2-{i}"
        assert len(store.stale()) == ROWS
    finally:
        store.cleanup()


def test_large_batches_are_pipelined_and_del_can_be_chosen(redis_client: Any, unique: str) -> None:
    keys = [f"{unique}:{i}" for i in range(2_500)]
    redis_client.mset(dict.fromkeys(keys, "x"))
    calls_before = _unlink_calls(redis_client)
    assert invalidate_many(redis_client, keys + keys[:10]) == 2_500
    assert _unlink_calls(redis_client) - calls_before == 3  # three chunks, one pipeline
    assert redis_client.exists(*keys) == 0

    redis_client.mset(dict.fromkeys(keys[:10], "x"))
    calls_before = _unlink_calls(redis_client)
    invalidate_many(redis_client, keys[:10], unlink=False)
    assert _unlink_calls(redis_client) == calls_before
    assert redis_client.exists(*keys[:10]) == 0
    assert invalidate_many(redis_client, []) == 0


def test_async_redis_client(redis_url: str, unique: str) -> None:
    pytest.importorskip("redis")
    import redis.asyncio

    async def main() -> None:
        client = redis.asyncio.Redis.from_url(redis_url)
        keys = [f"{unique}:{i}" for i in range(ROWS)]
        try:
            await client.mset(dict.fromkeys(keys, "cached"))
            with pytest.raises(KeyError):
                async with BulkInvalidation(client) as inv:
                    inv.update(keys[:600])
                    raise KeyError("half way")
            assert await client.exists(*keys[:600]) == 0
            assert await client.exists(*keys[600:]) == 400
            assert await ainvalidate_many(client, keys) == ROWS
            assert await client.exists(*keys) == 0
        finally:
            await client.aclose()

    asyncio.run(main())


def test_sync_invalidation_refuses_an_async_client_without_leaking_a_coroutine(redis_url: str) -> None:
    pytest.importorskip("redis")
    import redis.asyncio

    client = redis.asyncio.Redis.from_url(redis_url)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TypeError, match="ainvalidate_many"):
            invalidate_many(client, ["a", "b"])
        gc.collect()
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_dict_and_mapping_caches() -> None:
    cache = {f"user:{i}": i for i in range(10)}
    with BulkInvalidation(cache) as inv:
        inv.add("user:1")
        inv.update(["user:2", "user:3", "missing"])
    assert sorted(cache) == [f"user:{i}" for i in (0, 4, 5, 6, 7, 8, 9)]


def test_cachetools_cache() -> None:
    cachetools = pytest.importorskip("cachetools")
    cache = cachetools.TTLCache(maxsize=100, ttl=60)
    cache.update({"a": 1, "b": 2, "c": 3})
    assert invalidate_many(cache, ["a", "c"]) == 2
    assert dict(cache) == {"b": 2}


def test_functools_cache_is_cleared() -> None:
    calls: list[int] = []

    @functools.lru_cache(maxsize=128)
    def price(item: int) -> int:
        calls.append(item)
        return item * 10

    for item in range(5):
        price(item)
    with BulkInvalidation(price) as inv:
        inv.add((3,))
    assert price.cache_info().currsize == 0
    price(3)
    assert calls.count(3) == 2


class DjangoLikeCache:
    """The shape of Django's cache API that bulk invalidation relies on."""

    def __init__(self) -> None:
        self.data: dict[str, object] = {}
        self.batches: list[list[str]] = []

    def set(self, key: str, value: object) -> None:
        self.data[key] = value

    def delete(self, key: str) -> None:
        self.data.pop(key, None)

    def delete_many(self, keys: Iterable[str]) -> None:
        batch = list(keys)
        self.batches.append(batch)
        for key in batch:
            self.data.pop(key, None)


def test_delete_many_caches_get_one_batch() -> None:
    cache = DjangoLikeCache()
    for i in range(100):
        cache.set(f"k{i}", i)
    with BulkInvalidation(cache) as inv:
        for i in range(0, 100, 2):
            inv.add(f"k{i}")
            inv.add(f"k{i}")
    assert cache.batches == [[f"k{i}" for i in range(0, 100, 2)]]
    assert sorted(cache.data) == sorted(f"k{i}" for i in range(1, 100, 2))


def test_unknown_caches_are_refused() -> None:
    with pytest.raises(TypeError, match="cannot invalidate"):
        BulkInvalidation(object())
