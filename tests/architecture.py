"""Architecture rules for conv_conformance, checkable on any source tree.

Every ``check_*`` function takes the root of a source tree (a checkout: ``conv_conformance/`` plus
``reference/ oracle/ conformance/ reports/`` at the top level, or an installed-style tree with the
subpackages inside ``conv_conformance/``) and returns a list of human-readable violations; an
empty list means the rule holds. Nothing here imports the package under analysis (nor any of the
frameworks it wraps): rules 2, 4 and 5 read the sources with :mod:`ast`; rules 1 and 3 run
import-linter / grimp in a subprocess on a staged tree (a temporary folder of symbolic links, or
copies) in which the subpackages are inside ``conv_conformance/`` (grimp walks a package's
directory, so it cannot follow the source checkout's ``__path__`` trick).

The rules:

1. :func:`check_layers` -- the layers, bottom to top: ``vocabulary`` (and ``_compat``) <
   ``reference`` < ``oracle`` < ``conformance`` < ``reports`` < ``cli``; a module imports only
   from its own layer or below (import-linter's layers contract, all imports anywhere in a module).
2. :func:`check_reference_dependencies` -- the reference imports only NumPy and the standard
   library (and the bottom layer, which is held to the same rule).
3. :func:`check_cycles` -- no import cycle inside a package (or among the root modules).
4. :func:`check_private_imports` -- no ``from X import _name`` across modules (a private module
   of the importer's own package excepted).
5. :func:`check_function_level_imports` -- a project module is imported inside a function only if
   importing it loads a heavy framework (or ``if TYPE_CHECKING:``, or an explicit exception).

Rules 1 and 5 take explicit exceptions, ``(importer, imported, reason)``;
:func:`stale_layer_exceptions` and :func:`stale_allowed` report the ones that excuse nothing.
"""
from __future__ import annotations

import ast
import functools
import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
from collections import deque
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

ROOT_PACKAGE = "conv_conformance"
# The subpackages that live at the repository's top level in a source checkout.
SUBPACKAGES = ("reference", "oracle", "conformance", "reports")

# Bottom to top. Modules in one tuple share a layer (and may import each other).
LAYERS: tuple[tuple[str, ...], ...] = (
    (f"{ROOT_PACKAGE}.vocabulary", f"{ROOT_PACKAGE}._compat"),
    (f"{ROOT_PACKAGE}.reference",),
    (f"{ROOT_PACKAGE}.oracle",),
    (f"{ROOT_PACKAGE}.conformance",),
    (f"{ROOT_PACKAGE}.reports",),
    (f"{ROOT_PACKAGE}.cli",),
)
# Layers that may not exist yet (the refactor adds them); the others must exist.
OPTIONAL_LAYER_MODULES = frozenset(
    {f"{ROOT_PACKAGE}.vocabulary", f"{ROOT_PACKAGE}._compat", f"{ROOT_PACKAGE}.cli"})

REFERENCE = f"{ROOT_PACKAGE}.reference"
# Project modules the reference may import besides its own: the bottom layer (the shared
# vocabulary, the old-name aliases), which is then held to the reference's own rule.
REFERENCE_MAY_USE = (f"{ROOT_PACKAGE}.vocabulary", f"{ROOT_PACKAGE}._compat")
REFERENCE_EXTERNALS = frozenset({"numpy"})

HEAVY = frozenset({"tensorflow", "keras", "tf_keras", "torch", "jax", "jaxlib", "flax", "onnx",
                   "onnxruntime", "openvino", "ai_edge_litert", "tflite_runtime"})

GRIMP_TIMEOUT_S = 120

# Explicit exceptions a test passes in: (importer, imported, reason).
Allowed = Sequence[tuple[str, str, str]]


# ---------------------------------------------------------------------------------------------
# Discovering the modules of a tree
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ModuleFile:
    name: str          # dotted module name, e.g. conv_conformance.oracle.cases
    path: Path         # the source file in the analysed tree
    is_package: bool   # an __init__.py
    rel: str           # path of the file inside the staged conv_conformance/ folder
    source: str = ""   # path of the file relative to the analysed tree's root

    @property
    def package(self) -> str:
        """The package a relative import of level 1 resolves against."""
        return self.name if self.is_package else self.name.rpartition(".")[0]


