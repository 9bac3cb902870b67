"""Forgery and doctoring attempts, each written as a careful attacker would: every hash, the
chain, the counts, the levels, the statement and the manifest are recomputed after the edit
(with the suite's own public code where that is what an attacker would use). Each is caught,
by re-scoring the stored results (``verify``), by re-executing a sample (``verify --rerun``), or
by re-deriving the corpus (``run --cases``). docs/certification.md says what no bundle proves."""
from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conv_conformance.cli import main
from conv_conformance.conformance import certify as certify_mod
from conv_conformance.conformance.levels import LevelTally
from conv_conformance.oracle import export
from conv_conformance.oracle.cases import case_set, corpus_id
from conv_conformance.vocabulary import CATEGORIES, FAILING, VERDICTS, worst_verdict
from tests.conformance.bundle_tampering import failed, read as _read, records as _records, rechain, remanifest, \
    sha as _sha, write as _write

BAD = "tests.conformance.fixtures.declared:Bad"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "certification.md"
RESCORED = "every stored result re-scored: verdicts and ratios recomputed"


def forge(bundle: Path, records: list[dict]) -> None:
    """Make every derived field agree with ``records`` and reseal: report.json's cases and summary,
    the levels and coverage (LevelTally), the statement and its claim, the chain and the manifest."""
    report = _read(bundle, "report.json")
    by_id = {r["id"]: r for r in records}
    counts = {v: 0 for v in VERDICTS}
    by_category = {c: {v: 0 for v in VERDICTS} for c in CATEGORIES}
    tally = LevelTally(report["adapter"]["declaration"], report["dtype"])
    for case in report["cases"]:
        r = by_id[case["id"]]
        for key in ("verdicts", "worst_ratio", "strict_ratio"):
            case[key] = r.get(key) or {}
        counts[worst_verdict(r["verdicts"])] += 1
        for cat, v in r["verdicts"].items():
            by_category[cat][v] += 1
        tally.add(case)
    summary = report["summary"]
    summary.update(counts=counts, by_category=by_category, coverage=tally.coverage(), levels=tally.levels())
    summary["conformant"] = not any(counts[v] for v in FAILING) and all(
        v["level"] != "not_conformant" for v in summary["levels"].values())
    _write(bundle, "report.json", report)
    suite = rechain(bundle, records)
    statement = certify_mod._statement(report, suite)  # the claim text exactly as certify words it
    statement["created"] = _read(bundle, "STATEMENT.json")["created"]
    _write(bundle, "STATEMENT.json", statement)
    remanifest(bundle)


def store(bundle: Path, path: Path) -> str:
    """Put a results file into the bundle under its hash (as the format says); its hash."""
    digest = _sha(path.read_bytes())
    target = bundle / "results" / f"{digest}.npz"
    if path != target:
        shutil.copyfile(path, target)
    return digest


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    root = tmp_path_factory.mktemp("forgery")
    assert main(["certify", "--adapter", "reference", "--profile", "smoke", "--out", str(root / "reference")]) == 0
    assert main(["certify", "--adapter", BAD, "--profile", "smoke", "--out", str(root / "bad")]) == 1
    return root


@pytest.fixture
def bad(made, tmp_path) -> Path:
    shutil.copytree(made / "bad", tmp_path / "bad")
    return tmp_path / "bad"


@pytest.fixture
def reference(made, tmp_path) -> Path:
    shutil.copytree(made / "reference", tmp_path / "reference")
    return tmp_path / "reference"


def _failing(records: list[dict]) -> list[int]:
    return [n for n, r in enumerate(records) if "fail" in r["verdicts"].values()]


def test_both_genuine_bundles_verify(made):
    # the honest record of NOT CONFORMANT is authentic too: every check holds
    assert failed(made / "reference") == {} and failed(made / "bad") == {}
    assert _failing(_records(made / "bad"))


