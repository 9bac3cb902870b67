"""The catalogue of known findings: its entries, its conditions, and how runs, reports, ``run
--fail-on new``, ``compare`` and ``conv-conformance findings`` use it.

The runs use tests/conformance/fixtures/findings.py: adapters that present themselves as PyTorch
2.13 and reproduce the condition of finding P1 (a float64 hard_sigmoid gradient off in the 4th
digit) and, or, one planted failure that no finding explains."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from conv_conformance.cli import main
from conv_conformance.conformance import findings
from conv_conformance.reports import compare, load
from conv_conformance.reports import markdown as report_markdown
from tests.conformance.fixtures.findings import LAYERS

ROOT = Path(__file__).resolve().parents[2]
FIXTURE = "tests.conformance.fixtures.findings"
KNOWN_CASE, NEW_CASE = "Conv2DTranspose-6562688cb8fc", "Cropping1D-b2f89bdeed55"

#: Every finding docs/divergences.md listed when the catalogue was introduced.
DOCUMENTED = ([f"K{i}" for i in range(1, 18)] + ["O1", "O2", "O3"] + [f"T{i}" for i in range(1, 8)]
              + [f"P{i}" for i in range(1, 6)] + [f"R{i}" for i in range(1, 15)] + [f"W{i}" for i in range(1, 9)]
              + ["J1"])

CONV2D_CF = {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3, "data_format": "channels_first"}}
ONE_CHANNEL = {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3, "strides": [1, 2]}}


# ------------------------------------------------------------------ the catalogue

def test_every_documented_finding_is_catalogued_once():
    catalogue = findings.load()
    ids = [f.id for f in catalogue]
    assert len(ids) == len(set(ids))
    assert set(DOCUMENTED) <= set(ids)


def test_every_finding_that_a_run_can_show_has_a_condition():
    for f in findings.load():
        if set(f.verdicts) & {"fail", "error", "nondeterministic", "unsupported"}:
            assert f.condition is not None and f.categories and f.adapters, f.id


@pytest.mark.parametrize("entry, needle", [
    ({"categories": ["outputs"]}, "`categories` must name categories"),
    ({"verdicts": ["broken"]}, "`verdicts` must be a non-empty list"),
    ({"condition": {"colour": "red"}}, "unknown field 'colour'"),
    ({"condition": {"ref": "nowhere"}}, "`ref` names no definition"),
    ({"condition": {"batch": {"about": 0}}}, "operators must be among"),
    ({"status": "closed"}, "`status` must be 'open', 'fixed in <package> <version>' or 'withdrawn: <why>'"),
    ({"status": "withdrawn"}, "'withdrawn: <why>'"),
    ({"colour": "red"}, "unknown keys ['colour']"),
    ({"values": ""}, "`values` must be a sentence"),
])
def test_a_malformed_entry_is_named_with_its_field(entry, needle):
    good = {"id": "X1", "section": "keras", "title": "t", "framework": "tensorflow", "adapters": ["keras"],
            "condition": {"batch": 0}, "categories": ["output"], "verdicts": ["fail"], "cause": "c", "status": "open"}
    with pytest.raises(findings.CatalogueError, match="X1") as info:
        findings.parse({"findings": [good | entry]})
    assert needle in str(info.value)


# ------------------------------------------------------------------ conditions

@pytest.mark.parametrize("dtype, onednn, expected", [
    ("float64", "True", True),    # TF's native kernels always run float64
    ("float32", "False", True),   # and float32 when oneDNN is off
    ("float32", "True", False),   # oneDNN runs channels_first float32
])
def test_k1_holds_where_tensorflow_native_kernels_run(dtype, onednn, expected):
    env = {"tensorflow": {"onednn": onednn}}
    assert findings.load().holds("K1", CONV2D_CF, [1, 2, 5, 5], dtype, env) is expected


def test_k1_does_not_hold_for_channels_last_nor_grouped_convolutions():
    env = {"tensorflow": {"onednn": "False"}}
    last = {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3}}
    grouped = {"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3, "groups": 2,
                                                  "data_format": "channels_first"}}
    catalogue = findings.load()
    assert not catalogue.holds("K1", last, [1, 5, 5, 2], "float64", env)
    assert not catalogue.holds("K1", grouped, [1, 2, 5, 5], "float64", env)


@pytest.mark.parametrize("shape, isa, expected", [
    ([2, 6, 4, 1], "avx512", True),    # one channel, strides (1, 2), output width (4-3)//2+1 = 1
    ([2, 6, 4, 1], "avx2", False),     # oneDNN below AVX-512 computes it right
    ([2, 6, 6, 1], "avx512", False),   # output width 2
    ([2, 6, 4, 2], "avx512", False),   # two channels
])
def test_o1_condition_names_the_shape_and_the_isa(shape, isa, expected):
    env = {"onednn_isa": isa, "torch": {"mkldnn": "True"}}
    assert findings.load().holds("O1", ONE_CHANNEL, shape, "float32", env) is expected


def test_o3_needs_an_empty_batch_and_onednn():
    env_on, env_off = {"tensorflow": {"onednn": "True"}}, {"tensorflow": {"onednn": "False"}}
    spec = {"class_name": "Conv2D", "config": {"filters": 4, "kernel_size": 2}}
    catalogue = findings.load()
    assert catalogue.holds("O3", spec, [0, 5, 5, 2], "float32", env_on)
    assert not catalogue.holds("O3", spec, [0, 5, 5, 2], "float32", env_off)
    assert not catalogue.holds("O3", spec, [1, 5, 5, 2], "float32", env_on)
    assert not catalogue.holds("O3", spec, [0, 5, 5, 2], "float64", env_on)


def test_k14_uses_the_same_padding_total():
    catalogue = findings.load()
    total_minus_2 = {"class_name": "Conv3D", "config": {"filters": 1, "kernel_size": 1, "strides": 3, "padding": "same"}}
    total_minus_1 = {"class_name": "Conv3D", "config": {"filters": 1, "kernel_size": 2, "strides": 3, "padding": "same"}}
    assert catalogue.holds("K14", total_minus_2, [1, 3, 3, 3, 1], "float64")
    assert not catalogue.holds("K14", total_minus_1, [1, 3, 3, 3, 1], "float64")
    assert not catalogue.holds("K14", total_minus_2, [1, 3, 3, 3, 1], "float32")


# ------------------------------------------------------------------ matching records

def _record(spec, shape, verdicts, kind="valid"):
    return {"id": "case-1", "layer": spec["class_name"], "spec": spec, "input_shape": shape, "kind": kind,
            "verdicts": verdicts}


def _matcher(dtype="float64", onednn="True", name="keras"):
    return findings.Matcher(findings.load(), {"name": name, "versions": {"tensorflow": "2.21.0", "keras": "3.15.1"}},
                            {"tensorflow": {"onednn": onednn}}, dtype)


def test_a_failure_the_condition_explains_is_known():
    matcher = _matcher()
    record = matcher.annotate(_record(CONV2D_CF, [1, 2, 5, 5], {"shape": "error", "output": "error"}))
    assert record["findings"] == ["K1"] and "new" not in record
    assert matcher.summary()["by_finding"] == {"K1": 1} and matcher.summary()["new"] == 0


def test_a_failure_in_a_category_the_finding_does_not_cover_is_new():
    record = _matcher().annotate(_record(CONV2D_CF, [1, 2, 5, 5], {"shape": "pass", "initializer": "fail"}))
    assert record.get("new") is True and "findings" not in record


def test_a_different_verdict_than_the_finding_expects_is_new():
    # K1 raises; wrong values under its condition are something else
    record = _matcher().annotate(_record(CONV2D_CF, [1, 2, 5, 5], {"shape": "pass", "output": "fail"}))
    assert record.get("new") is True


def test_another_adapter_or_version_does_not_match():
    other = findings.Matcher(findings.load(), {"name": "keras", "versions": {"tensorflow": "2.20.0"}},
                             {"tensorflow": {"onednn": "True"}}, "float64")
    assert other.annotate(_record(CONV2D_CF, [1, 2, 5, 5], {"output": "error"})).get("new") is True
    torch = _matcher(name="torch")
    assert torch.annotate(_record(CONV2D_CF, [1, 2, 5, 5], {"output": "error"})).get("new") is True


def test_a_withdrawn_finding_never_labels_a_case():
    # R13's behaviour is within the contract's mish allowance: a mish failure of openvino is new
    assert findings.load()["R13"].withdrawn
    mish = {"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 1, "activation": "mish"}}
    matcher = findings.Matcher(findings.load(), {"name": "openvino", "versions": {"openvino": "2026.4.1"}}, {},
                               "float32")
    record = matcher.annotate(_record(mish, [1, 3, 1], {"shape": "pass", "output": "fail"}))
    assert record.get("new") is True and "findings" not in record


def test_a_covered_case_that_passes_reports_the_finding_as_fixed():
    matcher = _matcher()
    matcher.annotate(_record(CONV2D_CF, [1, 2, 5, 5], {"shape": "pass", "output": "pass", "gradient": "pass"}))
    fixed = matcher.summary()["fixed"]
    assert [f["id"] for f in fixed] == ["K1"] and fixed[0]["versions"] == {"tensorflow": "2.21.0"}


def test_published_onnxruntime_run_fails_only_on_r3():
    # docs/divergences.md R3: "Standard run (float32, both optimization levels): 4 failures, all of them this"
    report = findings.annotate_report(json.loads(
        (ROOT / "docs/results/runtimes/onnxruntime-float32/report.json").read_text()))
    assert report["summary"]["findings"]["by_finding"] == {"R3": 4}
    assert report["summary"]["findings"]["new"] == 0
    assert report["summary"]["conformant"] is False  # known findings never make a run conformant


# ------------------------------------------------------------------ runs, --fail-on new, compare

@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Three float64 smoke runs of the fixture adapters: exit status, printed summary, report path."""
    out = {}
    for name in ("KnownAndNew", "KnownOnly", "NewOnly"):
        directory = tmp_path_factory.mktemp(name)
        out[name] = directory / "report.json"
    return out