def _package_files(directory: Path, prefix: str, rel_prefix: str) -> Iterable[ModuleFile]:
    """The modules of the regular package in `directory`, recursively (namespace folders and
    __pycache__ are skipped: the distribution ships regular packages only)."""
    if not (directory / "__init__.py").is_file():
        return
    for path in sorted(directory.iterdir()):
        if path.is_dir():
            if path.name != "__pycache__" and path.name.isidentifier():
                yield from _package_files(path, f"{prefix}.{path.name}",
                                          f"{rel_prefix}{path.name}/")
        elif path.suffix == ".py" and path.stem.isidentifier():
            if path.name == "__init__.py":
                yield ModuleFile(prefix, path, True, f"{rel_prefix}__init__.py")
            else:
                yield ModuleFile(f"{prefix}.{path.stem}", path, False, f"{rel_prefix}{path.name}")


def discover(root: Path) -> dict[str, ModuleFile]:
    """Every module of the conv_conformance distribution in the source tree at `root`."""
    root = Path(root)
    top = root / ROOT_PACKAGE
    if not (top / "__init__.py").is_file():
        raise FileNotFoundError(f"{top / '__init__.py'} not found: is {root} a source tree?")
    modules = {m.name: m for m in _package_files(top, ROOT_PACKAGE, "")}
    for sub in SUBPACKAGES:
        if f"{ROOT_PACKAGE}.{sub}" in modules:
            continue  # installed layout: already inside conv_conformance/
        for m in _package_files(root / sub, f"{ROOT_PACKAGE}.{sub}", f"{sub}/"):
            modules[m.name] = m
    return {name: replace(m, source=m.path.relative_to(root).as_posix())
            for name, m in modules.items()}


def stage(root: Path, dest: Path, copy: bool = False) -> Path:
    """Lay the tree out at `dest`/conv_conformance/ with the subpackages inside it, the layout
    grimp can walk: symbolic links to the tree's folders and files (grimp follows them), or
    copies of its modules with `copy` (or where links cannot be made). Returns `dest` (put it
    first on sys.path to analyse it)."""
    root, dest = Path(root).resolve(), Path(dest)
    modules = discover(root)
    if not copy:
        try:
            top = dest / ROOT_PACKAGE
            top.mkdir(parents=True)
            for entry in (root / ROOT_PACKAGE).iterdir():
                if entry.name != "__pycache__":
                    (top / entry.name).symlink_to(entry, entry.is_dir())
            for sub in SUBPACKAGES:
                if not (top / sub).exists() and f"{ROOT_PACKAGE}.{sub}" in modules:
                    (top / sub).symlink_to(root / sub, True)
            return dest
        except OSError:
            shutil.rmtree(dest / ROOT_PACKAGE, ignore_errors=True)
    for m in modules.values():
        target = dest / ROOT_PACKAGE / m.rel
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            shutil.copyfile(m.path, target)
        except FileNotFoundError:  # removed since it was listed (the tree is being edited)
            continue
    return dest


def _fingerprint(modules: dict[str, ModuleFile]) -> tuple:
    """Names and contents of the modules: the key results are cached under."""
    out = []
    for name in sorted(modules):
        try:
            digest = hashlib.sha1(modules[name].path.read_bytes()).hexdigest()
        except FileNotFoundError:
            digest = None
        out.append((name, modules[name].source, digest))
    return tuple(out)


def _in_package(name: str, package: str) -> bool:
    return name == package or name.startswith(package + ".")


def _ancestors(name: str) -> list[str]:
    parts = name.split(".")
    return [".".join(parts[:i]) for i in range(1, len(parts))]


