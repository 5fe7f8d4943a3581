"""The rule API: a Rule base class, typed options, examples, and the CST-level Patch a rule offers."""

from __future__ import annotations

import ast
import inspect
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Mapping, Optional, Union, cast

from auditlint.model import Applicability

if TYPE_CHECKING:
    import libcst as cst

    Replacement = Union["cst.CSTNode", "cst.RemovalSentinel", "cst.FlattenSentinel[Any]"]

Trigger = Union[str, "tuple[str, ...]"]


@dataclass(frozen=True)
class ImportSpec:
    """An import a fix needs: `import module` (name None) or `from module import name [as asname]`."""

    module: str
    name: Optional[str] = None
    asname: Optional[str] = None


@dataclass
class Patch:
    """A fix expressed on the tree: node replacements applied in one transform, plus imports.

    `changes` maps an original node (by identity) to its replacement. Replacements in one patch
    must not nest. `module_statements` are top-level statements inserted after the imports,
    once per file (deduplicated by text).
    """

    changes: Mapping[cst.CSTNode, Replacement]
    title: str
    applicability: Applicability
    imports: tuple[ImportSpec, ...] = ()
    module_statements: tuple[str, ...] = ()

    @classmethod
    def safe(
        cls,
        changes: Mapping[cst.CSTNode, Replacement],
        title: str,
        imports: tuple[ImportSpec, ...] | list[ImportSpec] = (),
        module_statements: tuple[str, ...] | list[str] = (),
    ) -> Patch:
        return cls(dict(changes), title, Applicability.SAFE, tuple(imports), tuple(module_statements))

    @classmethod
    def unsafe(
        cls,
        changes: Mapping[cst.CSTNode, Replacement],
        title: str,
        imports: tuple[ImportSpec, ...] | list[ImportSpec] = (),
        module_statements: tuple[str, ...] | list[str] = (),
    ) -> Patch:
        return cls(dict(changes), title, Applicability.UNSAFE, tuple(imports), tuple(module_statements))


OPTION_TYPES: dict[str, tuple[type, ...]] = {
    "int": (int,),
    "float": (int, float),
    "str": (str,),
    "bool": (bool,),
    "list[str]": (list,),
}


@dataclass(frozen=True)
class Option:
    """A typed rule option, set under `[tool.auditlint.rules.CODE]`."""

    name: str
    type: str
    default: Any
    help: str

    def validate(self, value: Any) -> Any:
        """Return the value converted to the option's type, or raise ValueError."""
        kinds = OPTION_TYPES[self.type]
        if isinstance(value, bool) and self.type != "bool":
            raise ValueError(f"expected {self.type}, got a boolean")
        if not isinstance(value, kinds):
            raise ValueError(f"expected {self.type}, got {type(value).__name__}")
        checked = cast(Any, value)
        if self.type == "list[str]":
            if not all(isinstance(v, str) for v in checked):
                raise ValueError("expected a list of strings")
            return tuple(checked)
        if self.type == "float":
            return float(checked)
        return checked


@dataclass(frozen=True)
class Example:
    """A rule example; ok ones must give no finding, bad ones `count` findings and the fixed text."""

    code: str
    ok: bool
    fixed: Optional[str] = None
    count: int = 1
    options: Mapping[str, Any] = field(default_factory=dict)
    fix_style: str = "stdlib"
    title: str = ""


def ok(code: str, *, options: Optional[Mapping[str, Any]] = None, title: str = "") -> Example:
    """An example the rule must stay silent on."""
    return Example(inspect.cleandoc(code) + "\n", True, None, 0, options or {}, "stdlib", title)


def bad(
    code: str,
    *,
    fixed: Optional[str] = None,
    count: int = 1,
    options: Optional[Mapping[str, Any]] = None,
    fix_style: str = "stdlib",
    title: str = "",
) -> Example:
    """An example the rule must report (`count` times); `fixed` is the text after `--fix --unsafe-fixes`."""
    fixed_text = inspect.cleandoc(fixed) + "\n" if fixed is not None else None
    return Example(inspect.cleandoc(code) + "\n", False, fixed_text, count, options or {}, fix_style, title)


class Rule:
    """Base class of every rule; the class docstring is the rule's documentation.

    Subclasses define `visit_<NodeType>(self, node, ctx)` and `leave_<NodeType>(self, node, ctx)`
    methods; the engine dispatches one traversal to all enabled rules. A rule instance lives for
    one file, so it may keep per-file state on `self`.
    """

    code: ClassVar[str] = ""
    name: ClassVar[str] = ""
    summary: ClassVar[str] = ""
    #: The file must contain one of these; a tuple entry means all of its words must appear.
    triggers: ClassVar[tuple[Trigger, ...]] = ()
    #: A cheap test on the file's stdlib `ast` tree (see analysis/structure.py); False only when
    #: the rule can report nothing there. The engine runs it when every rule the triggers let
    #: through has one, and skips the LibCST parse when all of them say False.
    structure: ClassVar[Optional[Callable[[ast.Module], bool]]] = None
    options: ClassVar[tuple[Option, ...]] = ()
    examples: ClassVar[tuple[Example, ...]] = ()
    #: "safe", "unsafe" or "none": the most a fix of this rule can be.
    fix_safety: ClassVar[str] = "none"
    default_enabled: ClassVar[bool] = True

    def __init__(self, options: Optional[Mapping[str, Any]] = None) -> None:
        values = {opt.name: opt.default for opt in self.options}
        if options:
            values.update(options)
        self.opts: dict[str, Any] = values

    @classmethod
    def docs(cls) -> str:
        return inspect.cleandoc(cls.__doc__ or "")

    @classmethod
    def option(cls, name: str) -> Option:
        for opt in cls.options:
            if opt.name == name:
                return opt
        raise KeyError(name)