def test_rewritten_verdicts_with_resealed_hashes(bad, capsys):
    records = _records(bad)
    flipped = _failing(records)
    for n in flipped:
        r = records[n]
        r["verdicts"] = {c: ("pass" if v == "fail" else v) for c, v in r["verdicts"].items()}
        r["worst_ratio"] = {c: (0.5 if c == "output" else v) for c, v in r["worst_ratio"].items()}
        r["strict_ratio"] = {c: (0.5 if c == "output" else v) for c, v in r["strict_ratio"].items()}
    forge(bad, records)
    problems = failed(bad)
    assert list(problems) == [RESCORED]  # every other check is satisfied by the forgery
    named = {d.split()[0] for d in problems[RESCORED]}
    assert named == {records[n]["id"] for n in flipped}
    assert all("the bundle records pass, its results score fail" in d for d in problems[RESCORED])
    assert main(["verify", str(bad)]) == certify_mod.NOT_VERIFIED
    assert "NOT VERIFIED" in capsys.readouterr().out


def test_swapped_results_between_cases(reference):
    records = _records(reference)
    a, b = [n for n, r in enumerate(records) if r["layer"] == "Conv2D" and r["kind"] == "valid"][:2]
    records[a]["results"], records[b]["results"] = records[b]["results"], records[a]["results"]
    forge(reference, records)
    details = failed(reference)[RESCORED]
    assert any(d.startswith(records[a]["id"]) for d in details) and any(d.startswith(records[b]["id"]) for d in details)


def test_swapped_results_relabelled_as_the_case(reference):
    """The careful version: the swapped log is rewritten to name the case it now stands for."""
    records = _records(reference)
    a, b = [n for n, r in enumerate(records) if r["layer"] == "Conv2D" and r["kind"] == "valid"][:2]
    source = reference / "results" / f"{records[b]['results']}.npz"
    with np.load(source) as data:
        arrays = {k: data[k] for k in data.files}
    head = json.loads(arrays["__log__"].tobytes())
    head["case"] = records[a]["id"]
    arrays["__log__"] = np.frombuffer(json.dumps(head, sort_keys=True).encode(), np.uint8)
    relabelled = reference / "relabelled.npz"
    np.savez_compressed(relabelled, **arrays)
    records[a]["results"] = store(reference, relabelled)
    relabelled.unlink()
    forge(reference, records)
    assert any(d.startswith(records[a]["id"]) for d in failed(reference)[RESCORED])


def test_results_copied_from_the_reference_verify_but_fail_the_audit(bad, made, capsys):
    """Results that really are within the allowed error re-score as recorded: recomputation alone
    cannot tell whose they are. Re-executing the claimed implementation can."""
    records = _records(bad)
    genuine = {r["id"]: r for r in _records(made / "reference")}
    copied = _failing(records)
    for n in copied:
        r, g = records[n], genuine[records[n]["id"]]
        r["results"] = store(bad, made / "reference" / "results" / f"{g['results']}.npz")
        for key in ("verdicts", "worst_ratio", "strict_ratio"):
            r[key] = g[key]
    for path in (bad / "results").iterdir():  # the forger removes the incriminating files
        if path.stem not in {r["results"] for r in records}:
            path.unlink()
    forge(bad, records)
    assert failed(bad) == {}
    # an audit of every scored case includes the copied ones: (1 - f)^N = 0 with N = all
    scored = sum(r["results"] is not None for r in records)
    status = main(["verify", str(bad), "--rerun", str(scored), "--adapter", BAD])
    out = capsys.readouterr().out
    assert status == certify_mod.NOT_VERIFIED
    for n in copied:
        assert re.search(rf"{records[n]['id']}: the re-run differs bitwise .* largest difference [0-9.e+-]+ in forward",
                         out)


def test_a_bundle_from_one_implementation_audited_with_another(made, capsys):
    """The reference's bundle, audited by re-running the Bad adapter on a sample large enough to
    hold a Conv1D case (the only layer where they differ)."""
    records = _records(made / "reference")
    chosen = certify_mod.audit_sample(made / "reference", len(records))
    assert any(i.startswith("Conv1D-") for i in chosen)
    status = main(["verify", str(made / "reference"), "--rerun", str(len(records)), "--adapter", BAD])
    out = capsys.readouterr().out
    assert status == certify_mod.NOT_VERIFIED and "differs bitwise" in out
    assert all(line.split(":")[0].strip().startswith("Conv1D-") for line in out.splitlines() if "differs bitwise" in line)