# ---------------------------------------------------------------------------------------------
# Reading imports with ast
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ImportRecord:
    importer: str              # the importing module
    line: int
    statement: str             # the import as written (one alias of it)
    target: str | None         # the project module it loads (None if external)
    external: str | None       # top-level name of an external import (None if project)
    from_module: str | None    # `from X import name`: X resolved (absolute); None for `import`
    name: str | None           # `from X import name`: name; None for `import`
    function: str | None       # enclosing function's qualified name, None at module level
    type_checking: bool        # under `if TYPE_CHECKING:`
    missing: bool = False      # a project module the tree does not have

    @property
    def module_level(self) -> bool:
        """Runs when the module is imported (class bodies, if/try blocks included)."""
        return self.function is None and not self.type_checking


@dataclass
class SourceModule:
    file: ModuleFile
    imports: list[ImportRecord] = field(default_factory=list)
    error: str | None = None


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


@dataclass(frozen=True)
class _RawImport:
    """An import statement's alias as written, before resolution against a tree's modules."""
    line: int
    level: int               # 0 for `import x` and absolute `from x import y`
    module: str | None       # `import module` / `from module import name`
    name: str | None         # None for `import module`
    asname: str | None
    function: str | None
    type_checking: bool


_COMPOUND_FIELDS = ("body", "orelse", "finalbody")


def _walk_statements(body: list[ast.stmt], scope: tuple[tuple[str, bool], ...], guarded: bool,
                     out: list[_RawImport]) -> None:
    """Collect the imports in a statement list. Only statements are walked (imports are
    statements: no expression can hold one), which keeps this fast."""
    function = ".".join(n for n, _ in scope) if any(f for _, f in scope) else None
    for stmt in body:
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                out.append(_RawImport(stmt.lineno, 0, alias.name, None, alias.asname, function,
                                      guarded))
        elif isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                out.append(_RawImport(stmt.lineno, stmt.level, stmt.module, alias.name,
                                      alias.asname, function, guarded))
        elif isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
            _walk_statements(stmt.body, scope + ((stmt.name, True),), guarded, out)
        elif isinstance(stmt, ast.ClassDef):  # a class body runs when the module is imported
            _walk_statements(stmt.body, scope + ((stmt.name, False),), guarded, out)
        elif isinstance(stmt, ast.If):
            _walk_statements(stmt.body, scope, guarded or _is_type_checking(stmt.test), out)
            _walk_statements(stmt.orelse, scope, guarded, out)
        else:  # for/while/with/try/match: their blocks run in the enclosing scope
            for name in _COMPOUND_FIELDS:
                _walk_statements(getattr(stmt, name, None) or [], scope, guarded, out)
            for handler in getattr(stmt, "handlers", None) or []:
                _walk_statements(handler.body, scope, guarded, out)
            for case in getattr(stmt, "cases", None) or []:
                _walk_statements(case.body, scope, guarded, out)


@functools.lru_cache(maxsize=4096)
def _raw_imports(source: bytes, filename: str) -> tuple[_RawImport, ...] | str:
    """The imports of a source text, or the reason it does not parse (cached by content, so a
    copied tree costs one parse per changed file)."""
    try:
        tree = ast.parse(source, filename=filename)
    except (SyntaxError, ValueError) as exc:
        return str(exc)
    out: list[_RawImport] = []
    _walk_statements(tree.body, (), False, out)
    return tuple(out)


def _resolve(module: ModuleFile, raw: _RawImport, modules: dict[str, ModuleFile]) -> ImportRecord:
    if raw.name is None:  # import a.b.c
        dotted, base = raw.module or "", None
        statement = f"import {raw.module}"
    else:
        if raw.level:
            parts = module.package.split(".")
            keep = len(parts) - (raw.level - 1)
            if keep <= 0:
                base = raw.module or ""  # beyond the top: leave it unresolved
            else:
                base = ".".join(parts[:keep] + ([raw.module] if raw.module else []))
        else:
            base = raw.module or ""
        sub = f"{base}.{raw.name}"
        dotted = sub if raw.name != "*" and sub in modules else base
        statement = f"from {'.' * raw.level}{raw.module or ''} import {raw.name}"
    if raw.asname:
        statement += f" as {raw.asname}"
    if _in_package(dotted, ROOT_PACKAGE):
        # kept as written if the tree has no such module (a typo, a module moved or still to be
        # written): _fmt() says so
        target, external = dotted, None
    else:
        target, external = None, dotted.split(".")[0]
    return ImportRecord(importer=module.name, line=raw.line, statement=statement, target=target,
                        external=external, from_module=base, name=raw.name,
                        function=raw.function, type_checking=raw.type_checking,
                        missing=target is not None and target not in modules)