def _run(path: Path, adapter: str, capsys, *extra: str) -> tuple[int, str]:
    code = main(["run", "--adapter", f"{FIXTURE}:{adapter}", "--layers", LAYERS, "--dtype", "float64",
                 "--out", str(path.parent), *extra])
    return code, capsys.readouterr().out


def test_run_names_known_and_new_failures(runs, capsys, validate_report):
    code, out = _run(runs["KnownAndNew"], "KnownAndNew", capsys)
    assert code == 1
    assert "NOT CONFORMANT" in out and "2 failing: 1 known [P1 x1], 1 new" in out
    report = json.loads(runs["KnownAndNew"].read_text())
    validate_report(report)
    cases = {c["id"]: c for c in report["cases"]}
    assert cases[KNOWN_CASE]["findings"] == ["P1"] and "new" not in cases[KNOWN_CASE]
    assert cases[NEW_CASE]["new"] is True and "findings" not in cases[NEW_CASE]
    assert report["summary"]["findings"]["new_cases"] == [NEW_CASE]
    assert report["summary"]["conformant"] is False


def test_fail_on_new_exits_1_only_when_a_failure_is_new(runs, capsys, tmp_path):
    assert _run(tmp_path / "a" / "report.json", "KnownAndNew", capsys, "--fail-on", "new")[0] == 1
    code, out = _run(runs["KnownOnly"], "KnownOnly", capsys, "--fail-on", "new")
    assert code == 0 and "NOT CONFORMANT" in out and "1 failing: 1 known [P1 x1], 0 new" in out
    assert _run(tmp_path / "b" / "report.json", "KnownOnly", capsys)[0] == 1  # the default gate: any failure


