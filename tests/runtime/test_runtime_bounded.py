"""gather_bounded / map_bounded: webhooks to a real server, memory, cancellation, properties."""

from __future__ import annotations

import asyncio
import gc
import json
import threading
import time
import tracemalloc
import warnings
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from auditlint.runtime import gather_bounded, map_bounded, metrics


class WebhookServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), WebhookHandler)
        self.lock = threading.Lock()
        self.in_flight = 0
        self.peak = 0
        self.received: list[int] = []
        self.delay = 0.02


class WebhookHandler(BaseHTTPRequestHandler):
    server: WebhookServer

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with self.server.lock:
            self.server.in_flight += 1
            self.server.peak = max(self.server.peak, self.server.in_flight)
        try:
            time.sleep(self.server.delay)
        finally:
            with self.server.lock:
                self.server.in_flight -= 1
                self.server.received.append(body["id"])
        reply = json.dumps({"ok": body["id"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def webhook_server() -> Iterator[WebhookServer]:
    server = WebhookServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def test_webhook_delivery_is_bounded_and_complete(webhook_server: WebhookServer, fresh_metrics: None) -> None:
    aiohttp = pytest.importorskip("aiohttp")
    url = f"http://127.0.0.1:{webhook_server.server_address[1]}/hook"

    async def main() -> list[int]:
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def deliver(webhook_id: int) -> int:
                async with session.post(url, json={"id": webhook_id}) as response:
                    assert response.status == 200
                    return int((await response.json())["ok"])

            return await map_bounded(deliver, range(1_000), limit=20)

    results = asyncio.run(main())
    assert results == list(range(1_000))
    assert sorted(webhook_server.received) == list(range(1_000))
    assert 1 < webhook_server.peak <= 20
    assert metrics.counter("bounded.tasks_ok") == 1_000
    assert metrics.gauge("bounded.inflight_peak") == 20


def test_the_same_delivery_unbounded_overwhelms_the_server(webhook_server: WebhookServer) -> None:
    aiohttp = pytest.importorskip("aiohttp")
    url = f"http://127.0.0.1:{webhook_server.server_address[1]}/hook"
    webhook_server.delay = 0.2  # long enough for the server to accept everything at once

    async def main() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

            async def deliver(webhook_id: int) -> None:
                async with session.post(url, json={"id": webhook_id}) as response:
                    await response.read()

            await asyncio.gather(*(deliver(i) for i in range(200)))

    asyncio.run(main())
    assert webhook_server.peak > 20  # what the bounded test guards against really happens


def _peak_memory(run: object) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        asyncio.run(run())  # type: ignore[operator]
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_map_bounded_memory_stays_far_below_an_unbounded_gather() -> None:
    n = 100_000

    async def trivial(x: int) -> int:
        return x

    async def bounded() -> None:
        assert len(await map_bounded(trivial, range(n), limit=50)) == n

    async def unbounded() -> None:
        assert len(await asyncio.gather(*(trivial(x) for x in range(n)))) == n

    bounded_peak = _peak_memory(bounded)
    unbounded_peak = _peak_memory(unbounded)
    assert bounded_peak * 5 < unbounded_peak, (bounded_peak, unbounded_peak)


def test_map_bounded_consumes_items_lazily() -> None:
    started = 0
    finished = 0
    worst = 0

    def items() -> Iterator[int]:
        nonlocal worst
        for i in range(500):
            worst = max(worst, started - finished)
            yield i

    async def work(x: int) -> int:
        nonlocal started, finished
        started += 1
        await asyncio.sleep(0)
        finished += 1
        return x * 2

    results = asyncio.run(map_bounded(work, items(), limit=7))
    assert results == [x * 2 for x in range(500)]
    assert worst <= 7


def test_map_bounded_takes_async_iterables() -> None:
    async def source() -> AsyncIterator[int]:
        for i in range(50):
            await asyncio.sleep(0)
            yield i

    async def double(x: int) -> int:
        await asyncio.sleep(0.001 * (x % 3))
        return 2 * x

    assert asyncio.run(map_bounded(double, source(), limit=4)) == [2 * i for i in range(50)]


def test_first_failure_cancels_the_rest_and_closes_unstarted_coroutines() -> None:
    started: list[int] = []
    cancelled: list[int] = []

    async def job(i: int) -> int:
        started.append(i)
        try:
            if i == 2:
                raise ValueError("job 2 failed")
            await asyncio.sleep(1)
            return i
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    async def main() -> None:
        with pytest.raises(ValueError, match="job 2 failed"):
            await gather_bounded(*(job(i) for i in range(100)), limit=5)
        assert asyncio.all_tasks() == {asyncio.current_task()}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(main())
        gc.collect()
    assert sorted(started) == [0, 1, 2, 3, 4]
    assert sorted(cancelled) == [0, 1, 3, 4]
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_cancelling_the_caller_cancels_in_flight_work_and_closes_the_rest() -> None:
    started: list[int] = []

    async def job(i: int) -> None:
        started.append(i)
        await asyncio.sleep(10)

    async def main() -> None:
        call = asyncio.ensure_future(gather_bounded(*(job(i) for i in range(50)), limit=3))
        await asyncio.sleep(0.01)
        call.cancel()
        with pytest.raises(asyncio.CancelledError):
            await call
        assert asyncio.all_tasks() == {asyncio.current_task()}

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        asyncio.run(main())
        gc.collect()
    assert started == [0, 1, 2]
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_gather_bounded_matches_gather_on_details() -> None:
    async def value(x: int) -> int:
        await asyncio.sleep(0)
        return x

    async def main() -> None:
        shared = asyncio.ensure_future(value(7))
        coro = value(3)
        assert await gather_bounded(shared, coro, shared, coro, value(1), limit=2) == [7, 3, 7, 3, 1]
        assert await gather_bounded(limit=3) == []

        async def fails() -> None:
            raise KeyError("k")

        got = await gather_bounded(value(1), fails(), value(2), limit=1, return_exceptions=True)
        assert got[0] == 1 and isinstance(got[1], KeyError) and got[2] == 2

        def not_async(x: int) -> int:
            raise ZeroDivisionError(x)

        # A sync fn that raises counts as that item's failure, as documented.
        got = await map_bounded(not_async, [1, 2], limit=2, return_exceptions=True)  # type: ignore[arg-type]
        assert [type(e) for e in got] == [ZeroDivisionError, ZeroDivisionError]
        with pytest.raises(ValueError, match="limit"):
            await map_bounded(value, [1], limit=0)

    asyncio.run(main())


class Probe:
    """Counts how many probe coroutines run at once."""

    def __init__(self) -> None:
        self.now = 0
        self.peak = 0

    async def run(self, index: int, delay_ms: int, fail: bool) -> int:
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            await asyncio.sleep(delay_ms / 1000)
            if fail:
                raise ValueError(index)
            return index
        finally:
            self.now -= 1


plans = st.lists(st.tuples(st.integers(0, 3), st.booleans()), max_size=25)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plan=plans, limit=st.integers(1, 8), return_exceptions=st.booleans(), use_map=st.booleans())
def test_bounded_never_exceeds_limit_and_keeps_order(
    plan: list[tuple[int, bool]], limit: int, return_exceptions: bool, use_map: bool
) -> None:
    probe = Probe()
    failing = {i for i, (_, fail) in enumerate(plan) if fail}

    async def main() -> None:
        if use_map:
            call = map_bounded(
                lambda i: probe.run(i, *plan[i]),
                range(len(plan)),
                limit=limit,
                return_exceptions=return_exceptions,
            )
        else:
            call = gather_bounded(
                *(probe.run(i, delay, fail) for i, (delay, fail) in enumerate(plan)),
                limit=limit,
                return_exceptions=return_exceptions,
            )
        if failing and not return_exceptions:
            with pytest.raises(ValueError) as raised:
                await call
            assert raised.value.args[0] in failing
        else:
            results = await call
            assert len(results) == len(plan)
            for i, result in enumerate(results):
                if i in failing:
                    assert isinstance(result, ValueError) and result.args == (i,)
                else:
                    assert result == i
        assert probe.now == 0
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(main())
    assert probe.peak <= limit