def _parse(module: ModuleFile, modules: dict[str, ModuleFile]) -> SourceModule:
    result = SourceModule(module)
    try:
        raw = _raw_imports(module.path.read_bytes(), module.source)
    except OSError as exc:
        raw = str(exc)
    if isinstance(raw, str):
        result.error = f"cannot parse {module.name} ({module.source}): {raw}"
    else:
        result.imports = [_resolve(module, r, modules) for r in raw]
    return result


@functools.lru_cache(maxsize=16)
def _analyse_cached(root: str, fingerprint: tuple) -> dict[str, SourceModule]:
    modules = discover(Path(root))
    return {name: _parse(m, modules) for name, m in modules.items()}


def analyse(root: Path) -> dict[str, SourceModule]:
    """Every module of the tree at `root` with its imports (cached while the files don't change)."""
    root = Path(root).resolve()
    return _analyse_cached(str(root), _fingerprint(discover(root)))


def _parse_errors(sources: dict[str, SourceModule]) -> list[str]:
    return [s.error for s in sources.values() if s.error]


def _fmt(record: ImportRecord, statement: str | None = None) -> str:
    where = f"line {record.line}"
    if record.function:
        where += f", in {record.function}()"
    return (f"{record.importer} -> {record.target or record.external} ({where}): "
            f"`{statement or record.statement}`"
            + (" [no such module in the tree]" if record.missing else ""))


def _by_statement(records: Iterable[ImportRecord]) -> list[tuple[ImportRecord, str]]:
    """Records merged per import statement and imported module (one per `from X import a, b`),
    with the statement rewritten to name every alias merged."""
    groups: dict[tuple, list[ImportRecord]] = {}
    for rec in records:
        groups.setdefault((rec.importer, rec.line, rec.target, rec.external, rec.from_module),
                          []).append(rec)
    out = []
    for recs in groups.values():
        first = recs[0]
        if len(recs) == 1:
            out.append((first, first.statement))
        else:
            head, _, _ = first.statement.partition(" import ")
            names = ", ".join(r.statement.partition(" import ")[2] for r in recs)
            out.append((first, f"{head} import {names}"))
    return out


# ---------------------------------------------------------------------------------------------
# Rule 1: layers (import-linter on a staged tree, in a subprocess)
# ---------------------------------------------------------------------------------------------