def test_a_known_finding_whose_case_passes_is_reported_fixed(runs, capsys):
    code, out = _run(runs["NewOnly"], "NewOnly", capsys)
    assert code == 1
    # both hard_sigmoid cases at float64: the one that failed before, and an empty batch's
    assert "fixed? P1: 2 case(s) its condition covers pass with torch 2.13.0" in out
    fixed = json.loads(runs["NewOnly"].read_text())["summary"]["findings"]["fixed"]
    assert fixed == [{"id": "P1", "cases": [KNOWN_CASE, "Conv2DTranspose-5ca75d721f6a"], "versions": {"torch": "2.13.0"}}]


def test_a_broken_catalogue_costs_no_report(tmp_path, capsys, monkeypatch):
    def broken():
        raise ValueError("catalogue unreadable")

    monkeypatch.setattr(findings, "load", broken)
    code, out = _run(tmp_path / "report.json", "KnownOnly", capsys)
    assert code == 1 and "NOT CONFORMANT" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert "findings" not in report["summary"] and report["summary"]["cases"] == 13


def test_compare_tells_known_from_new_and_reports_a_disappeared_finding(runs, capsys):
    for name in runs:
        if not runs[name].exists():
            _run(runs[name], name, capsys)
    base, new = load(runs["KnownAndNew"]), load(runs["NewOnly"])
    gone = compare.compare(base, new)
    assert gone.findings_gone == ["P1"] and "Known findings that disappeared" in compare.render(gone)
    # P1 appearing is a regression, but a known one; the planted failure appearing is new
    appeared = compare.compare(load(runs["NewOnly"]), load(runs["KnownAndNew"]))
    assert appeared.regressions == 1 and appeared.new_regressions == 0 and appeared.findings_appeared == ["P1"]
    assert "| P1](" not in compare.render(appeared) and "[P1](" in compare.render(appeared)
    planted = compare.compare(load(runs["KnownOnly"]), load(runs["KnownAndNew"]))
    assert planted.new_regressions == 1 and "**new**" in compare.render(planted)
    argv = ["compare", str(runs["NewOnly"]), str(runs["KnownAndNew"])]
    assert main(argv) == 1 and main([*argv, "--fail-on", "new"]) == 0
    argv = ["compare", str(runs["KnownOnly"]), str(runs["KnownAndNew"]), "--fail-on", "new"]
    assert main(argv) == 1


