"""The language server, driven over the LSP wire protocol (Content-Length framed JSON-RPC) through
pipes, with the server running in-process in a thread."""

from __future__ import annotations

import json
import os
import queue
import threading
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest

pytest.importorskip("pygls", reason="the language server needs pygls: pip install -e '.[lsp]'")

from auditlint.lsp import create_server  # noqa: E402

BAD = 'import requests as r\n\n\ndef fetch(url):\n    return r.get(url)\n'
TWO = 'import asyncio\n\n\nasync def main(work):\n    asyncio.create_task(work())\n    return 1\n'


class Client:
    """Just enough of an LSP client: requests with ids, notifications, a queue of what comes back."""

    def __init__(self) -> None:
        c2s_r, c2s_w = os.pipe()
        s2c_r, s2c_w = os.pipe()
        self.to_server = os.fdopen(c2s_w, "wb", buffering=0)
        self.from_server = os.fdopen(s2c_r, "rb", buffering=0)
        server_in, server_out = os.fdopen(c2s_r, "rb"), os.fdopen(s2c_w, "wb")
        self.server = create_server()
        self.thread = threading.Thread(target=self.server.start_io, args=(server_in, server_out), daemon=True)
        self.thread.start()
        self.inbox: queue.Queue[dict[str, Any]] = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.next_id = 0

    def _read(self) -> None:
        stream = self.from_server
        while True:
            headers: dict[str, str] = {}
            while True:
                line = stream.readline()
                if not line:
                    return
                if line in (b"\r\n", b"\n"):
                    break
                key, _, value = line.decode("ascii").partition(":")
                headers[key.strip().lower()] = value.strip()
            body = b""
            length = int(headers["content-length"])
            while len(body) < length:
                chunk = stream.read(length - len(body))
                if not chunk:
                    return
                body += chunk
            self.inbox.put(json.loads(body))

    def send(self, message: dict[str, Any]) -> None:
        body = json.dumps({"jsonrpc": "2.0", **message}).encode("utf-8")
        self.to_server.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)

    def notify(self, method: str, params: dict[str, Any]) -> None:
        self.send({"method": method, "params": params})

    def request(self, method: str, params: Optional[dict[str, Any]]) -> Any:
        self.next_id += 1
        ident = self.next_id
        self.send({"id": ident, "method": method, "params": params})
        for message in self.messages():
            if message.get("id") == ident and "method" not in message:
                assert "error" not in message, message
                return message["result"]
        raise AssertionError(f"no answer to {method}")

    def messages(self, timeout: float = 20.0) -> Iterator[dict[str, Any]]:
        while True:
            try:
                yield self.inbox.get(timeout=timeout)
            except queue.Empty:
                return

    def diagnostics(self, uri: str) -> list[dict[str, Any]]:
        for message in self.messages():
            if message.get("method") == "textDocument/publishDiagnostics" and message["params"]["uri"] == uri:
                return list(message["params"]["diagnostics"])
        raise AssertionError(f"no diagnostics published for {uri}")

    def close(self) -> None:
        self.request("shutdown", None)
        self.notify("exit", {})
        self.thread.join(timeout=10)
        self.to_server.close()


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    c = Client()
    result = c.request("initialize", {"processId": None, "rootUri": tmp_path.as_uri(), "capabilities": {}})
    caps = result["capabilities"]
    assert caps["codeActionProvider"]["codeActionKinds"] == ["quickfix", "refactor.rewrite", "source.fixAll.auditlint"]
    c.notify("initialized", {})
    yield c
    c.close()
    assert not c.thread.is_alive()


def _open(client: Client, path: Path, text: str) -> str:
    path.write_text(text)
    uri = path.as_uri()
    client.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "python", "version": 1, "text": text}})
    return uri


def test_diagnostics_on_open_change_and_close(client: Client, tmp_path: Path) -> None:
    uri = _open(client, tmp_path / "mod.py", BAD)
    [diag] = client.diagnostics(uri)
    assert diag["code"] == "AL401"
    assert diag["source"] == "auditlint"
    assert diag["range"] == {"start": {"line": 4, "character": 11}, "end": {"line": 4, "character": 21}}

    fixed = BAD.replace("r.get(url)", "r.get(url, timeout=5)")
    client.notify(
        "textDocument/didChange",
        {"textDocument": {"uri": uri, "version": 2}, "contentChanges": [{"text": fixed}]},
    )
    assert client.diagnostics(uri) == []

    client.notify("textDocument/didChange", {"textDocument": {"uri": uri, "version": 3}, "contentChanges": [{"text": "def f(:\n"}]})
    [error] = client.diagnostics(uri)
    assert error["code"] == "E999" and error["severity"] == 1

    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert client.diagnostics(uri) == []