_GRIMP_SCRIPT = r"""
import importlib.util, json, sys
stage, root_package = sys.argv[1], sys.argv[2]
layers, packages = json.loads(sys.argv[3]), json.loads(sys.argv[4])
sys.path.insert(0, stage)
spec = importlib.util.find_spec(root_package)
if spec is None or not (spec.origin or "").startswith(stage):
    raise SystemExit(f"{root_package} resolves to {spec and spec.origin}, "
                     f"not to the staged copy in {stage}")
import grimp
from importlinter.contracts.layers import LayersContract

out = {"layers": [], "layer_error": None, "edges": [], "fatal": None}

def links(link_list):
    return [{"importer": l["importer"], "imported": l["imported"],
             "lines": [n for n in l["line_numbers"]]} for l in link_list]

try:
    graph = grimp.build_graph(root_package, cache_dir=None)
    # The graph for cycles: imports anywhere in a module, except under `if TYPE_CHECKING:` (the
    # sanctioned way to name a type without importing its module at run time).
    cycle_graph = grimp.build_graph(root_package, cache_dir=None,
                                    exclude_type_checking_imports=True)
except Exception as exc:  # e.g. a syntax error in a module
    out["fatal"] = f"{type(exc).__name__}: {exc}".replace(stage + "/", "")
    print(json.dumps(out))
    raise SystemExit(0)
missing = [p for p in packages if p not in graph.modules]
try:
    if missing:
        raise ValueError("missing layer package(s): " + ", ".join(missing))
    contract = LayersContract(
        name="layers", session_options={"root_packages": [root_package]},
        contract_options={"layers": layers, "containers": [root_package]})
    check = contract.check(graph, verbose=False)
    for dependency in check.metadata["invalid_dependencies"]:
        for route in dependency["routes"]:
            out["layers"].append({
                "lower": dependency["importer"], "higher": dependency["imported"],
                "chain": links(route["chain"]), "extra_firsts": links(route["extra_firsts"]),
                "extra_lasts": links(route["extra_lasts"])})
except Exception as exc:  # an invalid contract or a missing layer: report, don't crash
    out["layer_error"] = f"{type(exc).__name__}: {exc}"

for importer in sorted(cycle_graph.modules):
    for imported in sorted(cycle_graph.find_modules_directly_imported_by(importer)):
        details = cycle_graph.get_import_details(importer=importer, imported=imported)
        out["edges"].append({"importer": importer, "imported": imported,
                             "lines": sorted({d["line_number"] for d in details})})
print(json.dumps(out))
"""


def _importlinter_layers() -> list[str]:
    """LAYERS as import-linter's `layers` option: top first, relative to the container,
    optional layers in parentheses, modules sharing a layer joined by ':' (not independent)."""
    out = []
    for layer in reversed(LAYERS):
        tails = []
        for module in layer:
            tail = module[len(ROOT_PACKAGE) + 1:]
            tails.append(f"({tail})" if module in OPTIONAL_LAYER_MODULES else tail)
        out.append(" : ".join(tails))
    return out


def _run_grimp(root: Path) -> dict:
    required = [m for layer in LAYERS for m in layer if m not in OPTIONAL_LAYER_MODULES]
    with tempfile.TemporaryDirectory(prefix="arch-stage-") as tmp:
        staged = stage(root, Path(tmp) / "stage")
        proc = subprocess.run(
            [sys.executable, "-I", "-c", _GRIMP_SCRIPT, str(staged), ROOT_PACKAGE,
             json.dumps(_importlinter_layers()), json.dumps(required)],
            cwd=tmp, capture_output=True, text=True, timeout=GRIMP_TIMEOUT_S)
    if proc.returncode != 0:
        raise RuntimeError(f"grimp/import-linter subprocess failed ({proc.returncode}):\n"
                           f"{proc.stderr[-4000:]}")
    return json.loads(proc.stdout)


def grimp_analysis(root: Path) -> dict:
    """import-linter's layers check and grimp's import edges for the tree at `root`."""
    # Cached by content (module names, layout, sources): a copy of a tree already analysed, or a
    # tree analysed again unchanged, costs no subprocess.
    root = Path(root).resolve()
    fingerprint = _fingerprint(discover(root))
    if fingerprint not in _GRIMP_RESULTS:
        _GRIMP_RESULTS[fingerprint] = _run_grimp(root)
    return _GRIMP_RESULTS[fingerprint]


_GRIMP_RESULTS: dict[tuple, dict] = {}


def _lines(lines: Sequence[int | None]) -> str:
    shown = ", ".join("?" if n is None else str(n) for n in lines)
    return f"line {shown}" if len(lines) == 1 else f"lines {shown}"


