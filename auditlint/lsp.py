"""`auditlint server`: a Language Server (pygls) that publishes findings as diagnostics on open,
change and save, and offers each finding's fix as a code action (safe fixes as quick fixes,
unsafe ones as rewrites), plus a `source.fixAll.auditlint` action for every safe fix.

Settings come from the same `[tool.auditlint]` discovery as the command line, per file.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional, Sequence
from urllib.parse import unquote, urlparse

from lsprotocol import types
from pygls.lsp.server import LanguageServer
from pygls.workspace import TextDocument

from auditlint import __version__
from auditlint.config import ConfigError, ConfigResolver
from auditlint.model import Applicability, Edit, FileError, Finding

SOURCE = "auditlint"
FIX_ALL = "source.fixAll.auditlint"


@dataclass
class Linted:
    """One version of one document, linted: its findings (with fix edits), its errors, and the
    text with every safe fix applied once a fix-all action has asked for it."""

    version: Optional[int]
    findings: tuple[Finding, ...]
    errors: tuple[FileError, ...]
    fixed_all: Optional[str] = None


def _fs_path(uri: str) -> Optional[Path]:
    parsed = urlparse(uri)
    if parsed.scheme != "file":
        return None
    return Path(unquote(parsed.path))


class AuditlintServer(LanguageServer):
    """The server and its per-document results (so code actions do not lint again)."""

    def __init__(self) -> None:
        super().__init__("auditlint", __version__)
        self.results: dict[str, Linted] = {}
        self.resolver = ConfigResolver()

    def lint(self, doc: TextDocument) -> Linted:
        cached = self.results.get(doc.uri)
        if cached is not None and cached.version == doc.version and doc.version is not None:
            return cached
        from auditlint.engine import lint_bytes
        from auditlint.runner import codes_for

        path = _fs_path(doc.uri)
        display = str(path) if path is not None else doc.uri
        try:
            settings = self.resolver.for_path(path) if path is not None else self.resolver.default()
        except ConfigError as exc:
            result = Linted(doc.version, (), (FileError(display, str(exc), 0, 0, "E902"),))
        else:
            codes = codes_for(settings, path) if path is not None else settings.enabled_codes()
            findings, errors = lint_bytes(doc.source.encode("utf-8"), display, settings, codes, want_edits=True)
            result = Linted(doc.version, tuple(findings), tuple(errors))
        self.results[doc.uri] = result
        return result

    def publish(self, doc: TextDocument) -> None:
        result = self.lint(doc)
        diagnostics = [diagnostic(doc, f) for f in result.findings]
        diagnostics.extend(error_diagnostic(doc, e) for e in result.errors)
        self.text_document_publish_diagnostics(
            types.PublishDiagnosticsParams(uri=doc.uri, version=doc.version, diagnostics=diagnostics)
        )


def _range(doc: TextDocument, line: int, column: int, end_line: int, end_column: int) -> types.Range:
    """1-based code-point positions -> the client's 0-based units (UTF-16 by default)."""
    server = types.Range(
        start=types.Position(line=max(line - 1, 0), character=max(column - 1, 0)),
        end=types.Position(line=max(end_line - 1, 0), character=max(end_column - 1, 0)),
    )
    return doc.position_codec.range_to_client_units(doc.lines, server)


def diagnostic(doc: TextDocument, f: Finding) -> types.Diagnostic:
    return types.Diagnostic(
        range=_range(doc, f.line, f.column, f.end_line, f.end_column),
        message=f.message,
        severity=types.DiagnosticSeverity.Warning,
        code=f.code,
        source=SOURCE,
        data={"name": f.name, "fix": f.fix.applicability.value if f.fix else None},
    )


def error_diagnostic(doc: TextDocument, e: FileError) -> types.Diagnostic:
    line = max(e.line, 1)
    column = max(e.column, 1)
    return types.Diagnostic(
        range=_range(doc, line, column, line, column),
        message=e.message,
        severity=types.DiagnosticSeverity.Error,
        code=e.code,
        source=SOURCE,
    )


def text_edits(doc: TextDocument, edits: Sequence[Edit]) -> list[types.TextEdit]:
    return [types.TextEdit(range=_range(doc, e.line, e.column, e.end_line, e.end_column), new_text=e.content) for e in edits]


def _overlaps(a: types.Range, b: types.Range) -> bool:
    a_start, a_end = (a.start.line, a.start.character), (a.end.line, a.end.character)
    b_start, b_end = (b.start.line, b.start.character), (b.end.line, b.end.character)
    return a_start <= b_end and b_start <= a_end


