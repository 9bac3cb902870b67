"""The package's architecture rules (see tests/architecture.py), on the repository and on copies
of it with one violation planted each.

The planted tests compare a copy before and after planting, so they pass whatever the state of
the repository itself. Nothing here imports the package or a framework: the rules read the
sources (ast) or run import-linter / grimp in a subprocess on a staged copy.
"""
from __future__ import annotations

import ast
import importlib.util
import os
import shutil
from pathlib import Path

import pytest

from tests import architecture as arch

ROOT = Path(__file__).parents[1]

# Rules 1 and 3 run import-linter / grimp (in a subprocess); the others need only the stdlib.
needs_import_linter = pytest.mark.skipif(
    importlib.util.find_spec("importlinter") is None or importlib.util.find_spec("grimp") is None,
    reason="needs import-linter (and grimp): pip install 'import-linter>=2.17'")

# Function-level imports of project modules that are genuine exceptions to rule 5:
# (importer, imported, reason). Every entry must still excuse something (test_allowed_not_stale).
ALLOWED: list[tuple[str, str, str]] = [
    ("conv_conformance.cli", "conv_conformance.conformance.explore",
     "Hypothesis, with the pytest and trio its plugins import, is 0.2 s of every spawned worker's start: "
     "a worker imports the command line again as its parent's main script"),
]

# Imports from a lower layer to a higher one that are genuine exceptions to rule 1, same form
# (a direct import only; test_layer_exceptions_not_stale keeps the list honest).
LAYER_EXCEPTIONS: list[tuple[str, str, str]] = [
]


def _report(rule: str, violations: list[str]) -> str:
    text = f"{len(violations)} violation(s) of {rule}:\n" + "\n".join(f"  {v}" for v in violations)
    print(text)
    return text


# ---------------------------------------------------------------------------------------------
# The rules on the repository
# ---------------------------------------------------------------------------------------------

@needs_import_linter
def test_layers() -> None:
    violations = arch.check_layers(ROOT, LAYER_EXCEPTIONS)
    assert not violations, _report("the layers (vocabulary < reference < oracle < conformance "
                                   "< reports < cli)", violations)


def test_reference_imports_only_numpy_and_stdlib() -> None:
    violations = arch.check_reference_dependencies(ROOT)
    assert not violations, _report("reference: NumPy and the standard library only", violations)


@needs_import_linter
def test_no_cycles_inside_packages() -> None:
    violations = arch.check_cycles(ROOT)
    assert not violations, _report("no import cycle inside a package", violations)


def test_no_private_names_across_modules() -> None:
    violations = arch.check_private_imports(ROOT, allow_ancestor_private_modules=True)
    assert not violations, _report("no private name imported across modules", violations)


def test_function_level_project_imports_need_a_heavy_framework() -> None:
    violations = arch.check_function_level_imports(ROOT, ALLOWED)
    assert not violations, _report("project modules imported in functions only for a heavy "
                                   "framework", violations)


def test_allowed_not_stale() -> None:
    stale = arch.stale_allowed(ROOT, ALLOWED)
    assert not stale, _report("ALLOWED entries that excuse nothing", stale)


@needs_import_linter
def test_layer_exceptions_not_stale() -> None:
    stale = arch.stale_layer_exceptions(ROOT, LAYER_EXCEPTIONS)
    assert not stale, _report("LAYER_EXCEPTIONS entries that excuse nothing", stale)


# ---------------------------------------------------------------------------------------------
# Planted violations, on copies of the repository
# ---------------------------------------------------------------------------------------------

P = arch.ROOT_PACKAGE