def test_save_reads_the_config_again(client: Client, tmp_path: Path) -> None:
    uri = _open(client, tmp_path / "mod.py", BAD)
    assert [d["code"] for d in client.diagnostics(uri)] == ["AL401"]
    (tmp_path / "pyproject.toml").write_text('[tool.auditlint]\nignore = ["AL401"]\n')
    client.notify("textDocument/didSave", {"textDocument": {"uri": uri}})
    assert client.diagnostics(uri) == []


def test_columns_are_utf16_code_units(client: Client, tmp_path: Path) -> None:
    text = 'import requests\n\n\ndef f():\n    s = "\U0001f600é"; requests.get("u")\n'
    uri = _open(client, tmp_path / "emoji.py", text)
    [diag] = client.diagnostics(uri)
    # The emoji is two UTF-16 code units: `requests` starts at code point 14, UTF-16 unit 15.
    assert diag["range"]["start"] == {"line": 4, "character": 15}


def _apply(text: str, edits: list[dict[str, Any]]) -> str:
    lines = text.splitlines(keepends=True)
    offsets = [0]
    for line in lines:
        offsets.append(offsets[-1] + len(line))

    def offset(pos: dict[str, int]) -> int:
        return offsets[pos["line"]] + pos["character"] if pos["line"] < len(lines) else len(text)

    for e in sorted(edits, key=lambda e: offset(e["range"]["start"]), reverse=True):
        text = text[: offset(e["range"]["start"])] + e["newText"] + text[offset(e["range"]["end"]) :]
    return text


def test_code_actions_safe_as_quick_fix_unsafe_as_rewrite(client: Client, tmp_path: Path) -> None:
    uri = _open(client, tmp_path / "tasks.py", TWO)
    [diag] = client.diagnostics(uri)
    assert diag["code"] == "AL101"
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": diag["range"], "context": {"diagnostics": [diag]}},
    )
    kinds = {a["kind"] for a in actions}
    assert "quickfix" in kinds and "source.fixAll.auditlint" in kinds
    quick = next(a for a in actions if a["kind"] == "quickfix")
    assert quick["isPreferred"] is True and quick["diagnostics"][0]["code"] == "AL101"
    fixed = _apply(TWO, quick["edit"]["changes"][uri])
    compile(fixed, "tasks.py", "exec")
    from auditlint import lint_source

    assert lint_source(fixed, select=["AL101"]) == []

    uri2 = _open(client, tmp_path / "http.py", BAD)
    [diag2] = client.diagnostics(uri2)
    actions2 = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri2}, "range": diag2["range"], "context": {"diagnostics": [diag2]}},
    )
    # AL401's fix may make slow calls fail: offered as a rewrite, never as the preferred quick fix.
    [rewrite] = actions2
    assert rewrite["kind"] == "refactor.rewrite" and rewrite["isPreferred"] is False
    assert "(unsafe)" in rewrite["title"]
    assert "timeout=10" in _apply(BAD, rewrite["edit"]["changes"][uri2])

    only = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri2}, "range": diag2["range"], "context": {"diagnostics": [], "only": ["quickfix"]}},
    )
    assert only == []


def test_fix_all_applies_every_safe_fix(client: Client, tmp_path: Path) -> None:
    uri = _open(client, tmp_path / "tasks.py", TWO)
    client.diagnostics(uri)
    everywhere = {"start": {"line": 0, "character": 0}, "end": {"line": 6, "character": 0}}
    quick = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": everywhere, "context": {"diagnostics": [], "only": ["quickfix"]}},
    )
    assert [a["kind"] for a in quick] == ["quickfix"]
    # The whole-file fixer runs only for a request that wants the fix-all action.
    assert client.server.results[uri].fixed_all is None
    actions = client.request(
        "textDocument/codeAction",
        {"textDocument": {"uri": uri}, "range": everywhere, "context": {"diagnostics": [], "only": ["source.fixAll"]}},
    )
    [fix_all] = actions
    assert client.server.results[uri].fixed_all is not None
    fixed = _apply(TWO, fix_all["edit"]["changes"][uri])
    from auditlint import fix_source, lint_source

    assert fixed == fix_source(TWO)
    assert lint_source(fixed) == []
