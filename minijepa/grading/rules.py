"""Shared rules: what a submission is, and what its files may contain (the static scan).

Used by the grader before any run and by the harness (tests/grading/harness.py) inside each run: the
exercise files, the imports they may make, and :func:`scan_source`, which flags a file or a function
that reaches for the reference or for interpreter internals before any of its code runs.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass

#: The exercise files, one per course topic (the grader ignores every other file of a submission).
EXERCISE_MODULES = ("patches", "attention", "masks", "predictor", "ema", "losses", "schedules", "probe")

#: Top-level modules an exercise file may import (plus its sibling exercise files, relatively or as
#: ``exercises.<name>``).
ALLOWED_IMPORTS = frozenset(
    {
        "torch", "einops", "numpy", "math", "cmath", "typing", "typing_extensions", "__future__",
        "functools", "itertools", "collections", "dataclasses", "operator", "numbers", "abc", "enum",
        "copy", "random", "statistics", "warnings",
    }
)  # fmt: skip

#: Parts of torch that start processes, load code or compare results: not for exercise files.
DENIED_SUBMODULES = (
    "torch.multiprocessing", "torch.distributed", "torch.utils.cpp_extension", "torch.hub", "torch.package",
    "torch.testing", "torch.utils.data", "torch.cuda", "torch.backends",
)  # fmt: skip

#: The reference implementations: a submission that imports them is scored zero.
REFERENCE_PACKAGES = ("minijepa", "solutions")

#: Builtins an exercise file may not name (they open files, run code or reach the interpreter).
DENIED_NAMES = frozenset(
    {
        "__import__", "__builtins__", "__loader__", "__spec__", "exec", "eval", "compile", "open",
        "breakpoint", "exit", "quit", "globals", "locals", "vars",
    }
)  # fmt: skip

#: Attributes an exercise file may not use (module escape hatches and interpreter internals).
DENIED_ATTRIBUTES = frozenset(
    {
        "sys", "os", "subprocess", "multiprocessing", "importlib", "builtins", "ctypes", "hub",
        "cpp_extension", "_exit", "setprofile", "settrace", "_getframe", "__import__", "__builtins__",
        "__globals__", "__code__", "__closure__", "__subclasses__", "__bases__", "__base__", "__mro__",
        "__dict__", "__loader__", "__spec__", "f_globals", "f_locals", "f_back", "f_builtins", "gi_frame",
        "tb_frame", "cr_frame",
    }
)  # fmt: skip

MAX_FILE_BYTES = 256 * 1024
_REFERENCE_STRING = re.compile(r"(^|[/\\.\s])(minijepa|solutions)($|[/\\.])")


@dataclass(frozen=True)
class Finding:
    """A static-scan problem in one exercise file; ``function`` is None when it concerns the whole file."""

    module: str
    line: int
    function: str | None
    message: str

    def __str__(self) -> str:
        return f"{self.module}.py line {self.line}: {self.message}"


def allowed_import(name: str) -> str | None:
    """None if an exercise file may ``import name``, else why not."""
    top = name.partition(".")[0]
    if top in REFERENCE_PACKAGES:
        return f"imports the reference implementation ({name}): write your own code"
    if top == "exercises":
        rest = name.split(".")[1:]
        if not rest or (rest[0] in EXERCISE_MODULES and len(rest) == 1):
            return None
        return f"imports {name}: only the exercise files themselves can be imported from exercises"
    if top not in ALLOWED_IMPORTS or any(name == d or name.startswith(d + ".") for d in DENIED_SUBMODULES):
        return f"imports {name}: exercise files may only import torch, einops, numpy, math and a few standard modules"
    return None


def scan_source(source: str | bytes, module: str) -> list[Finding]:
    """Static checks of one exercise file; an empty list means nothing suspicious was found.

    Flags syntax errors, imports outside :data:`ALLOWED_IMPORTS` (the reference package in particular),
    names and attributes that reach interpreter internals, strings naming the reference package, and
    assignments to attributes of imported modules (monkeypatching). A finding inside a top-level function
    concerns that function only; anywhere else it concerns the whole file.

    Bytes are decoded the way Python decodes a source file (PEP 263: UTF-8 by default, a UTF-8 BOM, or a
    ``# -*- coding: ... -*-`` line), so a file is accepted here exactly when Python itself can read it.
    """
    if isinstance(source, bytes) and len(source) > MAX_FILE_BYTES:
        return [Finding(module, 1, None, f"file is larger than {MAX_FILE_BYTES // 1024} KB")]
    try:
        tree = ast.parse(source, filename=f"{module}.py")
    except SyntaxError as error:
        if "unicode error" in str(error.msg) or "encoding" in str(error.msg):
            return [Finding(module, 1, None, f"cannot be decoded: {error.msg} (save it as UTF-8)")]
        return [Finding(module, error.lineno or 1, None, f"syntax error: {error.msg} (line {error.lineno})")]
    except (ValueError, RecursionError, MemoryError) as error:  # null bytes; nesting Python cannot compile
        return [Finding(module, 1, None, f"cannot be parsed: {type(error).__name__}: {error}")]
    return _Scanner(module).run(tree)


class _Scanner:
    def __init__(self, module: str):
        self.module = module
        self.findings: list[Finding] = []
        self.function: str | None = None  # the top-level function being visited
        self.imported: set[str] = set()  # names bound by imports anywhere in the file
        self.docstrings: set[int] = set()

    def run(self, tree: ast.Module) -> list[Finding]:
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                body = node.body
                if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                    self.docstrings.add(id(body[0].value))
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                for alias in node.names:
                    self.imported.add((alias.asname or alias.name).partition(".")[0])
        # An explicit walk, not NodeVisitor's recursion: a long expression (a sum of 600 terms) is a deep
        # tree, and the scan must take every file Python can compile.
        for statement in tree.body:
            if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef)):
                # Decorators, defaults and annotations run when the file is imported: they concern the file.
                a = statement.args
                at_import = [*statement.decorator_list, *a.defaults, *[d for d in a.kw_defaults if d is not None],
                             *[x.annotation for x in (*a.posonlyargs, *a.args, *a.kwonlyargs, a.vararg, a.kwarg)
                               if x is not None and x.annotation is not None],
                             *([statement.returns] if statement.returns is not None else [])]  # fmt: skip
                self._walk(at_import, None)
                self._walk(statement.body, statement.name)
            else:
                self._walk([statement], None)
        return self.findings

    def _walk(self, roots: list[ast.AST], function: str | None) -> None:
        self.function = function
        for root in roots:
            for node in ast.walk(root):
                check = getattr(self, f"visit_{type(node).__name__}", None)
                if check is not None:
                    check(node)
        self.function = None

    def flag(self, node: ast.AST, message: str) -> None:
        self.findings.append(Finding(self.module, getattr(node, "lineno", 1), self.function, message))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            problem = allowed_import(alias.name)
            if problem:
                self.flag(node, problem)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            target = (node.module or "").partition(".")[0]
            names = [a.name for a in node.names] if not node.module else [target]
            if node.level > 1 or any(n not in EXERCISE_MODULES for n in names):
                self.flag(node, "relative imports may only reach the other exercise files (from .masks import ...)")
            return
        problem = allowed_import(node.module or "")
        if problem:
            self.flag(node, problem)

    def visit_Name(self, node: ast.Name) -> None:
        if node.id in DENIED_NAMES:
            self.flag(node, f"uses {node.id} (not allowed in exercise files)")
        elif node.id in REFERENCE_PACKAGES:
            self.flag(node, f"refers to {node.id}, the reference implementation")

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if node.attr in DENIED_ATTRIBUTES:
            self.flag(node, f"uses .{node.attr} (not allowed in exercise files)")

    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str) and id(node) not in self.docstrings and _REFERENCE_STRING.search(node.value):
            self.flag(node, "names the reference implementation in a string")

    def _root(self, node: ast.AST) -> str | None:
        while isinstance(node, (ast.Attribute, ast.Subscript)):
            node = node.value
        return node.id if isinstance(node, ast.Name) else None

    def _check_targets(self, node: ast.AST, targets) -> None:
        for target in targets:
            for sub in ast.walk(target):
                if isinstance(sub, (ast.Attribute, ast.Subscript)) and self._root(sub) in self.imported:
                    self.flag(node, f"changes the library module {self._root(sub)} (monkeypatching is not allowed)")
                    return

    def visit_Assign(self, node: ast.Assign) -> None:
        self._check_targets(node, node.targets)

    def visit_AugAssign(self, node: ast.AugAssign) -> None:
        self._check_targets(node, [node.target])

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._check_targets(node, [node.target])

    def visit_Delete(self, node: ast.Delete) -> None:
        self._check_targets(node, node.targets)

    def visit_Call(self, node: ast.Call) -> None:
        if isinstance(node.func, ast.Name) and node.func.id in ("setattr", "delattr") and node.args:
            if self._root(node.args[0]) in self.imported:
                self.flag(node, f"changes the library module {self._root(node.args[0])} (monkeypatching is not allowed)")
