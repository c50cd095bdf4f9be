"""The package's layering stays clean: no import cycle between archscout's modules (module-level imports, the
ones that run when a module is imported) and no module that reaches into another module's private names,
whether by importing them or by reading them off another object.

Shared internals have public names in modules whose own name starts with an underscore (``_registry``,
``_validate``, ``_torch``, ``_version``): importing those modules is allowed, their names are public."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "archscout"


def _modules() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_pkg)
    return out


MODULES = _modules()


def _target(module: str, is_pkg: bool, node: ast.ImportFrom) -> str | None:
    if node.level == 0:
        return node.module
    base = module.split(".") if is_pkg else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


class _Scan(ast.NodeVisitor):
    """Module-level import edges, imported private names, and private attributes read off other objects."""

    def __init__(self, module: str, is_pkg: bool) -> None:
        self.module, self.is_pkg = module, is_pkg
        self.edges: set[str] = set()
        self.private_imports: list[str] = []
        self.attr_reads: list[tuple[str, int]] = []  # (attribute, line) on anything but self / cls
        self.defined: set[str] = set()  # private attributes and functions this module defines
        self.depth = 0  # inside a function body: imports there do not run at import time

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self.defined.add(node.name)
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef  # type: ignore[assignment]

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        self.defined.add(node.name)
        self.generic_visit(node)

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.depth += 1  # annotations only: not a runtime import
            self.generic_visit(node)
            self.depth -= 1
        else:
            self.generic_visit(node)

    def visit_Assign(self, node: ast.Assign) -> None:
        for t in node.targets:
            self._define(t)
            if isinstance(t, ast.Name) and t.id == "__slots__" and isinstance(node.value, (ast.Tuple, ast.List)):
                self.defined.update(e.value for e in node.value.elts if isinstance(e, ast.Constant))
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:  # object.__setattr__(self, "_name", value) in frozen classes
        f = node.func
        if isinstance(f, ast.Attribute) and f.attr == "__setattr__" and len(node.args) >= 2 \
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            self.defined.add(node.args[1].value)
        self.generic_visit(node)

    def visit_AnnAssign(self, node: ast.AnnAssign) -> None:
        self._define(node.target)
        self.generic_visit(node)

    def _define(self, target: ast.expr) -> None:
        if isinstance(target, ast.Attribute):
            self.defined.add(target.attr)
        elif isinstance(target, ast.Name):
            self.defined.add(target.id)
        elif isinstance(target, (ast.Tuple, ast.List)):
            for e in target.elts:
                self._define(e)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if _private(node.attr) and not (isinstance(node.value, ast.Name) and node.value.id in ("self", "cls")):
            self.attr_reads.append((node.attr, node.lineno))
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        target = _target(self.module, self.is_pkg, node)
        if target is None or not target.startswith("archscout"):
            return
        for alias in node.names:
            full = f"{target}.{alias.name}"
            if _private(alias.name) and full not in MODULES:
                self.private_imports.append(f"{self.module}:{node.lineno} imports {alias.name} from {target}")
            if self.depth == 0:
                self.edges.add(full if full in MODULES else target)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            if alias.name in MODULES and self.depth == 0:
                self.edges.add(alias.name)


def _scan() -> dict[str, _Scan]:
    out = {}
    for module, (path, is_pkg) in MODULES.items():
        s = _Scan(module, is_pkg)
        s.visit(ast.parse(path.read_text(encoding="utf-8"), str(path)))
        s.edges.discard(module)
        out[module] = s
    return out


SCANS = _scan()


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycle():
    cycles = _cycles({m: s.edges for m, s in SCANS.items()})
    assert not cycles, f"import cycles between archscout modules: {cycles}"


def test_no_module_imports_another_modules_private_names():
    bad = [x for s in SCANS.values() for x in s.private_imports]
    assert not bad, "\n".join(bad)


def test_no_module_reads_private_attributes_defined_elsewhere():
    """``other._name`` is allowed only for a private name the module itself defines (its own classes' state,
    e.g. ``other._values`` in ``__eq__``); a private name that only another archscout module defines is a
    reach into that module's internals."""
    owners: dict[str, set[str]] = defaultdict(set)
    for m, s in SCANS.items():
        for name in s.defined:
            if _private(name):
                owners[name].add(m)
    bad = [f"{m}:{line} reads .{attr} (defined in {sorted(owners[attr])})"
           for m, s in SCANS.items() for attr, line in s.attr_reads
           if attr in owners and m not in owners[attr]]
    assert not bad, "\n".join(bad)


def test_the_checks_catch_what_they_look_for():
    """The scanners themselves: a cycle and a private import in made-up modules are found."""
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    s = _Scan("archscout.x", False)
    s.visit(ast.parse("from .study import _secret\nfrom .objectives import Objective\n"
                      "def f(o):\n    return o._hidden\n"))
    assert s.private_imports == ["archscout.x:1 imports _secret from archscout.study"]
    assert s.edges == {"archscout.study", "archscout.objectives"}
    assert s.attr_reads == [("_hidden", 4)]


@pytest.mark.parametrize("module", ["archscout.study", "archscout.strategies.multifidelity",
                                    "archscout.space.space", "archscout.hardware.table"])
def test_modules_named_in_old_cycles_import_cleanly(module):
    import importlib

    importlib.import_module(module)
