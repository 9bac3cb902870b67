"""The documents say what the code does: README.md and docs/ checked against the code.

* README.md: at most 200 lines, its sections in order, every Python sample runs, every command
  sample is run or listed here as not run (with the reason), the per-adapter conformance claims
  match the reports they link to;
* every number the code computes that README.md or docs/ state: verdicts and their order,
  profiles and their case counts, dtypes, categories, the normalized spec of every layer, the
  activations, the run outputs pasted into the adapter guide;
* no file points outside the repository, no heading names an issue, every relative link resolves.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conv_conformance import reference

try:
    from conv_conformance.vocabulary import VERDICTS
except ImportError:  # before the vocabulary module existed
    from conv_conformance.conformance.scoring import VERDICTS
try:
    from conv_conformance.vocabulary import CATEGORIES, DTYPES, FAILING, PROFILES, TOLERANCE_MODES
except ImportError:
    from conv_conformance.conformance.scoring import CATEGORIES, FAILING
    from conv_conformance.oracle.cases import DTYPES, PROFILES
    TOLERANCE_MODES = ("rigorous", "probabilistic")

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
GUIDE = DOCS / "writing-an-adapter.md"
CONTRACTS = DOCS / "contracts.md"
# Every Markdown file these tests hold to their rules: the README and the documents it indexes.
MARKDOWN = [README, *sorted(DOCS.glob("*.md")), *sorted((DOCS / "findings").glob("*.md")),
            DOCS / "results" / "README.md"]
CLI = str(Path(sys.executable).with_name("conv-conformance"))

SECTIONS = ("What it is", "Install", "Two commands", "Test your implementation", "CI and pytest",
            "What is checked", "Certification", "Shipped adapters", "How it is built", "Development")

# README command lines that no test runs, and why. Every other command line of a bash or console
# block is run by test_readme_commands_run, in the order the README gives them.
NOT_RUN = {
    'python -m pip install -e ".[harness]"': "installs into the running environment; the test environment is "
                                              "installed by scripts/setup.sh",
    "bash scripts/conformance.sh keras smoke": "sets up .venv with the harness and TensorFlow; .ci/run's setup "
                                              "(every extra) covers it",
    "bash scripts/test.sh": "runs this test suite itself; .ci/run runs exactly this command",
}


# ------------------------------------------------------------------ helpers

def _text(path: Path) -> str:
    return path.read_text(encoding="utf-8")


def _blocks(text: str) -> list[tuple[str, str]]:
    """(language, code) of every fenced block."""
    return re.findall(r"^```(\w*)[^\n]*\n(.*?)^```", text, re.M | re.S)


def _sections(text: str) -> dict[str, str]:
    """The text under each ``## `` heading, by heading."""
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return {parts[i].strip(): parts[i + 1] for i in range(1, len(parts), 2)}


def _table_rows(text: str) -> list[list[str]]:
    """The cells of every Markdown table row (header and separator rows excluded)."""
    rows = []
    for line in text.splitlines():
        if line.startswith("|") and not re.match(r"^\|[-| :]+\|$", line):
            rows.append([c.strip() for c in line.strip().strip("|").split("|")])
    return rows


def _table(text: str, header: str) -> list[list[str]]:
    """The data rows of the first table whose first header cell is ``header``."""
    lines = text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("|") and line.strip("| ").split("|")[0].strip() == header:
            rows = []
            for row in lines[i + 2:]:
                if not row.startswith("|"):
                    break
                rows.append([c.strip() for c in row.strip().strip("|").split("|")])
            return rows
    raise AssertionError(f"no table headed {header!r}")


def _unquote(cell: str) -> str:
    return cell.strip("`* ")


