"""Mark the cells the autograder must run: ``python -m tools.grading.deps`` (fast grading).

Grading a notebook needs its imports (the first code cell, and any cell of
imports only), its answer cells (and the official checks the grader runs after
them), not its demonstrations and training. This tool works out,
statically, which code cells the answers depend on and writes the result into
each code cell's metadata: ``{"course": {"grade": "needed"}}`` or
``{"course": {"grade": "skip"}}``. ``make lectures`` copies cell metadata into
``lectures/``, Jupyter keeps it when a student edits a cell, so the grader reads
the marks from the student's own notebook.

How a cell is found needed (for each answer cell, among the cells above it):
- the names the answer uses: at top level, and inside its functions and
  classes (those are looked up when the check calls them, so every cell above
  the answer that binds the name counts);
- a cell that binds such a name (assignment, ``def``, ``class``, ``import``,
  ``for``/``with`` targets), or changes in place the object it names
  (``x.append(..)``, ``x[i] = ..``, ``x.attr = ..``, ``x += ..``, when the name
  is a value rather than a module, function or class), is needed, and so,
  transitively, are the cells it needs. (An object changed only by being passed
  to a function, ``train(model)``, is not followed: answers take their inputs
  as arguments. The grader's NameError fallback and the tests back this up.)
- a cell that changes a library's global setting at top level
  (``torch.set_default_dtype(...)``, ``torch.set_num_threads(...)``) is needed.
Random state does not matter: the grader seeds every generator before each check.

A cell marked ``{"course": {"grade": "always"}}`` by hand is kept as needed and
never rewritten. The grader also reruns this analysis on each student's notebook
and runs the union, so a student's own helper cells, or an answer that uses a
variable from a demonstration, are still run.

    python -m tools.grading.deps            # write the marks into solutions/*.ipynb
    python -m tools.grading.deps --check    # report notebooks whose marks are stale (exit 1)
    python -m tools.grading.deps DIR_OR_FILES...   # other notebooks (e.g. copies)
"""
from __future__ import annotations

import argparse
import ast
import builtins
import copy
import re
import sys
import symtable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import nbformat

from tools.course.nbcells import course_meta

ROOT = Path(__file__).resolve().parents[2]
SOLUTIONS = ROOT / "solutions"
NEEDED, SKIP, ALWAYS = "needed", "skip", "always"
_BUILTINS = set(dir(builtins)) | {"get_ipython", "display", "In", "Out", "_", "__", "___"}
# library settings that change what later code computes (set_num_threads does not: the
# checks' tolerances absorb the rounding of a different thread count)
_SETTER = re.compile(r"^(set_default_dtype|set_default_device|set_default_tensor_type|set_grad_enabled"
                     r"|use_deterministic_algorithms|set_flush_denormal|seterr|setrecursionlimit)$")


@dataclass
class CellNames:
    binds: set[str] = field(default_factory=set)  # names a cell binds at top level
    uses: set[str] = field(default_factory=set)  # names it reads from earlier cells (now or at call time)
    touches: set[str] = field(default_factory=set)  # names whose objects it may change in place
    defs: set[str] = field(default_factory=set)  # names bound only by import/def/class in this cell
    setter: bool = False  # changes a library's global setting at top level
    imports: bool = False  # nothing but import statements
    parsed: bool = True


