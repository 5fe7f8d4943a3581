"""with_default_timeout(): calls to a server that is slow or never answers fail on time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from auditlint.runtime import metrics, with_default_timeout

requests = pytest.importorskip("requests")


@pytest.fixture
def silent_url() -> Iterator[str]:
    """A server that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.05)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                continue
            held.append(conn)

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/"
    stop.set()
    thread.join(5)
    for conn in held:
        conn.close()
    listener.close()


class SlowHandler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        time.sleep(1.0)
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def slow_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), SlowHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(5)


def _elapsed_failure(call: Callable[[], object]) -> float:
    start = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        call()
    return time.monotonic() - start


def test_without_a_default_the_same_call_hangs(silent_url: str) -> None:
    outcome: list[object] = []

    def call() -> None:
        try:
            outcome.append(requests.Session().get(silent_url))
        except requests.exceptions.RequestException as error:
            outcome.append(error)  # the fixture closes the connection at teardown

    thread = threading.Thread(target=call, daemon=True)
    thread.start()
    thread.join(1.0)
    assert thread.is_alive() and not outcome


def test_a_server_that_never_answers_times_out_at_the_default(silent_url: str, fresh_metrics: None) -> None:
    session = with_default_timeout(requests.Session(), 0.5)
    elapsed = _elapsed_failure(lambda: session.get(silent_url))
    assert 0.45 <= elapsed < 5
    elapsed = _elapsed_failure(lambda: session.post(silent_url, json={"event": "claim.updated"}))
    assert 0.45 <= elapsed < 5
    assert metrics.counter("http.timeouts") == 2
    assert metrics.counter("http.default_timeout_applied") == 2


def test_a_slow_server_times_out_and_an_explicit_timeout_wins(slow_url: str) -> None:
    session = with_default_timeout(requests.Session(), 0.3)
    elapsed = _elapsed_failure(lambda: session.get(slow_url))
    assert elapsed < 5
    assert session.get(slow_url, timeout=5).text == "ok"


def test_an_explicit_shorter_timeout_wins_too(silent_url: str) -> None:
    session = with_default_timeout(requests.Session(), 30)
    assert _elapsed_failure(lambda: session.get(silent_url, timeout=0.2)) < 5
    # requests' signature allows timeout as the 9th positional argument of request().
    positional = ("GET", silent_url, None, None, None, None, None, None, 0.2)
    assert _elapsed_failure(lambda: session.request(*positional)) < 5


def test_timeout_none_counts_as_not_given(silent_url: str) -> None:
    session = with_default_timeout(requests.Session(), 0.3)
    assert _elapsed_failure(lambda: session.get(silent_url, timeout=None)) < 5


def test_applying_twice_does_not_wrap_twice(silent_url: str) -> None:
    session = requests.Session()
    original = session.request
    assert with_default_timeout(session, 10) is session
    wrapper = session.request
    assert with_default_timeout(session, 0.3) is session
    assert session.request is wrapper
    assert wrapper.__wrapped__ == original
    assert _elapsed_failure(lambda: session.get(silent_url)) < 5


def test_objects_without_request_are_refused() -> None:
    with pytest.raises(TypeError, match="request"):
        with_default_timeout(object(), 1)
