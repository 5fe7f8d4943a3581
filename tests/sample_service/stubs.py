"""A loopback HTTP server that stands in for what the sample service talks to over HTTP: the
claims clearing house (`/claims/...`), webhook receivers (`/hooks/<id>`) and an API that never
answers (`/hang/...`). It runs aiohttp in a thread of its own, with latencies the tests and the
benchmark set, and counts what it serves: requests, bodies, and peak concurrency per kind."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from aiohttp import web


@dataclass
class Delivery:
    """One webhook request as a receiver saw it."""

    hook: str
    body: bytes
    signature: str


@dataclass
class _Gauge:
    current: int = 0
    peak: int = 0

    def enter(self) -> None:
        self.current += 1
        self.peak = max(self.peak, self.current)

    def leave(self) -> None:
        self.current -= 1


@dataclass
class StubServer:
    """The server; `start()` returns its base URL. Attributes may be changed while it runs."""

    api_latency: float = 0.0
    hook_latency: float = 0.0
    claim_statuses: dict[str, str] = field(default_factory=dict)
    default_status: str = "pending"
    deliveries: list[Delivery] = field(default_factory=list)
    submitted: list[dict[str, object]] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    asked: Counter[str] = field(default_factory=Counter)
    gauges: dict[str, _Gauge] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._runner: Optional[web.AppRunner] = None
        self._thread: Optional[threading.Thread] = None
        self._release_hung: Optional[asyncio.Event] = None
        self.url = ""

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> str:
        ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(ready,), name="stub-http", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("the stub HTTP server did not start")
        return self.url

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        self._thread.join(10)
        self._loop = None

    def reset(self) -> None:
        """Forget what was served (not the latencies or statuses)."""
        self.deliveries.clear()
        self.submitted.clear()
        self.requests.clear()
        self.asked.clear()
        self.gauges.clear()

    def configure(
        self,
        api_latency: Optional[float] = None,
        hook_latency: Optional[float] = None,
        claim_statuses: Optional[dict[str, str]] = None,
    ) -> None:
        """Change the latencies and add claim statuses (the same call as `RemoteStub`'s)."""
        if api_latency is not None:
            self.api_latency = api_latency
        if hook_latency is not None:
            self.hook_latency = hook_latency
        self.claim_statuses.update(claim_statuses or {})

    def peak(self, kind: str) -> int:
        """The most requests of `kind` ("api", "hooks", "hang") served at once."""
        gauge = self.gauges.get(kind)
        return gauge.peak if gauge else 0

    def in_flight(self, kind: str) -> int:
        gauge = self.gauges.get(kind)
        return gauge.current if gauge else 0

    # ---- the server ------------------------------------------------------------------------

    def _serve(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        asyncio.set_event_loop(loop)
        loop.run_until_complete(self._open())
        ready.set()
        loop.run_forever()
        loop.close()

    async def _open(self) -> None:
        self._release_hung = asyncio.Event()
        app = web.Application()
        app.router.add_get("/claims/{number}/status", self._claim_status)
        app.router.add_post("/claims", self._submit)
        app.router.add_post("/hooks/{hook}", self._hook)
        app.router.add_route("*", "/hang/{tail:.*}", self._hang)
        app.router.add_post("/_control", self._control)
        app.router.add_get("/_stats", self._stats)
        self._runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        server = site._server
        assert isinstance(server, asyncio.base_events.Server)
        port = server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"

    async def _shutdown(self) -> None:
        if self._release_hung is not None:
            self._release_hung.set()
        if self._runner is not None:
            await self._runner.cleanup()

    def _gauge(self, kind: str) -> _Gauge:
        return self.gauges.setdefault(kind, _Gauge())

    async def _claim_status(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        self.requests["status"] += 1
        self.asked[number] += 1
        gauge = self._gauge("api")
        gauge.enter()
        try:
            await asyncio.sleep(self.api_latency)
        finally:
            gauge.leave()
        status = self.claim_statuses.get(number, self.default_status)
        return web.json_response({"claim_number": number, "status": status})

    async def _submit(self, request: web.Request) -> web.Response:
        claim = await request.json()
        self.requests["submit"] += 1
        self.submitted.append(claim)
        return web.json_response({"accepted": True, "claim_number": claim.get("claim_number")}, status=202)

    async def _hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.requests["hooks"] += 1
        gauge = self._gauge("hooks")
        gauge.enter()
        try:
            await asyncio.sleep(self.hook_latency)
        finally:
            gauge.leave()
        signature = request.headers.get("X-Billing-Signature", "")
        self.deliveries.append(Delivery(request.match_info["hook"], body, signature))
        return web.Response(status=200, text="ok")

    async def _control(self, request: web.Request) -> web.Response:
        self.configure(**await request.json())
        return web.json_response({})

    async def _stats(self, request: web.Request) -> web.Response:
        return web.json_response(
            {"peaks": {kind: g.peak for kind, g in self.gauges.items()}, "requests": dict(self.requests)}
        )

    async def _hang(self, request: web.Request) -> web.Response:
        """Accept the request and never answer (until the server stops)."""
        self.requests["hang"] += 1
        gauge = self._gauge("hang")
        gauge.enter()
        try:
            assert self._release_hung is not None
            await self._release_hung.wait()
        finally:
            gauge.leave()
        return web.Response(status=503)


class RemoteStub:
    """The same server in a process of its own, so that it does not share the measured
    process's interpreter lock, as a real clearing house and real receivers would not;
    controlled over its `/_control` and `/_stats` endpoints."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tests.sample_service.stubs"],
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        self.url = self._proc.stdout.readline().strip()
        if not self.url.startswith("http://"):
            self._proc.kill()
            raise RuntimeError("the stub HTTP server did not start")

    def configure(self, **changes: object) -> None:
        self._post("/_control", changes)

    def peak(self, kind: str) -> int:
        peaks: dict[str, int] = self._get("/_stats")["peaks"]
        return peaks.get(kind, 0)

    def stop(self) -> None:
        self._proc.terminate()
        self._proc.wait(10)

    def _post(self, path: str, body: object) -> None:
        request = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            response.read()

    def _get(self, path: str) -> Any:
        with urllib.request.urlopen(self.url + path, timeout=10) as response:
            return json.loads(response.read())


def _serve_forever() -> None:
    server = StubServer()
    print(server.start(), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    _serve_forever()