def _python(source: str) -> str:
    """The cell's source as plain Python (IPython magics translated)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager

        return TransformerManager().transform_cell(source)
    except Exception:
        return source


def _scope_globals(table: symtable.SymbolTable, out: set[str]) -> None:
    """Names read as globals inside nested functions, lambdas, classes and comprehensions."""
    for child in table.get_children():
        for sym in child.get_symbols():
            if sym.is_referenced() and (sym.is_global() or (child.get_type() == "class" and not sym.is_assigned())):
                out.add(sym.get_name())
        _scope_globals(child, out)


class _TopLevel(ast.NodeVisitor):
    """Loads at top level (not inside def bodies) and the objects a top-level statement may change."""

    def __init__(self):
        self.loads: list[str] = []

    def visit_FunctionDef(self, node):  # decorators and defaults run now; the body later
        for d in node.decorator_list:
            self.visit(d)
        self.visit(node.args)
        if node.returns:
            self.visit(node.returns)

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Lambda(self, node):
        self.visit(node.args)

    def visit_Name(self, node):
        if isinstance(node.ctx, (ast.Load, ast.Del)):
            self.loads.append((node.id, (node.lineno, node.col_offset)))

    def visit_AugAssign(self, node):  # x += 1 reads x
        if isinstance(node.target, ast.Name):
            self.loads.append((node.target.id, (node.lineno, node.col_offset)))
        self.generic_visit(node)


def _base(node) -> str | None:
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _changed(stmt) -> set[str]:
    """Names whose objects a top-level statement may change in place: ``x.append(..)``,
    ``x.attr = ..``, ``x[i] = ..``, ``x += ..``, ``del x[i]`` (outside function bodies)."""
    out: set[str] = set()
    todo = [stmt]
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            out.add(_base(node.func.value))
        elif isinstance(node, (ast.Attribute, ast.Subscript)) and isinstance(node.ctx, (ast.Store, ast.Del)):
            out.add(_base(node.value))
        elif isinstance(node, ast.AugAssign):
            out.add(_base(node.target))
        todo.extend(ast.iter_child_nodes(node))
    out.discard(None)
    return out


@lru_cache(maxsize=4096)
def cell_names(source: str) -> CellNames:
    """What one code cell binds, uses and may change (see the module docstring)."""
    code = _python(source)
    out = CellNames()
    try:
        tree = ast.parse(code)
        table = symtable.symtable(code, "<cell>", "exec")
    except (SyntaxError, ValueError):
        out.parsed = False
        return out
    out.imports = bool(tree.body) and all(isinstance(n, (ast.Import, ast.ImportFrom)) for n in tree.body)
    # where the cell first binds each name: a load after that reads the cell's own value
    first_store: dict[str, tuple] = {}
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names = [node.id]
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names = [node.name]
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [(a.asname or a.name).split(".")[0] for a in node.names]
        elif isinstance(node, ast.AugAssign):
            continue
        for n in names:
            pos = (node.lineno, node.col_offset)
            first_store[n] = min(first_store.get(n, pos), pos)
    for stmt in tree.body:
        v = _TopLevel()
        v.visit(stmt)
        for name, pos in v.loads:
            if name not in first_store or pos <= first_store[name]:
                out.uses.add(name)
        out.touches |= _changed(stmt)
        if isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call):
            f = stmt.value.func
            if isinstance(f, ast.Attribute) and _SETTER.match(f.attr):
                out.setter = True
    top = table
    value_binds = set()
    for sym in top.get_symbols():
        if sym.is_assigned() or sym.is_imported() or sym.is_namespace():
            out.binds.add(sym.get_name())
            if sym.is_assigned() and not sym.is_namespace():
                value_binds.add(sym.get_name())
    for node in ast.walk(tree):  # `global x` inside a function also binds x
        if isinstance(node, ast.Global):
            out.binds.update(node.names)
            value_binds.update(node.names)
    imported = {(a.asname or a.name).split(".")[0] for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))
                for a in n.names}
    out.defs = (out.binds - value_binds) | (imported & out.binds)
    _scope_globals(top, out.uses)
    out.uses -= _BUILTINS
    out.touches -= _BUILTINS
    return out


def needed_cells(cells: list, anchors: list[int], skip: set[int] = frozenset()) -> set[int]:
    """Indices of the code cells the ``anchors`` (answer cells) need, anchors included.

    ``cells`` are notebook cells; cells in ``skip`` (check cells: the grader runs
    the official check instead) are never needed and never bind anything.
    """
    code = [i for i, c in enumerate(cells) if c.get("cell_type") == "code" and i not in skip]
    info = {i: cell_names(cells[i].get("source", "")) for i in code}
    # a name is a "value" (its object can be changed by a cell that uses it) unless every
    # binding of it in the notebook is an import, def or class
    defs_only: set[str] = set()
    valued: set[str] = set()
    for i in code:
        valued |= info[i].binds - info[i].defs
        defs_only |= info[i].defs
    defs_only -= valued
    needed: set[int] = set()
    for a in anchors:
        earlier = [i for i in code if i < a]
        got = {a}
        todo = set(info[a].uses) if a in info else set()
        seen: set[str] = set()
        while todo:
            name = todo.pop()
            if name in seen:
                continue
            seen.add(name)
            for i in earlier:
                if i in got:
                    continue
                if name in info[i].binds or (name not in defs_only and name in info[i].touches):
                    got.add(i)
                    todo |= info[i].uses - seen
        for i in earlier:  # global settings (default dtype, threads) made above an answer
            if info[i].setter and i not in got:
                got.add(i)
                stack = set(info[i].uses)
                while stack:
                    name = stack.pop()
                    for j in earlier:
                        if j not in got and (name in info[j].binds):
                            got.add(j)
                            stack |= info[j].uses
        needed |= got
    return needed


def import_cells(cells: list, skip: set[int] = frozenset()) -> list[int]:
    """The notebook's first code cell (its imports and set-up) and every cell of imports only."""
    code = [i for i, c in enumerate(cells) if c.get("cell_type") == "code" and i not in skip]
    return sorted(set(code[:1]) | {i for i in code if cell_names(cells[i].get("source", "")).imports})


