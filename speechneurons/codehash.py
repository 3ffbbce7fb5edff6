"""What code a workflow script runs: its package modules, found by reading imports.

Each rule passes ``code`` as a param: a content hash of every module of the
``speechneurons`` package that its script imports, followed transitively
through the package (with :mod:`ast`; nothing is imported or run), plus the
``__init__.py`` of every package on the way, which Python runs on import.
The page templates a module names in its ``TEMPLATE`` constant count as
part of it (:mod:`speechneurons.pages`), and a package whose ``__init__.py``
sets ``DISCOVERS_ITS_MODULES = True`` (it imports its modules by listing its
folder: the model families) counts as importing each of them.
Snakemake reruns a job whose params changed, so a change to any module a
script depends on reruns exactly the jobs that use it.

A Python file counts by its logic, not its text (:func:`logic_of`): its
syntax tree without docstrings, comments, line numbers or formatting, so that
editing a docstring, a comment or the layout reruns nothing, while a changed
line of code, name or constant reruns the jobs whose closure holds it. The
script itself counts the same way; the workflow profiles turn Snakemake's own
trigger on a script's modification time off (``rerun-triggers`` without
``code``), so a touched or reformatted script reruns nothing either. Pure
Python: the Snakefile imports it.
"""

from __future__ import annotations

import ast
import hashlib
import re
from pathlib import Path
from typing import Callable, Iterable, Sequence

PACKAGE = "speechneurons"


def _module_file(root: Path, module: str) -> Path | None:
    """The file of dotted ``module`` under ``root`` (the folder holding the package), or None."""
    base = root.joinpath(*module.split("."))
    if base.with_suffix(".py").is_file():
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


#: (file, sha256 of its bytes, root) -> (the package modules it imports, the templates it names,
#: whether it imports every module of its folder): each file is parsed once
_PARSED: dict[tuple[str, str, str], tuple[set[str], list[str], bool]] = {}


#: sha256 of a file's bytes -> its logic (:func:`logic_of`)
_LOGIC: dict[str, bytes] = {}

_DOCUMENTED = (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)


def logic_of(source: Path) -> bytes:
    """What a Python file runs: its syntax tree without docstrings, dumped without positions.

    Comments, blank lines, line breaks, quotes and docstrings (the first
    string expression of the module, a class or a function) do not count; a
    body left with only its docstring keeps an empty ``pass`` in its place.
    """
    data = Path(source).read_bytes()
    key = hashlib.sha256(data).hexdigest()
    if key not in _LOGIC:
        tree = ast.parse(data.decode(), filename=str(source))
        for node in ast.walk(tree):
            if isinstance(node, _DOCUMENTED) and node.body and isinstance(node.body[0], ast.Expr) \
                    and isinstance(node.body[0].value, ast.Constant) and isinstance(node.body[0].value.value, str):
                node.body = node.body[1:] or [ast.Pass()]
        _LOGIC[key] = ast.dump(tree, include_attributes=False).encode()
    return _LOGIC[key]


def _parsed(source: Path, root: Path) -> tuple[set[str], list[str], bool]:
    data = source.read_bytes()
    key = (str(source), hashlib.sha256(data).hexdigest(), str(root))
    if key not in _PARSED:
        tree = ast.parse(data.decode(), filename=str(source))
        discovers = source.name == "__init__.py" and _constants(tree).get("DISCOVERS_ITS_MODULES") is True
        _PARSED[key] = (_parse_imports(tree, root), _templates_named(tree), discovers)
    return _PARSED[key]


def _constants(tree: ast.Module) -> dict[str, object]:
    """The module's top-level ``NAME = <constant>`` assignments (plain or annotated)."""
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and isinstance(node.value, ast.Constant):
            for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def _imported_modules(source: Path, root: Path) -> set[str]:
    """Dotted names of the package modules that ``source`` imports (any depth in the file); for a
    package that discovers its modules, each module in its folder now."""
    imports, _, discovers = _parsed(source, root)
    if not discovers:
        return set(imports)
    package = ".".join(source.parent.relative_to(root).parts)
    return imports | {f"{package}.{path.stem}" for path in source.parent.glob("*.py")
                      if path.name != "__init__.py"}


