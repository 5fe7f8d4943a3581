"""One file: prefilter -> parse -> one traversal for every rule -> suppressions -> findings."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Optional, Sequence

import libcst as cst
from libcst._position import CodeRange

from auditlint.analysis.walk import iter_children
from auditlint.config import Settings
from auditlint.context import FileContext, Frame, Report
from auditlint.model import FileError, Finding, Fix
from auditlint.positions import positions_of
from auditlint.registry import rule_class
from auditlint.rule import Rule
from auditlint.suppress import is_skip_file, noqa_codes_by_line, suppressed

Handler = Callable[[Any, FileContext], Any]

# ---- dispatch tables, built once per rule class ------------------------------------------

_TABLES: dict[type, tuple[dict[type, str], dict[type, str]]] = {}


def _table(cls: type[Rule]) -> tuple[dict[type, str], dict[type, str]]:
    found = _TABLES.get(cls)
    if found is None:
        visit: dict[type, str] = {}
        leave: dict[type, str] = {}
        for attr in dir(cls):
            for prefix, table in (("visit_", visit), ("leave_", leave)):
                if attr.startswith(prefix):
                    node_type = getattr(cst, attr[len(prefix) :], None)
                    if not isinstance(node_type, type) or not issubclass(node_type, cst.CSTNode):
                        raise TypeError(f"{cls.__name__}.{attr}: no LibCST node type of that name")
                    table[node_type] = attr
        found = (visit, leave)
        _TABLES[cls] = found
    return found


class RuleCrash(Exception):
    """A rule raised while visiting a node."""

    def __init__(self, rule: Rule, exc: BaseException) -> None:
        super().__init__(f"{rule.code}: {type(exc).__name__}: {exc}")
        self.rule = rule
        self.exc = exc


# ---- the walk ----------------------------------------------------------------------------


class _Walker:
    """Walks a module once, keeping the context stacks and dispatching to the rules."""

    def __init__(self, ctx: FileContext, rules: Sequence[Rule]) -> None:
        self.ctx = ctx
        self.visit: dict[type, list[tuple[Rule, Handler]]] = {}
        self.leave: dict[type, list[tuple[Rule, Handler]]] = {}
        self.crashed: list[RuleCrash] = []
        for rule in rules:
            visit, leave = _table(type(rule))
            for node_type, attr in visit.items():
                self.visit.setdefault(node_type, []).append((rule, getattr(rule, attr)))
            for node_type, attr in leave.items():
                self.leave.setdefault(node_type, []).append((rule, getattr(rule, attr)))

    def _call(self, handlers: list[tuple[Rule, Handler]], node: cst.CSTNode) -> None:
        ctx = self.ctx
        for rule, handler in handlers:
            ctx.rule = rule
            try:
                handler(node, ctx)
            except RecursionError:
                raise
            except Exception as exc:  # noqa: BLE001 - crash isolation: one rule, one file
                self.crashed.append(RuleCrash(rule, exc))
                self._disable(rule)

    def _disable(self, rule: Rule) -> None:
        for table in (self.visit, self.leave):
            for key in list(table):
                table[key] = [(r, h) for r, h in table[key] if r is not rule]

    def walk(self, node: cst.CSTNode) -> None:
        ctx = self.ctx
        ctx.stack.append(node)
        node_type = type(node)
        handlers = self.visit.get(node_type)
        if handlers:
            self._call(handlers, node)
        special = _SPECIAL.get(node_type)
        if special is not None:
            special(self, node)
        else:
            for child in iter_children(node):
                self.walk(child)
        handlers = self.leave.get(node_type)
        if handlers:
            self._call(handlers, node)
        ctx.stack.pop()

    def walk_all(self, nodes: Iterable[Optional[cst.CSTNode]]) -> None:
        for node in nodes:
            if node is not None:
                self.walk(node)

    # Special cases: evaluation context (which loop, function, with, try a node runs in).

    def _function(self, node: cst.FunctionDef) -> None:
        self.walk_all(node.decorators)
        self.walk(node.params)
        self.walk_all([node.returns])
        self.ctx.frames.append(Frame(node))
        self.walk(node.body)
        self.ctx.frames.pop()

    def _lambda(self, node: cst.Lambda) -> None:
        self.walk(node.params)
        self.ctx.frames.append(Frame(node))
        self.walk(node.body)
        self.ctx.frames.pop()

    def _class(self, node: cst.ClassDef) -> None:
        self.walk_all(node.decorators)
        self.walk_all(node.bases)
        self.walk_all(node.keywords)
        self.ctx.classes.append(node)
        self.walk(node.body)
        self.ctx.classes.pop()

    def _for(self, node: cst.For) -> None:
        self.walk(node.iter)
        loops = self.ctx.frames[-1].loops
        loops.append(node)
        self.walk(node.target)
        self.walk(node.body)
        loops.pop()
        self.walk_all([node.orelse])

    def _while(self, node: cst.While) -> None:
        loops = self.ctx.frames[-1].loops
        loops.append(node)
        self.walk(node.test)
        self.walk(node.body)
        loops.pop()
        self.walk_all([node.orelse])

    def _comp(self, node: Any) -> None:
        # The first iterable is evaluated once, outside; everything else runs per item.
        first: cst.CompFor = node.for_in
        self.walk(first.iter)
        loops = self.ctx.frames[-1].loops
        loops.append(node)
        if isinstance(node, cst.DictComp):
            self.walk(node.key)
            self.walk(node.value)
        else:
            self.walk(node.elt)
        self.ctx.stack.append(first)
        handlers = self.visit.get(cst.CompFor)
        if handlers:
            self._call(handlers, first)
        self.walk(first.target)
        self.walk_all(first.ifs)
        self.walk_all([first.inner_for_in])
        handlers = self.leave.get(cst.CompFor)
        if handlers:
            self._call(handlers, first)
        self.ctx.stack.pop()
        loops.pop()

    def _with(self, node: cst.With) -> None:
        self.walk_all(node.items)
        withs = self.ctx.frames[-1].withs
        withs.append(node)
        self.walk(node.body)
        withs.pop()

    def _try(self, node: Any) -> None:
        trys = self.ctx.frames[-1].trys
        trys.append(node)
        self.walk(node.body)
        trys.pop()
        self.walk_all(node.handlers)
        self.walk_all([node.orelse, node.finalbody])

    def _ifexp(self, node: cst.IfExp) -> None:
        self.walk(node.body)
        self.walk(node.test)
        self.walk(node.orelse)


_SPECIAL: dict[type, Callable[[_Walker, Any], None]] = {
    cst.FunctionDef: _Walker._function,
    cst.Lambda: _Walker._lambda,
    cst.ClassDef: _Walker._class,
    cst.For: _Walker._for,
    cst.While: _Walker._while,
    cst.ListComp: _Walker._comp,
    cst.SetComp: _Walker._comp,
    cst.GeneratorExp: _Walker._comp,
    cst.DictComp: _Walker._comp,
    cst.With: _Walker._with,
    cst.Try: _Walker._try,
    cst.TryStar: _Walker._try,
    cst.IfExp: _Walker._ifexp,
}


# ---- one file ----------------------------------------------------------------------------


def _compile_triggers(rules: Sequence[type[Rule]]) -> list[tuple[type[Rule], list[tuple[bytes, ...]]]]:
    out = []
    for cls in rules:
        groups = []
        for trig in cls.triggers:
            words = (trig,) if isinstance(trig, str) else trig
            groups.append(tuple(w.encode() for w in words))
        out.append((cls, groups))
    return out


def prefilter(data: bytes, rules: Sequence[type[Rule]]) -> list[type[Rule]]:
    """The rules whose trigger words occur in the file (rules without triggers always run)."""
    keep = []
    for cls, groups in _compile_triggers(rules):
        if not groups or any(all(w in data for w in group) for group in groups):
            keep.append(cls)
    return keep


def needed_rules(data: bytes, rules: Sequence[type[Rule]]) -> tuple[list[type[Rule]], bool]:
    """The rules the file needs a LibCST parse for, and whether CPython's parser already accepted
    it (so a file no rule needs is not parsed twice).

    After the trigger words, when every remaining rule has a structural test, one stdlib `ast`
    parse decides: the rules go only if all their tests say the file has nothing for them. A file
    CPython cannot parse (newer syntax, an error) keeps its rules and goes to LibCST."""
    keep = prefilter(data, rules)
    if not keep or any(cls.structure is None for cls in keep):
        return keep, False
    try:
        tree = ast.parse(data)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return keep, False
    for cls in keep:
        test = cls.structure
        if test is not None and test(tree):
            return keep, True
    return [], True


@dataclass
class Located:
    """A report with its position in the file."""

    report: Report
    range: CodeRange
    statement_end: int
    suppressed: bool = False


@dataclass
class TreeLint:
    """The result of linting one parsed tree; internal (holds CST nodes)."""

    module: cst.Module
    located: list[Located] = field(default_factory=list)
    crashes: list[RuleCrash] = field(default_factory=list)
    #: The ranges of the reported nodes, their statements and the nodes their fixes replace.
    positions: Any = None
    #: The module's text, generated once for the noqa scan and the source lines.
    code: str = ""


_BRACKETS = re.compile(rb"[\[\](){}]")
_OPEN = frozenset(b"([{")


def bracket_depth(data: bytes) -> int:
    """Maximum nesting of brackets, counting those in strings and comments too (an upper bound
    on what the parser will see, cheap because only bracket characters are visited)."""
    depth = deepest = 0
    for ch in _BRACKETS.findall(data):
        if ch[0] in _OPEN:
            depth += 1
            if depth > deepest:
                deepest = depth
        else:
            depth -= 1
    return deepest


#: CPython itself refuses more than 200 nested brackets; LibCST's native parser crashes the
#: whole process (a segmentation fault, not an exception) somewhere above 1,000.
MAX_BRACKET_DEPTH = 200


def parse(data: bytes, path: str) -> tuple[Optional[cst.Module], Optional[FileError]]:
    if bracket_depth(data) > MAX_BRACKET_DEPTH:
        precise = _python_syntax_error(data)
        if precise is not None:
            msg, line, col = precise
            return None, FileError(path, f"syntax error: {msg}", line, col, "E999")
    try:
        return cst.parse_module(data), None
    except cst.ParserSyntaxError as exc:
        # CPython's own parser locates syntax errors better than LibCST's.
        precise = _python_syntax_error(data)
        if precise is not None:
            msg, line, col = precise
            return None, FileError(path, f"syntax error: {msg}", line, col, "E999")
        msg = str(exc.message).splitlines()[0] if exc.message else "invalid syntax"
        return None, FileError(path, f"syntax error: {msg}", exc.raw_line, exc.raw_column + 1, "E999")
    except RecursionError:
        return None, FileError(path, "cannot parse: the file is nested too deeply", 0, 0, "E999")
    except (UnicodeDecodeError, LookupError, SyntaxError, ValueError) as exc:
        return None, FileError(path, f"cannot decode: {exc}", 0, 0, "E902")
    except Exception as exc:  # noqa: BLE001 - the parser's own failures become one error line
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return None, FileError(path, f"cannot parse: {first}", 0, 0, "E999")


def _python_syntax_error(data: bytes) -> Optional[tuple[str, int, int]]:
    try:
        ast.parse(data)
    except SyntaxError as exc:
        return (exc.msg or "invalid syntax", exc.lineno or 0, exc.offset or 0)
    except (ValueError, RecursionError, MemoryError):
        return None
    return None


def size_error(data: bytes, path: str, settings: Settings) -> Optional[FileError]:
    """Files over `max-file-size` are reported, not parsed: a LibCST tree costs several hundred
    times the size of its source in memory."""
    limit = settings.max_file_size * 1024 * 1024
    if len(data) <= limit:
        return None
    size = len(data) / (1024 * 1024)
    return FileError(
        path,
        f"not linted: {size:.1f} MB is over the {settings.max_file_size:g} MB limit (max-file-size)",
        0,
        0,
        "E902",
    )


_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def source_lines(code: str) -> list[str]:
    """Lines as Python counts them (form feeds and other Unicode breaks do not end a line)."""
    return _LINE_BREAK.split(code)


def check_syntax(data: bytes, path: str) -> Optional[FileError]:
    """A file no rule needs to parse is still checked: CPython's parser first (cheap); when it
    objects, LibCST decides (it knows newer syntax than the running interpreter may)."""
    try:
        ast.parse(data)
        return None
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        pass
    _, error = parse(data, path)
    return error


def lint_tree(module: cst.Module, path: str, settings: Settings, rule_classes: Sequence[type[Rule]]) -> TreeLint:
    """Run the rules over a parsed module; positions are computed only when something is found."""
    ctx = FileContext(module, path, settings)
    rules = [cls(settings.options_for(cls.code)) for cls in rule_classes]
    walker = _Walker(ctx, rules)
    walker.walk(module)
    result = TreeLint(module, crashes=walker.crashed)
    if not ctx.reports:
        return result
    wanted: list[cst.CSTNode] = []
    for report in ctx.reports:
        wanted.append(report.node)
        if isinstance(report.statement, cst.SimpleStatementLine):
            wanted.append(report.statement)
        if report.patch is not None:
            wanted.extend(report.patch.changes)
    positions = positions_of(module, wanted)
    result.positions = positions
    result.code = module.code
    noqa = noqa_codes_by_line(result.code)
    for report in ctx.reports:
        rng = positions[report.node]
        stmt_end = rng.end.line
        if isinstance(report.statement, cst.SimpleStatementLine):
            stmt_end = positions[report.statement].end.line
        located = Located(report, rng, stmt_end)
        located.suppressed = suppressed(noqa, report.rule.code, (rng.start.line, stmt_end))
        result.located.append(located)
    return result


def finding_of(located: Located, path: str, module: cst.Module, lines: list[str], want_edits: bool) -> Finding:
    report = located.report
    rng = located.range
    fix = None
    if report.patch is not None:
        edits: tuple[Any, ...] = ()
        if want_edits:
            # Imported here: the patching module pulls in libcst.codemod and its matchers,
            # which cost more to import than LibCST itself; only edit-carrying formats need it.
            from auditlint.patching import patch_edits

            edits = patch_edits(module, report.patch)
        fix = Fix(report.patch.applicability, report.patch.title, edits)
    source_line = lines[rng.start.line - 1] if 0 < rng.start.line <= len(lines) else ""
    return Finding(
        code=report.rule.code,
        name=report.rule.name,
        message=report.message,
        path=path,
        line=rng.start.line,
        column=rng.start.column + 1,
        end_line=rng.end.line,
        end_column=rng.end.column + 1,
        fix=fix,
        source_line=source_line.rstrip("\r\n"),
    )


def crash_errors(path: str, crashes: Sequence[RuleCrash]) -> list[FileError]:
    return [
        FileError(path, f"internal error in rule {c.rule.code} ({c.rule.name}): {type(c.exc).__name__}: {c.exc}", 0, 0, "E001")
        for c in crashes
    ]


def lint_bytes(
    data: bytes,
    path: str,
    settings: Settings,
    codes: Sequence[str],
    *,
    want_edits: bool = False,
) -> tuple[list[Finding], list[FileError]]:
    """Lint one file's bytes with the given rule codes."""
    if is_skip_file(data):
        return [], []
    too_big = size_error(data, path, settings)
    if too_big is not None:
        return [], [too_big]
    rule_classes, syntax_ok = needed_rules(data, [rule_class(c) for c in codes])
    if not rule_classes:
        error = None if syntax_ok else check_syntax(data, path)
        return [], [error] if error else []
    module, error = parse(data, path)
    if module is None:
        return [], [error] if error else []
    try:
        result = lint_tree(module, path, settings, rule_classes)
    except RecursionError:
        return [], [FileError(path, "cannot lint: the file is nested too deeply", 0, 0, "E999")]
    errors = crash_errors(path, result.crashes)
    if not result.located:
        return [], errors
    lines = source_lines(result.code)
    findings = [
        finding_of(loc, path, module, lines, want_edits) for loc in result.located if not loc.suppressed
    ]
    findings.sort(key=Finding.sort_key)
    return findings, errors