def anchors_and_checks(nb) -> tuple[list[int], set[int]]:
    """(answer cells, check cells) of a notebook, by metadata."""
    answers, checks = [], set()
    for i, c in enumerate(nb.cells):
        role = course_meta(c).get("role")
        if c.cell_type == "code" and role == "answer":
            answers.append(i)
        elif role == "check":
            checks.add(i)
    return answers, checks


def marks(nb) -> dict[int, str]:
    """Cell index -> "needed" / "skip" / "always" for every code cell of ``nb``."""
    answers, checks = anchors_and_checks(nb)
    pinned = [i for i, c in enumerate(nb.cells) if course_meta(c).get("grade") == ALWAYS]
    last = max(answers, default=-1)
    imports = [i for i in import_cells(nb.cells, checks) if i < last]
    need = needed_cells(nb.cells, answers + pinned + imports, skip=checks)
    out = {}
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code":
            continue
        if course_meta(c).get("grade") == ALWAYS:
            out[i] = ALWAYS
        else:
            out[i] = NEEDED if (i in need or i in checks) else SKIP
    return out


def mark(nb) -> nbformat.NotebookNode:
    """A copy of ``nb`` with the grading marks written into its code cells' metadata."""
    nb = copy.deepcopy(nb)
    for i, m in marks(nb).items():
        meta = nb.cells[i].setdefault("metadata", {})
        course = meta.get("course")
        if not isinstance(course, dict):
            meta["course"] = {}
            course = meta["course"]
        course["grade"] = m
    return nb


def _paths(args: list[str]) -> list[Path]:
    if not args:
        return sorted(SOLUTIONS.glob("*.ipynb"))
    out = []
    for a in map(Path, args):
        out += sorted(a.glob("*.ipynb")) if a.is_dir() else [a]
    return out


def stale(paths: list[Path]) -> list[Path]:
    """The notebooks whose stored marks differ from what this tool would write."""
    out = []
    for p in paths:
        text = p.read_text()
        if nbformat.writes(mark(nbformat.reads(text, as_version=4))) + "\n" != text:
            out.append(p)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", help="notebooks or folders (default: solutions/)")
    ap.add_argument("--check", action="store_true", help="report stale marks, write nothing")
    args = ap.parse_args(argv)
    paths = _paths(args.paths)
    old = stale(paths)
    if args.check:
        for p in old:
            print(f"stale grading marks: {p}")
        return 1 if old else 0
    for p in old:
        nb = mark(nbformat.read(p, as_version=4))
        nbformat.write(nb, p)
        m = marks(nb)
        print(f"marked {p}: {sum(v != SKIP for v in m.values())} of {len(m)} code cells needed for grading")
    return 0


if __name__ == "__main__":
    sys.exit(main())