def test_the_genuine_implementation_passes_its_audit(made, capsys):
    assert main(["verify", str(made / "reference"), "--rerun", "5", "--adapter", "reference"]) == 0
    out = capsys.readouterr().out
    assert "[ok] audit: 5 case(s) re-executed with reference" in out


def test_the_audit_sample_depends_on_the_whole_bundle(reference):
    before = certify_mod.audit_sample(reference, 10)
    assert before == certify_mod.audit_sample(reference, 10) and len(before) == 10
    (reference / "MANIFEST.sha256").write_text((reference / "MANIFEST.sha256").read_text() + "\n")
    assert certify_mod.audit_sample(reference, 10) != before


def test_a_truncated_result_file(reference):
    records = _records(reference)
    n = next(i for i, r in enumerate(records) if r["layer"] == "Conv3D" and r["kind"] == "valid")
    path = reference / "results" / f"{records[n]['results']}.npz"
    data = path.read_bytes()
    path.unlink()
    cut = reference / "cut.npz"
    cut.write_bytes(data[: len(data) // 2])
    records[n]["results"] = store(reference, cut)
    cut.unlink()
    forge(reference, records)
    details = failed(reference)[RESCORED]
    assert any(d.startswith(records[n]["id"]) and "truncated" in d for d in details)


def test_a_result_file_changed_without_renaming(reference):
    records = _records(reference)
    path = reference / "results" / f"{records[0]['results']}.npz"
    path.write_bytes(path.read_bytes()[:-10])
    assert any("does not match the hash" in d for d in failed(reference)[RESCORED])


def test_a_statement_edited_to_match(bad):
    statement = _read(bad, "STATEMENT.json")
    statement["conformant"] = True
    statement["claim"] = statement["claim"].replace("NOT CONFORMANT", "CONFORMANT")
    _write(bad, "STATEMENT.json", statement)
    report = _read(bad, "report.json")
    report["summary"]["conformant"] = True
    _write(bad, "report.json", report)
    names = sorted(p.name for p in bad.iterdir() if p.is_file() and p.name != "MANIFEST.sha256")
    (bad / "MANIFEST.sha256").write_text("".join(f"{_sha((bad / n).read_bytes())}  {n}\n" for n in names))
    details = failed(bad)["statement consistent with the records"]
    assert any("claims conformant=True, the records give False" in d for d in details)
    assert any("claim text" in d for d in details)


# ---------------------------------------------------------------- doctored corpora

@pytest.fixture
def corpus(tmp_path):
    export.export("smoke", tmp_path / "corpus", dtype="float32", layers=["Conv1D"])
    return tmp_path / "corpus"


def _arrays(directory: Path, prefix: str):
    return [p for p in directory.rglob("*.npy") if p.name.startswith(prefix)]


def test_a_corpus_with_loosened_tolerances(corpus, tmp_path, capsys):
    for path in _arrays(corpus, "allowed_"):
        np.save(path, np.full_like(np.load(path), 1e30))
    status = main(["run", "--adapter", BAD, "--cases", str(corpus), "--out", str(tmp_path / "out")])
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert status == 1 and not report["summary"]["conformant"]
    assert report["corpus"]["doctored"] and report["profile"] == "cases:smoke"
    assert report["corpus_id"] != corpus_id([c for c in case_set("smoke") if c.layer == "Conv1D"])


def test_a_corpus_with_a_changed_input(corpus, tmp_path):
    path = sorted(_arrays(corpus, "inputs"))[0]
    x = np.load(path)
    x.flat[0] += 0.5
    np.save(path, x)
    assert main(["run", "--adapter", "reference", "--cases", str(corpus), "--out", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["corpus"]["redrawn"] == [path.parent.name]  # a case directory is named by its id
    assert report["profile"] == "cases:smoke" and report["corpus_id"] == report["corpus"]["content_id"]


# ---------------------------------------------------------------- what a bundle cannot prove

def test_the_docs_say_what_a_bundle_cannot_prove_and_how_to_pick_n():
    text = " ".join(DOCS.read_text("utf-8").split())
    assert "cannot prove" in text
    assert "swapped between the audit and its use" in text
    assert "(1 - f)^N" in text
    assert "verify BUNDLE --rerun N --adapter" in text
    assert "compliance/nvidia/TEST01/README.md" in text