@pytest.fixture(scope="module")
def pristine(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the repository's modules (checkout layout), taken once. A module caught
    half-edited (one that does not parse) is copied empty, so that the import graph can be built
    whatever the state of the repository."""
    dest = tmp_path_factory.mktemp("pristine")
    for m in arch.discover(ROOT).values():
        target = dest / m.source
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            source = m.path.read_bytes()
        except FileNotFoundError:  # removed since it was listed: the tree is being edited
            continue
        try:
            ast.parse(source)
        except (SyntaxError, ValueError):
            source = b""
        target.write_bytes(source)
    _PRISTINE[str(dest)] = _fingerprint(dest)
    return dest


_PRISTINE: dict[str, tuple] = {}


def _fingerprint(tree: Path) -> tuple:
    return arch._fingerprint(arch.discover(tree))


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


@pytest.fixture
def tree(pristine: Path, tmp_path: Path) -> Path:
    """A fresh copy of the pristine copy, to plant in (hard links: _write() replaces a file
    rather than writing through the link, so the pristine copy never changes)."""
    dest = tmp_path / "tree"
    shutil.copytree(pristine, dest, copy_function=_link_or_copy)
    return dest


_BASELINES: dict[tuple[str, str], set[str]] = {}


def _baseline(check, pristine: Path) -> set[str]:
    key = (check.__name__, str(pristine))
    if key not in _BASELINES:
        _BASELINES[key] = set(check(pristine))
    return _BASELINES[key]


def _new(check, pristine: Path, tree: Path, **kwargs) -> list[str]:
    """The violations `check` reports on the planted tree and not on the pristine copy."""
    assert _fingerprint(pristine) == _PRISTINE[str(pristine)], "the pristine copy changed"
    if kwargs:
        before = set(check(pristine, **kwargs))
    else:
        before = _baseline(check, pristine)
    return sorted(set(check(tree, **kwargs)) - before)


def _file(tree: Path, module: str) -> Path:
    """The source file of `module` in `tree` (checkout layout)."""
    found = arch.discover(tree).get(module)
    assert found is not None, f"{module} is not in the copied tree"
    return found.path


def _pick(tree: Path, package: str, preferred: str, exclude: tuple[str, ...] = ()) -> str:
    """`package`.`preferred` if the tree has it, else the first plain module of `package`."""
    modules = arch.discover(tree)
    if f"{package}.{preferred}" in modules and f"{package}.{preferred}" not in exclude:
        return f"{package}.{preferred}"
    candidates = sorted(n for n, m in modules.items() if n.rpartition(".")[0] == package
                        and not m.is_package and not n.rpartition(".")[2].startswith("_")
                        and n not in exclude)
    assert candidates, f"no module to plant in under {package}"
    return candidates[0]


def _write(path: Path, text: str) -> None:
    path.unlink(missing_ok=True)  # break a hard link to the pristine copy
    path.write_text(text)


def _append(path: Path, text: str) -> None:
    source = path.read_text()
    if source and not source.endswith("\n"):
        source += "\n"
    _write(path, source + text)


def _create(tree: Path, module: str, text: str) -> Path:
    """Write a new module (or append to it if it exists) in the checkout layout."""
    parts = module.split(".")
    assert parts[0] == P
    if len(parts) == 2:
        path = tree / P / f"{parts[1]}.py"
    else:
        path = tree.joinpath(*parts[1:-1]) / f"{parts[-1]}.py"
    if path.exists():
        _append(path, text)
    else:
        _write(path, text)
    return path


def _names(violations: list[str], *needles: str) -> list[str]:
    return [v for v in violations if all(n in v for n in needles)]


# Rule 1 ---------------------------------------------------------------------------------------

@needs_import_linter
def test_layers_planted_module_level(pristine: Path, tree: Path) -> None:
    importer = _pick(tree, f"{P}.reference", "layers")
    imported = _pick(tree, f"{P}.reports", "markdown")
    _append(_file(tree, importer), f"from {P}.reports import {imported.rpartition('.')[2]}\n")
    new = _new(arch.check_layers, pristine, tree)
    assert _names(new, f"{importer} -> {imported}"), new


@needs_import_linter
def test_layers_planted_in_function(pristine: Path, tree: Path) -> None:
    importer = _pick(tree, f"{P}.oracle", "tolerance")
    imported = _pick(tree, f"{P}.conformance", "scoring")
    _append(_file(tree, importer), "\n\ndef _planted():\n"
            f"    from {P}.conformance import {imported.rpartition('.')[2]}\n")
    new = _new(arch.check_layers, pristine, tree)
    assert _names(new, f"{importer} -> {imported}"), new


@needs_import_linter
def test_layers_planted_bottom_and_top(pristine: Path, tree: Path) -> None:
    """vocabulary (bottom) may not import the reference; nothing may import cli (top)."""
    _create(tree, f"{P}.vocabulary", f"\nfrom {P} import reference\n")
    _create(tree, f"{P}.cli", "\nimport argparse\n")
    reporter = _pick(tree, f"{P}.reports", "markdown")
    _append(_file(tree, reporter), f"from {P} import cli\n")
    new = _new(arch.check_layers, pristine, tree)
    assert _names(new, f"{P}.vocabulary -> {P}.reference"), new
    assert _names(new, f"{reporter} -> {P}.cli"), new


@needs_import_linter
def test_layers_allow_imports_downwards(pristine: Path, tree: Path) -> None:
    _create(tree, f"{P}.cli", f"\nfrom {P}.reports import cli as _reports_cli\n"
            f"from {P} import vocabulary\n")
    oracle = _pick(tree, f"{P}.oracle", "tolerance")
    _append(_file(tree, oracle), f"from {P} import reference, vocabulary\n")
    assert _new(arch.check_layers, pristine, tree) == []


@needs_import_linter
def test_layer_exceptions_excuse_and_go_stale(pristine: Path, tree: Path) -> None:
    importer = _pick(tree, f"{P}.reference", "layers")
    imported = _pick(tree, f"{P}.reports", "markdown")
    _append(_file(tree, importer), f"from {P}.reports import {imported.rpartition('.')[2]}\n")
    allowed = [(importer, imported, "planted: a test of LAYER_EXCEPTIONS")]
    assert _new(arch.check_layers, pristine, tree, allowed=allowed) == []
    assert arch.stale_layer_exceptions(tree, allowed) == []
    stale = arch.stale_layer_exceptions(pristine, allowed)
    assert _names(stale, "stale", importer, imported), stale


# Rule 2 ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("plant, needle", [
    ("\n\ndef _planted():\n    import torch\n    return torch\n", "torch"),
    ("import scipy.signal\n", "scipy"),
    (f"from {P}.oracle import cases\n", f"{P}.oracle"),
    (f"from {P} import conformance\n", f"{P}.conformance"),
])
def test_reference_planted(pristine: Path, tree: Path, plant: str, needle: str) -> None:
    importer = _pick(tree, f"{P}.reference", "layers")
    _append(_file(tree, importer), plant)
    new = _new(arch.check_reference_dependencies, pristine, tree)
    assert len(new) == 1 and _names(new, importer, needle), new


@pytest.mark.parametrize("module", [f"{P}.vocabulary", P])
def test_reference_planted_below_it(pristine: Path, tree: Path, module: str) -> None:
    """What importing the reference runs besides it (the vocabulary, the root package's
    __init__) is held to the same rule."""
    if module == P:
        _append(tree / P / "__init__.py", "import tqdm\n")
    else:
        _create(tree, module, "\nimport tensorflow\n")
    new = _new(arch.check_reference_dependencies, pristine, tree)
    assert len(new) == 1 and _names(new, f"{module} -> "), new


def test_reference_allows_numpy_stdlib_itself_and_bottom_layer(pristine: Path,
                                                              tree: Path) -> None:
    _create(tree, f"{P}.vocabulary", "\nimport json\n")
    _create(tree, f"{P}._compat", "\nimport warnings\n")
    importer = _pick(tree, f"{P}.reference", "layers")
    _append(_file(tree, importer), "import numpy.linalg\nimport collections.abc\n"
            f"from . import shapes as _shapes\nfrom {P} import vocabulary as _vocabulary\n"
            f"from {P} import _compat\nimport {P}\n")
    assert _new(arch.check_reference_dependencies, pristine, tree) == []


# Rule 3 ---------------------------------------------------------------------------------------

def _acyclic_pair(pristine: Path, package: str, preferred: tuple[str, str]) -> tuple[str, str]:
    """Two plain modules of `package` neither of which reaches the other through imports, so
    that importing one from the other makes no cycle and importing both ways makes a new one."""
    edges: dict[str, set[str]] = {}
    for e in arch.grimp_analysis(pristine)["edges"]:
        edges.setdefault(e["importer"], set()).add(e["imported"])

    def reaches(a: str, b: str) -> bool:
        seen, todo = {a}, [a]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt == b:
                    return True
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return False

    modules = sorted(n for n, m in arch.discover(pristine).items()
                     if n.startswith(package + ".") and not m.is_package)
    wanted = tuple(f"{package}.{p}" for p in preferred)
    pairs = [wanted] if all(w in modules for w in wanted) else []
    pairs += [(a, b) for a in modules for b in modules if a < b]
    for a, b in pairs:
        if not reaches(a, b) and not reaches(b, a):
            return a, b
    raise AssertionError(f"no two modules of {package} independent of each other")


@needs_import_linter
def test_cycles_planted(pristine: Path, tree: Path) -> None:
    a, b = _acyclic_pair(pristine, f"{P}.oracle", ("tolerance", "export"))
    _append(_file(tree, a), f"from {P}.oracle import {b.rpartition('.')[2]}\n")
    _append(_file(tree, b), "\n\ndef _planted():\n"
            f"    from {P}.oracle import {a.rpartition('.')[2]}\n")
    new = _new(arch.check_cycles, pristine, tree)
    assert len(new) == 1 and _names(new, f"{P}.oracle", a, b), new


@needs_import_linter
def test_cycles_planted_across_a_subpackage(pristine: Path, tree: Path) -> None:
    """conformance counts with its subpackages: adapters/x <-> conformance/y is a cycle."""
    adapter = _pick(tree, f"{P}.conformance.adapters", "reference")
    other = _pick(tree, f"{P}.conformance", "levels")
    _append(_file(tree, adapter), f"from {P}.conformance import {other.rpartition('.')[2]}\n")
    _append(_file(tree, other),
            f"from {P}.conformance.adapters import {adapter.rpartition('.')[2]}\n")
    new = _new(arch.check_cycles, pristine, tree)
    assert _names(new, f"in {P}.conformance ", adapter, other), new


@needs_import_linter
def test_cycles_ignore_type_checking_imports(pristine: Path, tree: Path) -> None:
    a, b = _acyclic_pair(pristine, f"{P}.oracle", ("tolerance", "export"))
    _append(_file(tree, a), f"from {P}.oracle import {b.rpartition('.')[2]}\n")
    _append(_file(tree, b), "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
            f"    from {P}.oracle import {a.rpartition('.')[2]}\n")
    assert _new(arch.check_cycles, pristine, tree) == []


# Rule 4 ---------------------------------------------------------------------------------------

def test_private_planted(pristine: Path, tree: Path) -> None:
    importer = _pick(tree, f"{P}.reports", "markdown")
    _append(_file(tree, importer), f"from {P}.conformance.scoring import _something_private\n")
    new = _new(arch.check_private_imports, pristine, tree)
    assert len(new) == 1 and _names(new, importer, "_something_private"), new


def test_private_planted_relative_and_in_function(pristine: Path, tree: Path) -> None:
    importer = _pick(tree, f"{P}.conformance", "levels", exclude=(f"{P}.conformance.scoring",))
    _append(_file(tree, importer),
            "\n\ndef _planted():\n    from .scoring import _private_helper\n")
    new = _new(arch.check_private_imports, pristine, tree)
    assert _names(new, importer, f"{P}.conformance.scoring._private_helper"), new


def test_private_module_of_another_package(pristine: Path, tree: Path) -> None:
    _create(tree, f"{P}.conformance.adapters._planted_private", "X = 1\n")
    importer = _pick(tree, f"{P}.reports", "markdown")
    _append(_file(tree, importer), f"from {P}.conformance.adapters import _planted_private\n")
    new = _new(arch.check_private_imports, pristine, tree)
    assert _names(new, importer, "_planted_private"), new


def test_private_module_of_own_package_and_dunders_allowed(pristine: Path, tree: Path) -> None:
    _create(tree, f"{P}.conformance.adapters._planted_private", "X = 1\n")
    importer = _pick(tree, f"{P}.conformance.adapters", "torch")
    _append(_file(tree, importer), "from . import _planted_private\n"
            f"from {P}.conformance.adapters import _planted_private as _again\n"
            f"from {P}.conformance import __doc__ as _doc\n")
    assert _new(arch.check_private_imports, pristine, tree) == []


def test_private_module_of_an_ancestor_package(pristine: Path, tree: Path) -> None:
    """Strict by default (only the importer's own package); allowed with the switch."""
    _create(tree, f"{P}._planted_private", "X = 1\n")
    importer = _pick(tree, f"{P}.oracle", "tolerance")
    _append(_file(tree, importer), f"from {P} import _planted_private\n")
    new = _new(arch.check_private_imports, pristine, tree)
    assert _names(new, importer, f"{P}._planted_private"), new
    relaxed = _new(arch.check_private_imports, pristine, tree,
                   allow_ancestor_private_modules=True)
    assert relaxed == [], relaxed


# Rule 5 ---------------------------------------------------------------------------------------

def _light_oracle_module(tree: Path) -> str:
    sources = arch.analyse(tree)
    names = [f"{P}.oracle.cases"] + sorted(n for n in sources if n.startswith(f"{P}.oracle."))
    for name in names:
        if name in sources and arch.heavy_chain(name, sources) is None:
            return name
    _create(tree, f"{P}.oracle.planted_light", "X = 1\n")
    return f"{P}.oracle.planted_light"


def test_function_level_planted(pristine: Path, tree: Path) -> None:
    imported = _light_oracle_module(tree)
    importer = _pick(tree, f"{P}.conformance", "levels")
    _append(_file(tree, importer), "\n\ndef _planted():\n"
            f"    from {P}.oracle import {imported.rpartition('.')[2]}\n"
            f"    return {imported.rpartition('.')[2]}\n")
    new = _new(arch.check_function_level_imports, pristine, tree)
    assert len(new) == 1 and _names(new, f"{importer} -> {imported}", "_planted"), new


def test_function_level_planted_in_method(pristine: Path, tree: Path) -> None:
    importer = _pick(tree, f"{P}.reports", "markdown")
    _append(_file(tree, importer), "\n\nclass _Planted:\n    def method(self):\n"
            f"        import {P}.reference\n")
    new = _new(arch.check_function_level_imports, pristine, tree)
    assert _names(new, f"{importer} -> {P}.reference", "_Planted.method"), new


def test_function_level_heavy_and_type_checking_allowed(pristine: Path, tree: Path) -> None:
    """Justified: the target loads a heavy framework at module level, directly, through a
    module-level `try:`, or through another project module; or the import is type-only."""
    _create(tree, f"{P}.oracle.planted_heavy", "import numpy\nimport torch.nn\n")
    _create(tree, f"{P}.oracle.planted_guarded",
            "try:\n    from tensorflow import keras\nexcept ImportError:\n    keras = None\n")
    _create(tree, f"{P}.oracle.planted_indirect", "from . import planted_heavy\n")
    importer = _pick(tree, f"{P}.conformance", "levels")
    _append(_file(tree, importer), "\n\nfrom typing import TYPE_CHECKING\n\n\ndef _planted():\n"
            f"    from {P}.oracle import planted_heavy, planted_guarded\n"
            f"    from {P}.oracle.planted_indirect import planted_heavy as _again\n"
            f"    if TYPE_CHECKING:\n        from {P}.oracle import cases\n")
    assert _new(arch.check_function_level_imports, pristine, tree) == []
    sources = arch.analyse(tree)
    assert arch.heavy_chain(f"{P}.oracle.planted_indirect", sources) == (
        f"{P}.oracle.planted_indirect", f"{P}.oracle.planted_heavy", "torch")


def test_function_level_heavy_only_in_a_function_does_not_justify(pristine: Path,
                                                                  tree: Path) -> None:
    _create(tree, f"{P}.oracle.planted_lazy", "def f():\n    import torch\n    return torch\n")
    importer = _pick(tree, f"{P}.conformance", "levels")
    _append(_file(tree, importer),
            f"\n\ndef _planted():\n    from {P}.oracle import planted_lazy\n")
    new = _new(arch.check_function_level_imports, pristine, tree)
    assert _names(new, f"{importer} -> {P}.oracle.planted_lazy"), new


def test_allowed_excuses_and_goes_stale(pristine: Path, tree: Path) -> None:
    imported = _light_oracle_module(tree)
    importer = _pick(tree, f"{P}.conformance", "levels")
    allowed = [(importer, imported, "planted: a test of the ALLOWED list")]
    stale_entry = (importer, f"{P}.oracle.no_such_module", "planted: matches nothing")
    assert arch.stale_allowed(tree, [stale_entry]) and _names(
        arch.stale_allowed(tree, [stale_entry]), "stale", f"{P}.oracle.no_such_module")
    _append(_file(tree, importer), "\n\ndef _planted():\n"
            f"    from {P}.oracle import {imported.rpartition('.')[2]}\n")
    assert _new(arch.check_function_level_imports, pristine, tree, allowed=allowed) == []
    assert not _names(arch.stale_allowed(tree, allowed), importer, imported)