def layer_violations(root: Path) -> list[tuple[str, str, str]]:
    """Rule 1, structured: (importer, imported, message) per illegal import from a lower to a
    higher layer; an indirect chain has its first and last module as importer and imported."""
    result = grimp_analysis(root)
    if result["fatal"]:
        return [("", "", f"cannot build the import graph: {result['fatal']}")]
    out: list[tuple[str, str, str]] = []
    if result["layer_error"]:
        out.append(("", "", f"layers contract could not be checked: {result['layer_error']}"))
    for dep in result["layers"]:
        prefix = f"{dep['lower']} may not import {dep['higher']}: "
        chain = dep["chain"]
        if len(chain) == 1:  # direct: every (importer, imported) pair is its own violation
            for link in [*chain, *dep["extra_firsts"], *dep["extra_lasts"]]:
                out.append((link["importer"], link["imported"],
                            f"{prefix}{link['importer']} -> {link['imported']} "
                            f"({_lines(link['lines'])})"))
        else:
            text = " -> ".join([chain[0]["importer"]] + [
                f"{link['imported']} ({_lines(link['lines'])})" for link in chain])
            extras = [f"{x['importer']} -> {x['imported']} ({_lines(x['lines'])})"
                      for x in dep["extra_firsts"] + dep["extra_lasts"]]
            out.append((chain[0]["importer"], chain[-1]["imported"],
                        f"{prefix}indirectly: {text}"
                        + (f" (also: {'; '.join(extras)})" if extras else "")))
    return sorted(out, key=lambda v: v[2])


def check_layers(root: Path, allowed: Allowed = ()) -> list[str]:
    """Rule 1. One entry per illegal import (or indirect chain) from a lower to a higher layer
    that no `allowed` entry (importer, imported, reason) excuses."""
    return [text for importer, imported, text in layer_violations(root)
            if not any(e[0] == importer and e[1] == imported for e in allowed)]


def stale_layer_exceptions(root: Path, allowed: Allowed) -> list[str]:
    """The `allowed` layer exceptions that excuse no violation any more (or have no reason)."""
    pairs = {(importer, imported) for importer, imported, _ in layer_violations(root)}
    return _stale(allowed, lambda e: (e[0], e[1]) in pairs, "layer")


def _stale(allowed: Allowed, matches, what: str) -> list[str]:
    out = []
    for entry in allowed:
        if not (len(entry) == 3 and str(entry[2]).strip()):
            out.append(f"{what} exception {entry!r} needs a reason")
        if not matches(entry):
            out.append(f"stale {what} exception {entry[0]} -> {entry[1]}: it excuses nothing "
                       "any more; remove it")
    return out


# ---------------------------------------------------------------------------------------------
# Rule 2: the reference imports only NumPy and the standard library
# ---------------------------------------------------------------------------------------------

def _reference_world(name: str) -> bool:
    """The modules importing the reference runs: the reference, the root package's __init__ (the
    parent of every module) and the bottom-layer modules the reference may use."""
    return (name == ROOT_PACKAGE or _in_package(name, REFERENCE)
            or any(_in_package(name, v) for v in REFERENCE_MAY_USE))


def check_reference_dependencies(root: Path) -> list[str]:
    """Rule 2. Every import anywhere in the reference (functions and TYPE_CHECKING blocks
    included) is NumPy, the standard library, the reference itself or a bottom-layer module
    (vocabulary, _compat); those, and the root package's __init__ (which importing the reference
    runs too), are held to the same rule."""
    sources = analyse(root)
    stdlib = set(sys.stdlib_module_names)
    checked = [n for n in sources if _reference_world(n)]
    out = _parse_errors({n: sources[n] for n in checked})
    for name in sorted(checked):
        for rec, statement in _by_statement(sources[name].imports):
            if rec.external is not None:
                if rec.external in stdlib or rec.external in REFERENCE_EXTERNALS:
                    continue
                out.append(f"{_fmt(rec, statement)} [{rec.external} is neither NumPy nor the "
                           "standard library]")
            elif not _reference_world(rec.target):
                out.append(f"{_fmt(rec, statement)} [the reference may not import other "
                           "conv_conformance packages]")
    return out


# ---------------------------------------------------------------------------------------------
# Rule 3: no import cycle inside a package
# ---------------------------------------------------------------------------------------------