def _commands(text: str) -> list[str]:
    """Every command line of the bash and console blocks (console: the lines after ``$ ``)."""
    out = []
    for lang, code in _blocks(text):
        if lang not in ("bash", "console", "sh", "shell"):
            continue
        for line in code.splitlines():
            if lang == "console":
                if not line.startswith("$ "):
                    continue
                line = line[2:]
            line = line.split(" #")[0].strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def _load_module(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _readme_adapter(directory: Path) -> Path:
    """README's adapter sample written to directory/my_adapter.py, as the README says."""
    code = [c for lang, c in _blocks(_text(README)) if lang == "python" and "def forward" in c]
    assert len(code) == 1, "README.md should hold exactly one adapter sample"
    path = directory / "my_adapter.py"
    path.write_text(code[0])
    return path


def _guide_files(directory: Path) -> dict[str, Path]:
    """The guide's example modules, each a python block whose first line names its file."""
    out = {}
    for lang, code in _blocks(_text(GUIDE)):
        first = code.splitlines()[0] if code else ""
        m = re.match(r"# (\w+\.py):", first)
        if lang == "python" and m:
            out[m.group(1)] = directory / m.group(1)
            out[m.group(1)].write_text(code)
    return out


def _summary_counts(line: str) -> dict[str, int]:
    """{verdict: count} of a run's summary line ("CONFORMANT: 146 cases in 7.4 s (146 pass); ...")."""
    inner = re.search(r"cases in [\d.]+ s \(([^)]*)\)", line)
    assert inner, f"not a summary line: {line!r}"
    return {v: int(n) for n, v in (p.split() for p in inner.group(1).split(", "))}


def _run(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def _slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


# ------------------------------------------------------------------ README: shape

def test_readme_is_a_guide_of_at_most_200_lines():
    assert len(_text(README).splitlines()) <= 200


def test_readme_sections_in_order():
    headings = re.findall(r"^## (.+)$", _text(README), re.M)
    assert tuple(h.strip() for h in headings) == SECTIONS


def test_readme_states_no_issue_numbers_dates_or_load():
    text = _text(README)
    assert not re.search(r"\bissues? \d+", text, re.I)
    assert not re.search(r"\b20\d\d-\d\d-\d\d\b|\b\d{1,2} (January|February|March|April|May|June|July|August|"
                         r"September|October|November|December) 20\d\d\b", text)
    assert "load average" not in text


# ------------------------------------------------------------------ README: samples run

@pytest.mark.parametrize("index", range(sum(1 for lang, _ in _blocks(_text(README)) if lang == "python")))
def test_readme_python_samples_run(index, tmp_path):
    code = [c for lang, c in _blocks(_text(README)) if lang == "python"][index]
    (tmp_path / "sample.py").write_text(code)
    proc = _run([sys.executable, "sample.py"], cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]


def test_readme_adapter_scores_smoke_cases(tmp_path):
    from conv_conformance.conformance.scoring import check
    from conv_conformance.oracle.cases import case_set, materialize

    adapter = _load_module(_readme_adapter(tmp_path), "readme_my_adapter").NumpyConv2D()
    results = [check(adapter, case, materialize(case, "float32"), "float32")
               for case in case_set("smoke", layers=["Conv2D", "Conv1D"])]
    assert not [r.verdict for r in results if r.verdict in FAILING]
    verdicts = [v for r in results for v in r.verdicts.values()]
    assert {"pass", "unsupported"} <= set(verdicts)
    assert any(r.verdicts.get("output") == "pass" for r in results)      # it computes something
    assert any(r.verdicts.get("error_behaviour") == "pass" for r in results)  # and raises where Keras does


def test_every_readme_command_is_run_or_listed():
    commands = _commands(_text(README))
    runnable = ("conv-conformance ", "pytest ", "export ", "cc ")
    unlisted = [c for c in commands if c not in NOT_RUN and not c.startswith(runnable)]
    assert not unlisted, f"README commands neither run by test_readme_commands_run nor in NOT_RUN: {unlisted}"
    stale = set(NOT_RUN) - set(commands)
    assert not stale, f"NOT_RUN lists commands README.md does not have: {stale}"


@pytest.mark.slow
def test_readme_commands_run(tmp_path):
    """Every command of README.md not in NOT_RUN, as written, in order, in one directory."""
    _readme_adapter(tmp_path)
    env = dict(os.environ)
    ran = []
    for command in _commands(_text(README)):
        if command in NOT_RUN:
            continue
        if command.startswith("export "):
            name, _, value = command[len("export "):].partition("=")
            env[name] = value.replace("$PWD", str(tmp_path))
            continue
        args = shlex.split(command)
        if args[0] == "cc":  # the README builds the C client from the clone, as a user's clone has it
            if shutil.which("cc") is None:
                pytest.skip("no C compiler: the README's C client cannot be built")
            shutil.copytree(ROOT / "clients" / "c", tmp_path / "clients" / "c", dirs_exist_ok=True)
        if args[0] == "conv-conformance":
            args[0] = CLI
        elif args[0] == "pytest":
            args = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args[1:]]
        if args[1:2] == ["compare"]:  # the README compares with an accepted report: accept this run's
            shutil.copy(tmp_path / "report" / "report.json", tmp_path / args[2])
        proc = _run(args, cwd=tmp_path, env=env)
        assert proc.returncode == 0, f"{command}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
        ran.append(args[1] if args[0] == CLI else "pytest" if args[0] == sys.executable else args[0])
    assert {"run", "report", "compare", "certify", "verify", "pytest", "cc"} <= set(ran)
    assert json.loads((tmp_path / "report" / "report.json").read_text())["summary"]["conformant"]
    assert json.loads((tmp_path / "report-pytest" / "report.json").read_text())["summary"]["conformant"]
    assert (tmp_path / "report" / "report.html").stat().st_size > 0


# ------------------------------------------------------------------ README: claims

def test_readme_adapter_table_matches_the_reports_it_links():
    rows = _table(_sections(_text(README))["Shipped adapters"], "adapter")
    assert rows
    for name, _, conformant, link in rows:
        target = re.search(r"\]\(([^)]+)\)", link).group(1)
        report = json.loads((ROOT / target).read_text())
        assert report["adapter"]["name"] == _unquote(name), target
        assert conformant in ("yes", "no"), conformant
        assert report["summary"]["conformant"] is (conformant == "yes"), f"{name}: README says {conformant}, {target}"


def test_readme_lists_every_registered_adapter():
    import tomllib

    project = tomllib.loads(_text(ROOT / "pyproject.toml"))["project"]
    registered = set(project["entry-points"]["conv_conformance.adapters"])
    listed = {_unquote(row[0]) for row in _table(_sections(_text(README))["Shipped adapters"], "adapter")}
    assert listed == registered


# ------------------------------------------------------------------ vocabulary stated in the documents

@pytest.mark.parametrize("path", [README, CONTRACTS], ids=lambda p: p.name)
def test_verdict_table_is_the_code_s(path):
    rows = _table(_text(path), "verdict")
    assert tuple(_unquote(r[0]) for r in rows) == tuple(VERDICTS)
    assert {_unquote(r[0]) for r in rows if r[1] == "yes"} == set(FAILING)
    assert all(r[1] in ("yes", "no") for r in rows)


def test_certification_lists_the_verdicts_in_order():
    line = re.search(r"Best to worst: (.*?)\. A case", _text(DOCS / "certification.md"), re.S).group(1)
    assert tuple(re.findall(r"`(\w+)`", line)) == tuple(VERDICTS)


@pytest.mark.parametrize("path", [README, CONTRACTS], ids=lambda p: p.name)
def test_profile_tables_name_every_profile(path):
    rows = _table(_text(path), "profile")
    assert tuple(_unquote(r[0]) for r in rows) == tuple(PROFILES)


@pytest.mark.parametrize("profile", [p if p != "exhaustive" else pytest.param(p, marks=pytest.mark.slow)
                                     for p in PROFILES])
def test_profile_case_counts_are_the_code_s(profile):
    from conv_conformance.oracle.cases import case_set

    count = len(case_set(profile))
    for path in (README, CONTRACTS):
        stated = {_unquote(r[0]): r[1] for r in _table(_text(path), "profile")}
        assert int(stated[profile].replace(",", "")) == count, f"{path.name}: {profile}"


def test_contracts_vocabulary_table_is_the_code_s():
    rows = {_unquote(r[0]): r[1] for r in _table(_text(CONTRACTS), "name")}
    words = lambda cell: tuple(re.findall(r"`(\w+)`", cell.split(";")[0]))  # noqa: E731
    assert words(rows["DTYPES"]) == tuple(DTYPES)
    assert words(rows["PROFILES"]) == tuple(PROFILES)
    assert words(rows["CATEGORIES"]) == tuple(CATEGORIES)
    assert set(words(rows["FAILING"])) == set(FAILING)
    assert set(re.findall(r"`(\w+)`", rows["TOLERANCE_MODES"])) == set(TOLERANCE_MODES)


def test_readme_names_every_dtype_category_and_tolerance_mode():
    checked = _sections(_text(README))["What is checked"]
    dtypes = re.search(r"--dtype ([\w|]+)", checked).group(1).split("|")
    assert set(dtypes) == set(DTYPES)
    paragraph = checked.split("| verdict")[0]
    assert set(CATEGORIES) <= set(re.findall(r"`(\w+)`", paragraph))
    assert set(TOLERANCE_MODES) <= set(re.findall(r"`(\w+)`", paragraph))


# ------------------------------------------------------------------ the adapter guide

def _guide_specs() -> list[tuple[str, dict, tuple, tuple, dict]]:
    """(layer, spec, input shape, output shape, weight shapes) of every example of section 2."""
    section = _sections(_text(GUIDE))["2. The spec and weights of every layer"]
    out = []
    for name, body in re.findall(r"^### (\w+)\n(.*?)(?=^### |\Z)", section, re.M | re.S):
        spec = json.loads(re.search(r"```json\n(.*?)```", body, re.S).group(1))
        shapes = re.search(r"Input `(\([^`]*\))` -> output `(\([^`]*\))`; weights: (.*)\.", body)
        weights = {k: ast.literal_eval(v) for k, v in re.findall(r"`(\w+)` `(\([^`]*\))`", shapes.group(3))}
        out.append((name, spec, ast.literal_eval(shapes.group(1)), ast.literal_eval(shapes.group(2)), weights))
    return out


def test_guide_has_one_normalized_spec_per_layer():
    examples = _guide_specs()
    assert sorted(name for name, *_ in examples) == sorted(reference.LAYERS)
    for name, spec, input_shape, output_shape, weights in examples:
        assert spec["class_name"] == name
        assert reference.normalize(spec) == spec, f"{name}: not what reference.normalize gives"
        assert reference.output_shape(spec, input_shape) == output_shape, name
        assert {k: tuple(v) for k, v in reference.weight_shapes(spec, input_shape).items()} == weights, name


def test_guide_defines_every_activation():
    rows = _table(_sections(_text(GUIDE))["4. Activations"], "activation")
    named = [n for row in rows for n in re.findall(r"`(\w+)`", row[0])]
    assert sorted(named) == sorted(reference.ACTIVATIONS)


def test_guide_example_adapter_passes_what_it_computes(tmp_path):
    from conv_conformance.conformance.scoring import check
    from conv_conformance.oracle.cases import case_set, materialize

    files = _guide_files(tmp_path)
    assert set(files) == {"numpy_conv2d.py", "numpy_conv2d_training.py"}
    sys.path.insert(0, str(tmp_path))
    try:
        for name in ("numpy_conv2d", "numpy_conv2d_training"):
            sys.modules.pop(name, None)
        adapter = _load_module(files["numpy_conv2d_training.py"], "numpy_conv2d_training").NumpyConv2DTraining()
        results = [check(adapter, case, materialize(case, dtype), dtype)
                   for dtype in ("float32", "float16") for case in case_set("smoke", layers=["Conv2D", "Cropping2D"])]
    finally:
        sys.path.remove(str(tmp_path))
        for name in ("numpy_conv2d", "numpy_conv2d_training"):
            sys.modules.pop(name, None)
    assert not [(r.id, r.dtype, r.verdicts, r.message[:500]) for r in results if r.verdict in FAILING]
    passed = {c for r in results for c, v in r.verdicts.items() if v == "pass"}
    assert {"shape", "output", "gradient", "error_behaviour", "initializer", "regularizer", "constraint"} <= passed


def _pasted_runs(path: Path) -> list[tuple[str, list[str]]]:
    """(command, output lines) of every ``$ conv-conformance run`` in a console block."""
    out = []
    for lang, code in _blocks(_text(path)):
        if lang != "console":
            continue
        lines = code.splitlines()
        for i, line in enumerate(lines):
            if line.startswith("$ conv-conformance run "):
                rest = []
                for later in lines[i + 1:]:
                    if later.startswith("$ "):
                        break
                    rest.append(later)
                out.append((line[2:], rest))
    return out


@pytest.mark.slow
def test_guide_run_outputs_are_what_the_commands_print(tmp_path):
    _guide_files(tmp_path)
    env = dict(os.environ, PYTHONPATH=str(tmp_path))
    runs = _pasted_runs(GUIDE)
    assert len(runs) >= 2
    for command, pasted in runs:
        args = [CLI, *shlex.split(command)[1:]]
        out = args.index("--out")
        args[out + 1] = str(tmp_path / f"out{runs.index((command, pasted))}")
        proc = _run(args, cwd=tmp_path, env=env)
        printed = proc.stdout.splitlines() + proc.stderr.splitlines()
        summary = [line for line in pasted if line.startswith(("CONFORMANT", "NOT CONFORMANT"))]
        fresh = [line for line in printed if line.startswith(("CONFORMANT", "NOT CONFORMANT"))]
        assert summary and fresh, (command, printed[-5:])
        assert summary[0].split(":")[0] == fresh[0].split(":")[0], command
        assert _summary_counts(summary[0]) == _summary_counts(fresh[0]), command
        coverage = [line for line in pasted if line.startswith("coverage")]
        assert coverage == [line for line in printed if line.startswith("coverage")], command


def test_guide_states_the_invalid_case_count():
    from conv_conformance.oracle.cases import case_set

    cases = case_set("standard")
    stated = re.search(r"\((\d+) of the (\d+) `standard` cases\)", _text(GUIDE))
    assert stated, "writing-an-adapter.md no longer states how many standard cases are invalid"
    assert (int(stated.group(1)), int(stated.group(2))) == (sum(c.kind == "invalid" for c in cases), len(cases))


def test_training_findings_state_the_draws_the_code_takes():
    from conv_conformance.conformance import training

    u = 2.0 ** -24
    laws = {"uniform": reference.Distribution("uniform", 0, 3 ** -0.5, -1, 1),
            "normal": reference.Distribution("normal", 0, 1, float("-inf"), float("inf"), 1.0),
            "truncated normal": reference.Distribution("truncated_normal", 0, reference.TRUNCATION_STD, -2, 2, 1.0)}
    text = " ".join(_text(DOCS / "findings" / "training.md").split())
    for name, law in laws.items():
        assert f"{training.draws_needed(law, u):,} ({name})" in text, name


# ------------------------------------------------------------------ the repository's own references

def _repository_files() -> list[Path]:
    skip = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis"}
    return [p for p in ROOT.rglob("*")
            if p.suffix in (".md", ".py", ".sh", ".toml") and p.is_file()
            and not skip.intersection(p.relative_to(ROOT).parts) and not p.parts[-2].endswith(".egg-info")]


def test_nothing_points_outside_the_repository():
    needle = ".." + "/shared"  # spelled in two parts so that this file does not match itself
    hits = [str(p.relative_to(ROOT)) for p in _repository_files() if needle in p.read_text(errors="replace")]
    assert not hits, f"files mentioning {needle}: {hits}"


def test_contract_extensions_are_merged_into_the_contracts():
    assert not (DOCS / "contract-extensions.md").exists()
    hits = [str(p.relative_to(ROOT)) for p in _repository_files()
            if "contract-extensions" in p.read_text(errors="replace") and p.name != "test_docs.py"]
    assert not hits, hits


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_no_heading_names_an_issue(path):
    headings = re.findall(r"^#+ .*$", _text(path), re.M)
    assert not [h for h in headings if re.search(r"\bissues? \d+", h, re.I)]


@pytest.mark.parametrize("path", MARKDOWN, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(path):
    text = re.sub(r"^```.*?^```", "", _text(path), flags=re.M | re.S)  # links in code blocks are code
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+:", target):
            continue
        file, _, anchor = target.partition("#")
        resolved = (path.parent / file).resolve() if file else path
        if not resolved.exists():
            broken.append(target)
        elif anchor and resolved.suffix == ".md":
            slugs = {_slug(h) for h in re.findall(r"^#+ (.+)$", resolved.read_text(encoding="utf-8"), re.M)}
            if anchor not in slugs:
                broken.append(target)
    assert not broken, f"{path.relative_to(ROOT)}: {broken}"


def test_every_document_is_indexed():
    index = _text(DOCS / "README.md")
    documents = [p for p in MARKDOWN if p.parent != ROOT and p != DOCS / "README.md"]
    missing = [str(p.relative_to(DOCS)) for p in documents if f"({p.relative_to(DOCS).as_posix()})" not in index]
    assert not missing, f"docs/README.md does not link {missing}"