def code_actions(server: AuditlintServer, doc: TextDocument, params: types.CodeActionParams) -> list[types.CodeAction]:
    result = server.lint(doc)
    wanted = params.context.only
    actions: list[types.CodeAction] = []
    for f in result.findings:
        if f.fix is None or not f.fix.edits:
            continue
        diag = diagnostic(doc, f)
        if not _overlaps(diag.range, params.range):
            continue
        safe = f.fix.applicability is Applicability.SAFE
        kind = types.CodeActionKind.QuickFix if safe else types.CodeActionKind.RefactorRewrite
        if wanted and not any(kind.value.startswith(k) for k in wanted):
            continue
        actions.append(
            types.CodeAction(
                title=f"{f.code}: {f.fix.title}" + ("" if safe else " (unsafe)"),
                kind=kind,
                diagnostics=[diag],
                is_preferred=safe,
                edit=types.WorkspaceEdit(changes={doc.uri: text_edits(doc, f.fix.edits)}),
            )
        )
    if not wanted or any(FIX_ALL.startswith(k) for k in wanted):
        fix_all = _fix_all(server, doc)
        if fix_all is not None:
            actions.append(fix_all)
    return actions


def _fix_all(server: AuditlintServer, doc: TextDocument) -> Optional[types.CodeAction]:
    """Every safe fix at once (through the fixer, to a fixed point), as one whole-document edit;
    the fixed text is computed once per document version."""
    result = server.lint(doc)
    if not any(f.fix is not None and f.fix.applicability is Applicability.SAFE for f in result.findings):
        return None
    if result.fixed_all is None:
        from auditlint.api import fix_source

        path = _fs_path(doc.uri)
        try:
            settings = server.resolver.for_path(path) if path is not None else server.resolver.default()
            result.fixed_all = fix_source(doc.source, str(path or doc.uri), settings, unsafe=False)
        except (ConfigError, SyntaxError):
            result.fixed_all = doc.source
    new = result.fixed_all
    if new == doc.source:
        return None
    lines = doc.lines
    end = types.Position(line=len(lines), character=0)
    return types.CodeAction(
        title="auditlint: apply every safe fix",
        kind=FIX_ALL,
        edit=types.WorkspaceEdit(
            changes={doc.uri: [types.TextEdit(range=types.Range(start=types.Position(line=0, character=0), end=end), new_text=new)]}
        ),
    )


def create_server() -> AuditlintServer:
    server = AuditlintServer()

    @server.feature(types.TEXT_DOCUMENT_DID_OPEN)
    def did_open(ls: AuditlintServer, params: types.DidOpenTextDocumentParams) -> None:
        ls.publish(ls.workspace.get_text_document(params.text_document.uri))

    @server.feature(types.TEXT_DOCUMENT_DID_CHANGE)
    def did_change(ls: AuditlintServer, params: types.DidChangeTextDocumentParams) -> None:
        ls.publish(ls.workspace.get_text_document(params.text_document.uri))

    @server.feature(types.TEXT_DOCUMENT_DID_SAVE)
    def did_save(ls: AuditlintServer, params: types.DidSaveTextDocumentParams) -> None:
        # The configuration may have changed on disk: read it afresh.
        ls.resolver = ConfigResolver()
        ls.results.pop(params.text_document.uri, None)
        ls.publish(ls.workspace.get_text_document(params.text_document.uri))

    @server.feature(types.TEXT_DOCUMENT_DID_CLOSE)
    def did_close(ls: AuditlintServer, params: types.DidCloseTextDocumentParams) -> None:
        ls.results.pop(params.text_document.uri, None)
        ls.text_document_publish_diagnostics(types.PublishDiagnosticsParams(uri=params.text_document.uri, diagnostics=[]))

    @server.feature(
        types.TEXT_DOCUMENT_CODE_ACTION,
        types.CodeActionOptions(
            code_action_kinds=[types.CodeActionKind.QuickFix, types.CodeActionKind.RefactorRewrite, FIX_ALL]
        ),
    )
    def code_action(ls: AuditlintServer, params: types.CodeActionParams) -> list[types.CodeAction]:
        return code_actions(ls, ls.workspace.get_text_document(params.text_document.uri), params)

    return server


def serve(stdin: Any = None, stdout: Any = None) -> None:
    """Serve LSP over the given binary streams (standard input and output by default)."""
    create_server().start_io(stdin, stdout)