def cycle_scopes(modules: Iterable[str]) -> dict[str, set[str]]:
    """The groups cycles are looked for in: each direct subpackage of conv_conformance (all of
    its descendants together), and the root package with its top-level modules."""
    modules = set(modules)
    subpackages = {m for m in modules if m.count(".") == 1
                   and any(o.startswith(m + ".") for o in modules)}
    scopes: dict[str, set[str]] = {p: set() for p in sorted(subpackages)}
    root_scope: set[str] = set()
    for m in modules:
        owner = next((p for p in subpackages if _in_package(m, p)), None)
        if owner:
            scopes[owner].add(m)
        elif m == ROOT_PACKAGE or m.count(".") == 1:
            root_scope.add(m)
    scopes[f"{ROOT_PACKAGE} (root modules)"] = root_scope
    return scopes


def _strongly_connected(nodes: set[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            advanced = False
            for succ in successors:
                if succ not in nodes:
                    continue
                if succ not in index:
                    index[succ] = low[succ] = counter
                    counter += 1
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(edges.get(succ, ())))))
                    advanced = True
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                components.append(sorted(component))
    return components


def _shortest_cycle(start: str, members: set[str], edges: dict[str, set[str]]) -> list[str]:
    parents: dict[str, str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        node = queue.popleft()
        for succ in sorted(edges.get(node, ())):
            if succ not in members:
                continue
            if succ == start:
                path = [node]
                while path[-1] != start:
                    path.append(parents[path[-1]])
                return [start] + list(reversed(path[:-1])) + [start]
            if succ not in seen:
                seen.add(succ)
                parents[succ] = node
                queue.append(succ)
    return [start]


def import_cycles(root: Path) -> list[dict]:
    """Each cycle found: scope, members, one shortest cycle through the first member, and every
    import between members (importer, imported, lines)."""
    result = grimp_analysis(root)
    if result["fatal"]:
        return [{"fatal": result["fatal"]}]
    edges_list = result["edges"]
    edges: dict[str, set[str]] = {}
    lines: dict[tuple[str, str], list[int]] = {}
    modules: set[str] = set()
    for e in edges_list:
        edges.setdefault(e["importer"], set()).add(e["imported"])
        lines[(e["importer"], e["imported"])] = e["lines"]
        modules.update((e["importer"], e["imported"]))
    modules.update(discover(root))
    found = []
    for scope, members in cycle_scopes(modules).items():
        for component in _strongly_connected(members, edges):
            if len(component) < 2:
                continue
            comp = set(component)
            inner = [(a, b, lines[(a, b)]) for a in component for b in sorted(edges.get(a, ()))
                     if b in comp]
            found.append({"scope": scope, "members": component,
                          "cycle": _shortest_cycle(component[0], comp, edges),
                          "imports": inner, "lines": lines})
    return found


def check_cycles(root: Path) -> list[str]:
    """Rule 3. One entry per strongly connected component of more than one module, with a
    shortest cycle through it and every import between its members."""
    out = []
    for c in import_cycles(root):
        if "fatal" in c:
            out.append(f"cannot build the import graph: {c['fatal']}")
            continue
        cycle = c["cycle"]
        chain = " -> ".join([cycle[0]] + [
            f"{b} ({_lines(c['lines'][(a, b)])})" for a, b in zip(cycle, cycle[1:])])
        imports = "; ".join(f"{a} -> {b} ({_lines(n)})" for a, b, n in c["imports"])
        out.append(f"import cycle in {c['scope']} among {len(c['members'])} modules "
                   f"({', '.join(c['members'])}): {chain}. All imports inside it: {imports}")
    return out


# ---------------------------------------------------------------------------------------------
# Rule 4: no private name imported across modules
# ---------------------------------------------------------------------------------------------

def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def check_private_imports(root: Path, allow_ancestor_private_modules: bool = False) -> list[str]:
    """Rule 4. `from X import _name` (anywhere in a module) where X is another project module and
    _name is not a dunder; `from . import _module` of the importer's own package is allowed (and,
    with `allow_ancestor_private_modules`, a private module of any package containing the
    importer, e.g. `from conv_conformance import _compat` anywhere)."""
    sources = analyse(root)
    out = _parse_errors(sources)
    for name in sorted(sources):
        src = sources[name]
        for rec in src.imports:
            if rec.from_module is None or rec.name is None or not _is_private(rec.name):
                continue
            if not _in_package(rec.from_module, ROOT_PACKAGE) or rec.from_module == name:
                continue
            submodule = f"{rec.from_module}.{rec.name}"
            if submodule in sources and (rec.from_module == src.file.package or (
                    allow_ancestor_private_modules
                    and _in_package(src.file.package, rec.from_module))):
                continue  # a private module of the importer's own package
            what = "private module" if submodule in sources else "private name"
            out.append(f"{name} -> {rec.from_module}.{rec.name} (line {rec.line}"
                       + (f", in {rec.function}()" if rec.function else "")
                       + f"): `{rec.statement}` imports the {what} {rec.name} of "
                       f"{rec.from_module}")
    return out


# ---------------------------------------------------------------------------------------------
# Rule 5: project modules imported inside functions
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FunctionImport:
    record: ImportRecord
    heavy_chain: tuple[str, ...] | None   # how importing the target loads a heavy framework

    @property
    def justified(self) -> bool:
        return self.heavy_chain is not None


def heavy_chain(module: str, sources: dict[str, SourceModule]) -> tuple[str, ...] | None:
    """How importing `module` loads a HEAVY framework at module level, through the module-level
    imports of project modules (importing a module also runs its parent packages): a chain of
    module names ending with the framework's name, or None if it does not."""
    start = [module, *reversed(_ancestors(module))]
    parents: dict[str, str | None] = {}
    queue: deque[str] = deque()
    for m in start:
        if m in sources and m not in parents:
            parents[m] = None if m == module else module
            queue.append(m)
    parents.setdefault(module, None)
    while queue:
        node = queue.popleft()
        for rec in sources[node].imports:
            if not rec.module_level:
                continue
            if rec.external in HEAVY:
                path = [node]
                while parents.get(path[-1]) is not None:
                    path.append(parents[path[-1]])
                return tuple(reversed(path)) + (rec.external,)
            if rec.target is None:
                continue
            for nxt in [*_ancestors(rec.target), rec.target]:
                if nxt in sources and nxt not in parents:
                    parents[nxt] = node
                    queue.append(nxt)
    return None


def function_level_imports(root: Path) -> list[FunctionImport]:
    """Every import of a project module inside a function or method body (TYPE_CHECKING blocks
    excluded), with the heavy framework that justifies it, if any."""
    sources = analyse(root)
    out = []
    for name in sorted(sources):
        for rec in sources[name].imports:
            if rec.function is None or rec.type_checking or rec.target is None:
                continue
            out.append(FunctionImport(rec, heavy_chain(rec.target, sources)))
    return out


def _matches(entry: tuple[str, str, str], rec: ImportRecord) -> bool:
    importer, imported, _reason = entry
    return rec.importer == importer and rec.target == imported


def check_function_level_imports(root: Path, allowed: Allowed = ()) -> list[str]:
    """Rule 5. A project module imported inside a function whose import closure loads no heavy
    framework, and which no `allowed` entry (importer, imported, reason) excuses."""
    out = _parse_errors(analyse(root))
    flagged = [fi.record for fi in function_level_imports(root)
               if not fi.justified and not any(_matches(e, fi.record) for e in allowed)]
    for rec, statement in _by_statement(flagged):
        out.append(f"{_fmt(rec, statement)} [loads no heavy framework: import it at module level]")
    return out


def stale_allowed(root: Path, allowed: Allowed) -> list[str]:
    """The `allowed` function-level imports that excuse nothing any more (no unjustified
    function-level import matches them), and the ones without a reason."""
    unjustified = [fi.record for fi in function_level_imports(root) if not fi.justified]
    return _stale(allowed, lambda e: any(_matches(e, rec) for rec in unjustified),
                  "function-level import")