def test_every_format_names_the_finding(runs, capsys):
    if not runs["KnownAndNew"].exists():
        _run(runs["KnownAndNew"], "KnownAndNew", capsys)
    report = load(runs["KnownAndNew"])
    text = report_markdown.render(report)
    assert f"[P1]({findings.DOC_PAGE}#finding-p1)" in text and NEW_CASE in text
    assert main(["report", str(runs["KnownAndNew"]), "--format", "junit"]) == 0
    junit = capsys.readouterr().out
    assert 'message="known finding P1 (' in junit and "new failure (no known finding explains it)" in junit
    assert main(["report", str(runs["KnownAndNew"]), "--format", "html"]) == 0
    assert f'href="{findings.DOC_PAGE}#finding-p1"' in capsys.readouterr().out


# ------------------------------------------------------------------ conv-conformance findings

def test_findings_lists_and_filters(capsys):
    assert main(["findings", "--framework", "torch"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert set(listed) == {f.id for f in findings.load() if f.framework == "torch"} and "P5" in listed
    assert main(["findings", "--status", "fixed"]) == 0
    assert capsys.readouterr().out.strip() == "no finding matches"


def test_findings_writes_a_bug_report(capsys, tmp_path):
    assert main(["findings", "P5", "--bug-report", "--out", str(tmp_path / "P5.md")]) == 0
    text = (tmp_path / "P5.md").read_text()
    assert text.startswith("# slow_conv2d backward raises") and "**Environment**" in text
    assert "**Expected vs actual**" in text


def test_findings_writes_the_checked_in_reproducer(capsys):
    assert main(["findings", "K1", "--reproducer"]) == 0
    assert capsys.readouterr().out == (ROOT / "docs/findings/reproducers/K1.py").read_text()
    assert main(["findings", "W4", "--reproducer"]) == 1  # a note: no reproducer
    assert "has no standalone reproducer" in capsys.readouterr().err


@pytest.mark.parametrize("argv, needle", [
    (["findings", "K99"], "Argument ID must be a finding of the catalogue"),
    (["findings", "--reproducer"], "need a finding ID"),
])
def test_findings_usage_errors_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


# ------------------------------------------------------------------ findings first written as prose

def test_every_tfjs_finding_of_its_page_is_catalogued():
    page = (ROOT / "docs/findings/tfjs.md").read_text("utf-8")
    rows = re.findall(r"^\| (tfjs-[a-z0-9-]+) \((J[SW]\d+)\) \|", page, flags=re.M)
    assert len(rows) == 17
    entries = [f for f in findings.load() if f.framework == "tfjs"]
    for slug, fid in rows:
        named = [f.id for f in entries if f"`{slug}`" in f.doc.get("evidence", "")]
        assert named == [fid], f"{slug}: the page says {fid}, the catalogue {named}"


def test_every_low_precision_miss_is_catalogued_as_a_quality_warning():
    page = (ROOT / "docs/findings/low-precision.md").read_text("utf-8")
    ids = re.findall(r"^\* \*\*(L[A-Z]\d) - ", page, flags=re.M)
    catalogued = [f.id for f in findings.load() if f.section == "low-precision" and "quality_warning" in f.verdicts]
    assert ids and sorted(ids) == sorted(catalogued)
    for fid in ids:
        assert findings.load()[fid].verdicts == ("quality_warning",), fid


def test_every_finding_a_run_can_fail_or_warn_on_has_a_reproducer():
    from conv_conformance.conformance.findings.reproducers import reproducer_script

    # R12's misses are relative to the suite's error model of a convolution and its activation; its
    # entry says why they were not reduced to a few lines of NumPy
    missing = [f.id for f in findings.load()
               if set(f.verdicts) & {"fail", "error", "nondeterministic", "quality_warning"} and not reproducer_script(f)]
    assert missing == ["R12"] and "No standalone reproducer" in findings.load()["R12"].doc["evidence"]


# ------------------------------------------------------------------ quality_warning, tightened conditions

def _torch_matcher(dtype):
    return findings.Matcher(findings.load(), {"name": "torch", "versions": {"torch": "2.13.0+cpu"}},
                            {"torch": {"mkldnn": "True"}}, dtype)


CONV3X3 = {"class_name": "Conv2D", "config": {"filters": 16, "kernel_size": 3}}


def test_a_strict_class_miss_is_labelled_and_counted_apart_from_failures():
    matcher = _torch_matcher("float16")
    record = matcher.annotate(_record(CONV3X3, [2, 12, 12, 64], {"output": "pass", "gradient": "quality_warning"}))
    assert record["findings"] == ["LT1", "LT2"] and "new" not in record
    summary = matcher.summary()
    assert summary["known"] == 0 and summary["new"] == 0
    assert summary["quality_warning"] == {"known": 1, "by_finding": {"LT1": 1, "LT2": 1}, "unexplained": 0}
    assert findings.summary_text(summary) == "1 quality_warning: 1 known [LT1 x1, LT2 x1], 0 not catalogued"


def test_a_strict_class_miss_no_finding_explains_is_not_new():
    matcher = _torch_matcher("float16")
    one_by_one = {"class_name": "Conv2D", "config": {"filters": 16, "kernel_size": 1}}
    record = matcher.annotate(_record(one_by_one, [1, 12, 12, 64], {"output": "quality_warning"}))
    assert "findings" not in record and "new" not in record
    assert matcher.summary()["quality_warning"]["unexplained"] == 1 and matcher.summary()["new"] == 0


def test_a_quality_warning_finding_is_never_reported_fixed():
    matcher = _torch_matcher("float16")
    matcher.annotate(_record(CONV3X3, [2, 12, 12, 64], {"output": "pass", "gradient": "pass"}))
    assert matcher.summary()["fixed"] == []
    assert _torch_matcher("float32").annotate(
        _record(CONV3X3, [2, 12, 12, 64], {"gradient": "quality_warning"})).get("findings") is None


@pytest.mark.parametrize("shape, size, dtype, expected", [
    ([1, 1, 2, 1], [1, 3], "float32", True),      # an axis of extent 2 upsampled 3x: off the coefficient table
    ([1, 1, 2, 1], [1, 2], "float32", False),     # sizes that are powers of two stay within the float32 bound
    ([1, 1, 2, 1], [1, 4], "float32", False),
    ([1, 3, 1, 1], [1, 3], "float32", False),     # extent 1: every tap is the same pixel
    ([1, 1, 1, 1], [1, 1], "float64", True),      # float64: the float32 table fails everywhere
    ([0, 1, 1, 1], [2, 2], "float64", False),     # except an empty batch
])
def test_k11_condition_follows_the_measured_sizes(shape, size, dtype, expected):
    spec = {"class_name": "UpSampling2D", "config": {"size": size, "interpolation": "bicubic"}}
    assert findings.load().holds("K11", spec, shape, dtype) is expected


@pytest.mark.parametrize("config, shape, dtype, expected", [
    ({"kernel_size": 2}, [2, 3, 3, 2], "float64", True),
    ({"kernel_size": 2, "data_format": "channels_first"}, [2, 2, 3, 3], "float64", False),  # contiguous NCHW
    ({"kernel_size": 1}, [2, 3, 3, 2], "float64", False),                                   # a 1x1 kernel
    ({"kernel_size": 2, "dilation_rate": 2}, [2, 3, 3, 2], "float64", False),
    ({"kernel_size": 2}, [2, 3, 3, 2], "float32", False),                                   # float32: batch 1 only
    ({"kernel_size": 2}, [1, 3, 3, 2], "float32", True),
])
def test_p5_condition_follows_the_measured_sweep(config, shape, dtype, expected):
    spec = {"class_name": "Conv2D", "config": {"filters": 1, "use_bias": False, **config}}
    assert findings.load().holds("P5", spec, shape, dtype) is expected


def test_tfjs_conditions_tell_the_backends_and_invalid_cases_apart():
    catalogue = findings.load()
    cropping = {"class_name": "Cropping2D", "config": {"cropping": [[0, 0], [0, 0]], "data_format": "channels_middle"}}
    assert catalogue.holds("JS13", cropping, [1, 2, 4, 4], "float32", kind="invalid", adapter="tfjs")
    assert not catalogue.holds("JS13", cropping, [1, 2, 4, 4], "float32", kind="valid", adapter="tfjs")
    matcher = findings.Matcher(catalogue, {"name": "tfjs", "versions": {"@tensorflow/tfjs": "4.22.0"}}, {}, "float32")
    gradient_error = _record({"class_name": "Conv2D", "config": {"filters": 2, "kernel_size": 3}}, [2, 7, 7, 3],
                             {"output": "pass", "gradient": "error"})
    assert matcher.annotate(gradient_error).get("new") is True  # JW2 is the WebAssembly backend's
    wasm = findings.Matcher(catalogue, {"name": "tfjs-wasm", "versions": {"@tensorflow/tfjs": "4.22.0"}}, {}, "float32")
    assert wasm.annotate(gradient_error)["findings"] == ["JW2"]


def test_a_tfjs_bug_report_carries_its_node_reproducer(capsys):
    assert main(["findings", "JS10", "--bug-report"]) == 0
    text = capsys.readouterr().out
    assert "```javascript" in text and 'require("@tensorflow/tfjs")' in text and "@tensorflow/tfjs (npm" in text
    assert main(["findings", "JS10", "--reproducer"]) == 0
    assert capsys.readouterr().out == (ROOT / "docs/findings/reproducers/JS10.js").read_text()


# ------------------------------------------------------------------ the Keras 2 vs Keras 3 page

def _docs_script():
    import importlib.util
    spec = importlib.util.spec_from_file_location("findings_docs", ROOT / "scripts" / "findings_docs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: The rows docs/keras2-vs-keras3.md had when it was written by hand (its "What" cells).
KERAS2_VS_KERAS3_ROWS = [
    "Activations `celu, sparse_sigmoid", "`hard_sigmoid`", "`ZeroPadding1D(data_format=...)`",
    "DepthwiseConv1D/SeparableConv1D (and 2D) with `strides > 1` and `dilation_rate > 1`",
    "Cropping with a negative amount", "A kernel larger than the input under `padding='valid'`",
    "DepthwiseConv1D/2D with `depth_multiplier=0`", "SeparableConv1D with `padding='causal'`",
    "Depthwise kernel variable name", "Conv3DTranspose output length with `dilation_rate > 1`",
    "DepthwiseConv1D with `channels_first` on CPU"]


def test_keras2_vs_keras3_page_is_generated_and_check_covers_it(tmp_path):
    docs = _docs_script()
    files = docs.expected_files()
    page = ROOT / "docs" / "keras2-vs-keras3.md"
    assert page in files and page not in docs.stale({page: files[page]})
    edited = tmp_path / "keras2-vs-keras3.md"
    edited.write_text(files[page].replace("| rejected |", "| accepted |", 1), "utf-8")
    assert edited in docs.stale({edited: files[page]})  # a hand edit is what --check reports


def test_every_keras2_vs_keras3_row_is_a_catalogue_entry_linked_to_its_anchor():
    catalogue = findings.load()
    divergences = (ROOT / "docs" / "divergences.md").read_text("utf-8")
    rows = [line for line in (ROOT / "docs" / "keras2-vs-keras3.md").read_text("utf-8").splitlines()
            if line.startswith("| ") and "](divergences.md#" in line]
    for what in KERAS2_VS_KERAS3_ROWS:
        assert [r for r in rows if r.startswith("| " + what)], what
    sections = {}  # heading anchor -> the section's text, up to the next heading
    for block in re.split(r"^## ", divergences, flags=re.M)[1:]:
        heading = block.split("\n", 1)[0]
        sections[re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")] = block
    for row in rows:
        fid, target = re.search(r"\| \[([A-Z]+\d+)\]\(divergences\.md#([\w-]+)\) \|$", row).groups()
        entry = catalogue[fid]
        assert f'<a id="{findings.anchor(fid)}"></a>{fid} |' in sections[target], (fid, target)
        assert row.startswith(f"| {entry.doc['versus']} | {entry.doc['keras3']} | {entry.doc['keras2']} |")


def test_a_keras2_vs_keras3_entry_missing_a_column_is_named():
    docs = _docs_script()
    data = json.loads((ROOT / "conformance" / "findings" / "catalogue.json").read_text("utf-8"))
    entry = next(f for f in data["findings"] if f["id"] == "T4")
    del entry["doc"]["keras2"]
    with pytest.raises(ValueError, match="finding T4: doc needs keras2 for docs/keras2-vs-keras3.md"):
        docs.keras_table(findings.parse(data))


@pytest.mark.parametrize("fid, spec, shape, dtype, onednn, expected", [
    ("T11", {"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 3, "dilation_rate": 2}}, [1, 4, 1],
     "float32", "True", True),
    ("T11", {"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 5}}, [1, 4, 1], "float32", "True", False),
    ("T12", {"class_name": "DepthwiseConv2D", "config": {"kernel_size": 1, "depth_multiplier": 0}}, [2, 3, 3, 2],
     "float64", "True", True),
    ("T12", {"class_name": "DepthwiseConv2D", "config": {"kernel_size": 1, "depth_multiplier": 0}}, [2, 3, 3, 2],
     "float32", "True", False),  # oneDNN's float32 kernel raises: the configuration is rejected
    ("T12", {"class_name": "DepthwiseConv2D", "config": {"kernel_size": 1, "depth_multiplier": 0}}, [2, 3, 3, 2],
     "float32", "False", True),
    ("T13", {"class_name": "SeparableConv1D", "config": {"filters": 1, "kernel_size": 2, "padding": "causal"}},
     [1, 4, 2], "float32", "True", True),
    ("T13", {"class_name": "DepthwiseConv1D", "config": {"kernel_size": 2, "padding": "causal"}},
     [1, 4, 2], "float32", "True", False),
])
def test_keras2_invalid_configuration_conditions(fid, spec, shape, dtype, onednn, expected):
    env = {"tensorflow": {"onednn": onednn}}
    assert findings.load().holds(fid, spec, shape, dtype, env, kind="invalid") is expected
    assert not findings.load().holds(fid, spec, shape, dtype, env, kind="valid")


# ------------------------------------------------------------------ what only float16 and bfloat16 show

ORTHOGONAL = {"class_name": "Conv2DTranspose", "config": {
    "filters": 2, "kernel_size": 3, "kernel_initializer": {"class_name": "Orthogonal", "config": {"gain": 1.5}}}}


@pytest.mark.parametrize("fid, dtype, kind, spec, expected", [
    ("LK5", "bfloat16", "valid", ORTHOGONAL, True),
    ("LK5", "float16", "valid", ORTHOGONAL, False),     # TensorFlow's Qr has a half kernel
    ("LK5", "bfloat16", "invalid", ORTHOGONAL, False),  # a rejected configuration builds no layer
    ("LK5", "bfloat16", "valid", {"class_name": "Conv2DTranspose", "config": {"filters": 2, "kernel_size": 3}}, False),
    ("LT3", "float16", "valid", ORTHOGONAL, True),      # PyTorch's geqrf has neither half type
    ("LT3", "bfloat16", "valid", ORTHOGONAL, True),
    ("LT3", "float32", "valid", ORTHOGONAL, False),
    ("LP4", "float16", "valid", ORTHOGONAL, True),
])
def test_orthogonal_initializer_conditions(fid, dtype, kind, spec, expected):
    assert findings.load().holds(fid, spec, [1, 2, 2, 3], dtype, kind=kind) is expected


@pytest.mark.parametrize("fid, interpolation, shape, dtype, expected", [
    ("LK6", "bicubic", [2, 1, 1, 1], "float16", True),
    ("LK6", "bicubic", [1, 3, 3, 3], "bfloat16", True),
    ("LK6", "bicubic", [0, 1, 1, 1], "float16", False),   # an empty batch has nothing to lose
    ("LK6", "bicubic", [2, 1, 1, 1], "float32", False),   # float32 and float64 have ResizeBicubicGrad
    ("LK6", "bilinear", [2, 1, 1, 1], "float16", False),
    ("LK7", "lanczos3", [0, 1, 1, 1], "float16", True),   # raises even on an empty batch
    ("LK7", "lanczos5", [2, 2, 1, 1], "bfloat16", True),
    ("LK7", "lanczos3", [2, 2, 1, 1], "float32", False),  # ScaleAndTranslateGrad's one kernel
])
def test_upsampling_gradient_conditions(fid, interpolation, shape, dtype, expected):
    spec = {"class_name": "UpSampling2D", "config": {"size": [2, 2], "interpolation": interpolation}}
    assert findings.load().holds(fid, spec, shape, dtype) is expected


def test_k14_holds_at_bfloat16_on_native_kernels_only():
    catalogue = findings.load()
    spec = {"class_name": "Conv3D", "config": {"filters": 1, "kernel_size": 1, "strides": 3, "padding": "same"}}
    assert catalogue.holds("K14", spec, [2, 3, 3, 3, 2], "bfloat16", {"tensorflow": {"onednn": "False"}})
    assert not catalogue.holds("K14", spec, [2, 3, 3, 3, 2], "bfloat16", {"tensorflow": {"onednn": "True"}})


@pytest.mark.parametrize("config, shape, dtype, expected", [
    ({"kernel_size": 3}, [2, 5, 3, 2], "float16", True),    # P5's low-precision condition, through Keras
    ({"kernel_size": [3, 1]}, [2, 1, 1, 2], "bfloat16", True),
    ({"kernel_size": 1}, [2, 5, 3, 2], "float16", False),   # a 1x1 kernel
    ({"kernel_size": 3, "data_format": "channels_first"}, [2, 2, 5, 3], "float16", False),
    ({"kernel_size": 3}, [0, 5, 3, 2], "float16", False),   # an empty batch
])
def test_r7_covers_keras_torch_low_precision_backward(config, shape, dtype, expected):
    spec = {"class_name": "Conv2D", "config": {"filters": 1, "padding": "same", **config}}
    assert findings.load().holds("R7", spec, shape, dtype) is expected


@pytest.mark.parametrize("shape, dtype, onednn, kind, expected", [
    ([0, 2, 2, 1], "float64", "True", "invalid", True),
    ([1, 2, 2, 1], "bfloat16", "False", "invalid", True),
    ([0, 2, 2, 1], "float32", "False", "invalid", True),
    ([0, 2, 2, 1], "float32", "True", "invalid", False),   # oneDNN's float32 kernel raises
    ([0, 4, 4, 1], "float64", "True", "invalid", False),   # the kernel fits
])
def test_t15_condition(shape, dtype, onednn, kind, expected):
    spec = {"class_name": "SeparableConv2D", "config": {"filters": 3, "kernel_size": 3, "depth_multiplier": 2}}
    env = {"tensorflow": {"onednn": onednn}}
    assert findings.load().holds("T15", spec, shape, dtype, env, kind=kind) is expected


def test_k18_is_pinned_where_a_run_shows_it():
    spec = {"class_name": "Conv2DTranspose", "config": {"filters": 2, "kernel_size": 3, "strides": 3,
                                                        "activation": "celu"}}
    assert findings.load().holds("K18", spec, [2, 5, 5, 1], "float16")
    assert not findings.load().holds("K18", spec, [2, 5, 5, 1], "float32")
    assert not findings.load().holds("K18", {**spec, "config": {**spec["config"], "activation": "elu"}},
                                     [2, 5, 5, 1], "float16")


SEPARABLE_CF = {"class_name": "SeparableConv1D", "config": {"filters": 2, "kernel_size": 2, "strides": 3,
                                                            "padding": "same", "data_format": "channels_first",
                                                            "activation": "tanh", "use_bias": True}}


@pytest.mark.parametrize("adapter, versions, dtype, spec, shape, expected", [
    ("keras", {"keras": "3.15.1", "tensorflow": "2.21.0"}, "bfloat16", SEPARABLE_CF, [2, 1, 4], ["LK8"]),
    ("keras", {"keras": "3.15.1", "tensorflow": "2.21.0"}, "bfloat16", SEPARABLE_CF, [2, 1, 7], []),  # last length 3
    ("keras", {"keras": "3.15.1", "tensorflow": "2.21.0"}, "float32", SEPARABLE_CF, [2, 1, 4], []),   # K2 fails there
    ("tf-keras", {"tf_keras": "2.21.0", "tensorflow": "2.21.0"}, "bfloat16",
     {"class_name": "Conv1D", "config": {"filters": 2, "kernel_size": 1, "strides": 2, "groups": 2, "use_bias": False,
                                         "activation": "hard_sigmoid"}}, [1, 3, 4], ["LK9"]),
    ("jax", {"jax": "0.10.2"}, "float16",
     {"class_name": "Conv2D", "config": {"filters": 10, "kernel_size": 1, "activation": "silu"}}, [1, 1, 1, 240], ["LP3"]),
    ("jax", {"jax": "0.10.2"}, "bfloat16",
     {"class_name": "Conv2D", "config": {"filters": 10, "kernel_size": 1, "activation": "silu"}}, [1, 1, 1, 240], []),
])
def test_a_failing_finding_inside_the_rigorous_bound_is_labelled_as_a_quality_warning(adapter, versions, dtype, spec,
                                                                                       shape, expected):
    matcher = findings.Matcher(findings.load(), {"name": adapter, "versions": versions},
                               {"tensorflow": {"onednn": "False"}}, dtype)
    record = matcher.annotate(_record(spec, shape, {"output": "quality_warning"}))
    assert record.get("findings", []) == expected and "new" not in record
    assert matcher.summary()["quality_warning"]["unexplained"] == (0 if expected else 1)


def test_published_low_precision_standard_runs_leave_only_the_hard_shrink_discontinuity_new():
    """What no finding explains in these runs is the tolerance model's, not a framework's: a
    hard_shrink pre-activation within its allowed error of +-0.5 (low-precision.md)."""
    reports = sorted((ROOT / "docs/results/low-precision/standard").glob("*/report.json"))
    runs = [json.loads(p.read_text("utf-8")) for p in reports]
    runs = [r for r in runs if r["adapter"]["name"] in ("keras", "tf-keras", "torch", "keras-torch")]
    assert len(runs) == 8
    for run in runs:
        new = [c for c in run["cases"] if c.get("new")]
        assert len(new) == run["summary"]["findings"]["new"]
        assert all(c["spec"]["config"].get("activation") == "hard_shrink" and set(
            v for v in c["verdicts"].values() if v in ("fail", "error")) == {"fail"} for c in new), \
            (run["adapter"]["name"], run["dtype"], [c["id"] for c in new])
        assert run["summary"]["findings"]["quality_warning"]["unexplained"] == 0, (run["adapter"]["name"], run["dtype"])


def test_a_finding_whose_values_decide_is_never_reported_fixed_but_still_explains():
    # J1 needs pre-activations below -11.09: a float16 sigmoid case with small values passes
    sigmoid = {"class_name": "Conv1D", "config": {"filters": 1, "kernel_size": 1, "activation": "sigmoid"}}
    jax = {"name": "jax", "versions": {"jax": "0.10.2", "jaxlib": "0.10.2"}}
    assert findings.load()["J1"].values
    passing = findings.Matcher(findings.load(), jax, {}, "float16")
    passing.annotate(_record(sigmoid, [1, 3, 1], {"shape": "pass", "output": "pass"}))
    assert passing.summary()["fixed"] == []
    failing = findings.Matcher(findings.load(), jax, {}, "float16")
    assert failing.annotate(_record(sigmoid, [1, 3, 1], {"shape": "pass", "output": "fail"}))["findings"] == ["J1"]
    # the same entry without `values` would be reported: what the field changes
    plain = dict(findings.load()["J1"].__dict__, values=None)
    catalogue = findings.load()
    matcher = findings.Matcher(catalogue, jax, {}, "float16")
    matcher.active = [findings.Finding(**plain) if f.id == "J1" else f for f in matcher.active]
    matcher.annotate(_record(sigmoid, [1, 3, 1], {"shape": "pass", "output": "pass"}))
    assert [f["id"] for f in matcher.summary()["fixed"]] == ["J1"]
