"""Positions of a few nodes, as LibCST's PositionProvider computes them, at a fraction of its cost.

PositionProvider runs a metadata pass and a code generation that records a range for every node
of the module (two parses' worth of time on real code). A lint needs the ranges of the nodes it
reports, their statements and the nodes their fixes replace: this code generation records only
those (and the child nodes their syntactic ranges are hoisted from), skips the context-manager
machinery for every other node, and stops at the last node asked for.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Optional

import libcst as cst
from libcst._nodes.internal import CodegenState
from libcst._position import CodePosition, CodeRange

_NEWLINE = re.compile(r"\r\n?|\n")


class _Done(Exception):
    """Every node asked for has its range: the rest of the module need not be generated."""


class _Null:
    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> None:
        return None


_NULL = _Null()


class _Syntactic:
    """PositionProvider's `record_syntactic_position`, for one node that was asked for."""

    __slots__ = ("state", "node", "start_node", "end_node", "start")

    def __init__(self, state: _State, node: cst.CSTNode, start_node: Optional[cst.CSTNode], end_node: Optional[cst.CSTNode]) -> None:
        self.state = state
        self.node = node
        self.start_node = start_node
        self.end_node = end_node
        self.start = CodePosition(state.line, state.column)

    def __enter__(self) -> None:
        # The children the range is hoisted from are generated inside this block.
        for child in (self.start_node, self.end_node):
            if child is not None:
                self.state.needed.add(child)

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if exc_type is not None:
            return
        computed = self.state.computed
        start = computed[self.start_node].start if self.start_node is not None else self.start
        end = computed[self.end_node].end if self.end_node is not None else CodePosition(self.state.line, self.state.column)
        computed[self.node] = CodeRange(start, end)


@dataclass
class _State(CodegenState):
    needed: set[cst.CSTNode] = field(default_factory=set)
    pending: set[cst.CSTNode] = field(default_factory=set)
    computed: dict[cst.CSTNode, CodeRange] = field(default_factory=dict)
    starts: dict[cst.CSTNode, CodePosition] = field(default_factory=dict)
    line: int = 1
    column: int = 0

    def add_indent_tokens(self) -> None:
        for token in self.indent_tokens:
            self.add_token(token)

    def add_token(self, value: str) -> None:
        self.tokens.append(value)
        if "\n" in value or "\r" in value:
            segments = _NEWLINE.split(value)
            self.line += len(segments) - 1
            self.column = len(segments[-1])
        else:
            self.column += len(value)

    def before_codegen(self, node: cst.CSTNode) -> None:
        if node in self.needed:
            self.starts[node] = CodePosition(self.line, self.column)

    def after_codegen(self, node: cst.CSTNode) -> None:
        if node not in self.needed:
            return
        start = self.starts.pop(node)
        if node not in self.computed:
            self.computed[node] = CodeRange(start, CodePosition(self.line, self.column))
        pending = self.pending
        if node in pending:
            pending.discard(node)
            if not pending:
                raise _Done

    def record_syntactic_position(
        self, node: cst.CSTNode, *, start_node: Optional[cst.CSTNode] = None, end_node: Optional[cst.CSTNode] = None
    ) -> Any:
        if node in self.needed:
            return _Syntactic(self, node, start_node, end_node)
        return _NULL


def positions_of(module: cst.Module, nodes: Iterable[cst.CSTNode]) -> dict[cst.CSTNode, CodeRange]:
    """The ranges PositionProvider gives `nodes` (those found in `module`)."""
    wanted = set(nodes)
    state = _State(default_indent=module.default_indent, default_newline=module.default_newline)
    state.needed = set(wanted)
    state.pending = set(wanted)
    if wanted:
        try:
            module._codegen(state)
        except _Done:
            pass
    return {node: state.computed[node] for node in wanted if node in state.computed}