def _parse_imports(tree: ast.Module, root: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # ``from speechneurons import provenance`` imports a module, not a name
            found |= {f"{node.module}.{alias.name}" for alias in node.names
                      if _module_file(root, f"{node.module}.{alias.name}") is not None}
    modules = set()
    for name in found:
        if name != PACKAGE and not name.startswith(PACKAGE + "."):
            continue
        parts = name.split(".")
        # the module and every package above it (their __init__ runs on import)
        modules |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return {m for m in modules if _module_file(root, m) is not None}


def script_modules(script: str | Path, root: str | Path) -> list[Path]:
    """Every package file ``script`` depends on through imports, sorted.

    root: the folder that holds the ``speechneurons`` package (the repository).
    """
    root = Path(root)
    seen = _reachable(_imported_modules(Path(script), root),
                      lambda module: _imported_modules(_module_file(root, module), root))
    return sorted(_module_file(root, m) for m in seen)


def _reachable(start: Iterable[str], neighbours: Callable[[str], Iterable[str]]) -> set[str]:
    """Every name reachable from ``start`` through ``neighbours`` (the names themselves included)."""
    todo, seen = list(start), set()
    while todo:
        name = todo.pop()
        if name not in seen:
            seen.add(name)
            todo += [n for n in neighbours(name) if n not in seen]
    return seen


#: ``{% extends "x.html" %}``, ``{% import "x.html" as y %}``, ``{% include ... %}``, ``{% from ... %}``
_TEMPLATE_REFERENCE = re.compile(r"""{%-?\s*(?:extends|import|include|from)\s+["']([^"']+)["']""")


def _templates_named(tree: ast.Module) -> list[str]:
    """The template name a module gives its constant ``TEMPLATE`` (speechneurons.pages)."""
    template = _constants(tree).get("TEMPLATE")
    return [template] if isinstance(template, str) else []


def template_files(modules: Sequence[Path], root: str | Path) -> list[Path]:
    """The page templates ``modules`` render, and those the templates extend, import or include,
    sorted: files of ``<root>/speechneurons/templates/``."""
    folder = Path(root) / PACKAGE / "templates"
    seen = _reachable([name for module in modules for name in _parsed(Path(module), Path(root))[1]],
                      lambda name: _TEMPLATE_REFERENCE.findall((folder / name).read_text()))
    return sorted(folder / name for name in seen)


def imports_name(script: str | Path, module: str, name: str) -> bool:
    """Whether ``script`` has ``from <module> import <name>`` (read with ast)."""
    tree = ast.parse(Path(script).read_text(), filename=str(script))
    return any(isinstance(node, ast.ImportFrom) and node.module == module
               and any(alias.name == name for alias in node.names) for node in ast.walk(tree))


def loads_corpus(script: str | Path) -> bool:
    """Whether ``script`` loads the corpus by name (``from speechneurons.datasets import
    load_corpus`` or ``corpus_spec``): its code hash then takes in the corpus's own file."""
    return any(imports_name(script, "speechneurons.datasets", name) for name in ("load_corpus", "corpus_spec"))


def code_hash(script: str | Path, root: str | Path, loaded: Sequence[Path] = ()) -> str:
    """16 hex digits of sha256 over the path and logic (:func:`logic_of`) of the script and of
    every file :func:`script_modules` lists, then of ``loaded``: modules the script imports by
    name at run time (the corpus file that :func:`speechneurons.datasets.load_corpus` finds),
    with their own imports; then the path and bytes of the page templates those modules render
    (:func:`template_files`)."""
    root = Path(root)
    digest = hashlib.sha256()
    modules = [Path(script), *script_modules(script, root)]
    for extra in loaded:
        modules += [m for m in [Path(extra), *script_modules(extra, root)] if m not in modules]
    for path in modules:
        digest.update(path.resolve().relative_to(root.resolve()).as_posix().encode())
        digest.update(logic_of(path))
    for path in template_files(modules, root):
        digest.update(path.relative_to(root).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]
