"""certify / verify (conformance.certify): a real bundle verifies, and every kind of tampering
is caught by the check that names it. The resealing helpers (tests/conformance/bundle_tampering.py)
are written from the documented bundle format (docs/certification.md), not with the code under
test, so a tamperer who recomputes every hash is still caught by the semantic checks."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conv_conformance.conformance import certify as certify_mod
from conv_conformance.cli import main
from conv_conformance.oracle.cases import case_set
from tests.conformance.bundle_tampering import failed, read as _read, records as _records, \
    reseal, sha as _sha, write as _write

DECLARED = "tests.conformance.fixtures.declared"


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle") / "reference"
    assert main(["certify", "--adapter", "reference", "--profile", "smoke", "--out", str(out)]) == 0
    return out


@pytest.fixture
def bundle(good, tmp_path) -> Path:
    copy = tmp_path / "b"
    shutil.copytree(good, copy)
    return copy


def test_a_real_bundle_holds_the_listed_files_and_verifies(good, capsys):
    assert sorted(p.name for p in good.iterdir()) == sorted(certify_mod.BUNDLE_FILES + ("results",))
    # every case was scored, so every record names its results file by the file's sha256
    stored = {p.name: _sha(p.read_bytes()) for p in (good / "results").iterdir()}
    assert sorted(f"{r['results']}.npz" for r in _records(good)) == sorted(stored)
    assert all(name == f"{digest}.npz" for name, digest in stored.items())
    assert failed(good) == {}
    assert main(["verify", str(good)]) == 0
    out = capsys.readouterr().out
    assert out.rstrip().endswith("VERIFIED: the bundle is authentic and records CONFORMANT")
    cases = case_set("smoke")
    assert [r["id"] for r in _records(good)] == [c.id for c in cases]
    suite = _read(good, "suite.json")
    assert suite["required_cases"] == len(cases) and suite["chain_head"] == _records(good)[-1]["hash"]


def test_flipped_verdict_is_caught(bundle):
    records = _records(bundle)
    records[0]["verdicts"]["output"] = "fail"
    report = _read(bundle, "report.json")
    report["cases"][0]["verdicts"]["output"] = "fail"
    _write(bundle, "report.json", report)
    reseal(bundle, records)
    problems = failed(bundle)
    assert "verdicts consistent with their ratios" in problems
    assert "statement consistent with the records" in problems


def test_removed_case_is_caught(bundle):
    records = _records(bundle)
    gone = records.pop(3)
    reseal(bundle, records)
    assert any(gone["id"] in d and "missing" in d for d in failed(bundle)["every required case exactly once"])


def test_duplicated_case_is_caught(bundle):
    records = _records(bundle)
    records.insert(1, dict(records[0]))
    reseal(bundle, records)
    assert any("appears 2 times" in d for d in failed(bundle)["every required case exactly once"])


def test_edited_ratio_is_caught(bundle):
    records = _records(bundle)
    n = next(i for i, r in enumerate(records) if r["verdicts"].get("output") == "pass")
    records[n]["worst_ratio"]["output"] = 3.5
    reseal(bundle, records)
    assert any("pass with ratio 3.5" in d for d in failed(bundle)["verdicts consistent with their ratios"])


def test_gradient_fail_with_a_ratio_within_bound_is_caught(bundle):
    """A failing gradient whose recorded ratio is <= 1 contradicts itself (a missing or ill-shaped
    gradient records an infinite ratio), as a failing output does."""
    records = _records(bundle)
    n = next(i for i, r in enumerate(records) if r["verdicts"].get("gradient") == "pass")
    records[n]["verdicts"]["gradient"] = "fail"
    records[n]["worst_ratio"]["gradient"] = 0.5
    reseal(bundle, records)
    assert any(records[n]["id"] in d and "fail with ratio 0.5" in d
               for d in failed(bundle)["verdicts consistent with their ratios"])


def test_extra_file_is_caught(bundle):
    (bundle / "notes.txt").write_text("trust me")
    reseal(bundle)
    assert failed(bundle)["only the listed files"] == ["unknown file notes.txt"]


def test_stale_corpus_is_caught(bundle):
    suite = _read(bundle, "suite.json")
    suite["corpus_id"] = "0123456789abcdef"
    _write(bundle, "suite.json", suite)
    report = _read(bundle, "report.json")
    report["corpus_id"] = suite["corpus_id"]
    _write(bundle, "report.json", report)
    reseal(bundle, _records(bundle))
    assert any("does not re-derive" in d for d in failed(bundle)["corpus and required list re-derive"])


def test_an_edit_without_resealing_breaks_the_manifest(bundle):
    report = (bundle / "report.json").read_text().replace('"interrupted": false', '"interrupted": true')
    (bundle / "report.json").write_text(report)
    assert failed(bundle)["manifest"] == ["report.json does not match its manifest hash"]


def test_a_record_edited_without_rechaining_breaks_the_chain(bundle):
    lines = (bundle / "cases.jsonl").read_text().splitlines()
    record = json.loads(lines[2])
    record["worst_ratio"] = {"output": 0.5}
    lines[2] = json.dumps(record, sort_keys=True)
    (bundle / "cases.jsonl").write_text("\n".join(lines) + "\n")
    reseal(bundle)
    assert "hash chain" in failed(bundle)


def test_a_declined_mandatory_case_is_caught(bundle):
    records = _records(bundle)
    n = next(i for i, r in enumerate(records) if r["layer"] == "Conv2D" and "gradient" in r["verdicts"])
    records[n]["verdicts"] = {k: "unsupported" for k in records[n]["verdicts"]}
    records[n]["worst_ratio"], records[n]["strict_ratio"] = {}, {}
    reseal(bundle, records)
    assert any("declaration makes it mandatory" in d for d in failed(bundle)["no mandatory case declined"])


def test_unknown_and_withdrawn_versions_are_refused(bundle, monkeypatch):
    monkeypatch.setattr(certify_mod, "WITHDRAWN_VERSIONS", {"0.1.0": "faulty Conv3D cases, https://example.org/1"})
    assert any("withdrawn" in d for d in failed(bundle)["suite version known, not withdrawn, digest matches"])
    monkeypatch.setattr(certify_mod, "WITHDRAWN_VERSIONS", {})
    monkeypatch.setattr(certify_mod, "KNOWN_VERSIONS", ("0.0.9",))
    assert any("not a known release" in d for d in failed(bundle)["suite version known, not withdrawn, digest matches"])


def test_a_different_suite_digest_is_caught(bundle):
    suite = _read(bundle, "suite.json")
    suite["suite_digest"] = "0" * 64
    _write(bundle, "suite.json", suite)
    reseal(bundle, _records(bundle))
    assert "suite version known, not withdrawn, digest matches" in failed(bundle)


def test_an_edited_claim_text_is_caught(bundle, capsys):
    statement = _read(bundle, "STATEMENT.json")
    statement["claim"] = statement["claim"].replace("reference", "a famous library", 1)
    _write(bundle, "STATEMENT.json", statement)
    reseal(bundle)
    assert any("claim text" in d for d in failed(bundle)["statement consistent with the records"])
    assert main(["verify", str(bundle)]) == 3


def test_an_inflated_claim_is_caught(bundle):
    statement = _read(bundle, "STATEMENT.json")
    statement["levels"]["Conv2D"]["level"] = "partial"
    _write(bundle, "STATEMENT.json", statement)
    reseal(bundle)
    assert "statement consistent with the records" in failed(bundle)


@pytest.mark.parametrize("edit", [
    lambda options: options | {"skip_checks": True},         # an option certify does not have
    lambda options: options | {"adapter": "someone-else"},   # not the adapter the report names
    lambda options: options | {"tolerance": "probabilistic"},  # not the mode the report records
])
def test_foreign_certify_options_are_caught(bundle, edit):
    command = _read(bundle, "command.json")
    command["options"] = edit(command["options"])
    _write(bundle, "command.json", command)
    reseal(bundle)
    assert "certify options" in failed(bundle)


def test_the_options_are_stored_as_data(bundle):
    options = _read(bundle, "command.json")["options"]
    assert options["profile"] == "smoke" and options["tolerance"] == "rigorous"
    assert _read(bundle, "report.json")["tolerance"] == "rigorous"


def test_a_waived_verdict_without_a_waiver_is_caught(bundle):
    records = _records(bundle)
    records[0]["verdicts"]["shape"] = "waived"
    report = _read(bundle, "report.json")
    report["cases"][0]["verdicts"]["shape"] = "waived"
    _write(bundle, "report.json", report)
    reseal(bundle, records)
    assert any("without a waiver" in d for d in failed(bundle)["waivers valid"])


def test_verify_of_a_missing_directory_is_a_usage_error(tmp_path, capsys):
    assert main(["verify", str(tmp_path / "nothing")]) == 2
    assert "bundle directory" in capsys.readouterr().err


def test_certify_needs_a_declaration_and_an_empty_directory(tmp_path, capsys):
    assert main(["certify", "--adapter", "tests.conformance.fixtures.broken:ForwardOnly", "--profile", "smoke",
                 "--out", str(tmp_path / "x")]) == 2
    assert "has no declaration" in capsys.readouterr().err
    assert not any((tmp_path / "x").iterdir())
    (tmp_path / "y").mkdir()
    (tmp_path / "y" / "old.txt").write_text("")
    assert main(["certify", "--adapter", "reference", "--profile", "smoke", "--out", str(tmp_path / "y")]) == 2


WAIVER = """
[[waiver]]
id = "CC-1"
cases = ["Conv1D-*"]
categories = ["output", "gradient"]
reason = "test: a documented platform limit"
link = "https://example.org/cc-1"
expires = "0.2.0"
[waiver.match]
adapter = "bad"
dtype = "float32"
"""


def test_a_failing_adapter_does_not_verify_and_a_waiver_makes_it(tmp_path, capsys):
    plain = tmp_path / "plain"
    assert main(["certify", "--adapter", f"{DECLARED}:Bad", "--profile", "smoke", "--out", str(plain)]) == 1
    capsys.readouterr()
    # an authentic record of NOT CONFORMANT verifies as such, and says so (exit 1, not 3)
    assert failed(plain) == {}
    assert main(["verify", str(plain)]) == certify_mod.VERIFIED_NOT_CONFORMANT == 1
    assert capsys.readouterr().out.rstrip().endswith("VERIFIED: the bundle is authentic and records NOT CONFORMANT")
    # the same bundle with its failing verdicts rewritten to pass, ratios and statement resealed, does not
    records = _records(plain)
    report = _read(plain, "report.json")
    for record, case in zip(records, report["cases"]):
        for cat, verdict in record["verdicts"].items():
            if verdict == "fail":
                record["verdicts"][cat] = case["verdicts"][cat] = "pass"
                record["worst_ratio"][cat] = case["worst_ratio"][cat] = 0.5
                record["strict_ratio"] = case["strict_ratio"] = {}
    report["summary"]["conformant"] = True
    _write(plain, "report.json", report)
    statement = _read(plain, "STATEMENT.json")
    statement["conformant"] = True
    statement["claim"] = statement["claim"].replace("NOT CONFORMANT", "CONFORMANT")
    _write(plain, "STATEMENT.json", statement)
    reseal(plain, records)
    assert main(["verify", str(plain)]) == certify_mod.NOT_VERIFIED == 3
    out = capsys.readouterr().out
    assert "NOT VERIFIED" in out
    # the stored results re-score as fail, whatever the records say, and each such case is named
    flipped = [c["id"] for c in _read(plain, "report.json")["cases"] if c["layer"] == "Conv1D" and c["kind"] == "valid"]
    assert all(f"{i} output: the bundle records pass, its results score fail" in out for i in flipped[:3])

    waivers = tmp_path / "w.toml"
    waivers.write_text(WAIVER)
    waived = tmp_path / "waived"
    assert main(["certify", "--adapter", f"{DECLARED}:Bad", "--profile", "smoke", "--out", str(waived),
                 "--waivers", str(waivers)]) == 0
    assert failed(waived) == {}
    records = _records(waived)
    conv1d = [r for r in records if r["layer"] == "Conv1D" and r["verdicts"].get("output") == "waived"]
    assert conv1d and all(r["waiver"]["id"] == "CC-1" and r["waiver"]["waived"]["output"] == "fail" for r in conv1d)
    assert _read(waived, "STATEMENT.json")["waivers_applied"] == ["CC-1"]
    # a waiver the bundle's adapter does not match is caught
    data = _read(waived, "waivers.json")
    data["waiver"][0]["match"]["adapter"] = "someone-else"
    _write(waived, "waivers.json", data)
    reseal(waived)
    assert any("does not cover" in d for d in failed(waived)["waivers valid"])


def test_certify_from_a_kept_run_makes_the_same_claim_without_running(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["run", "--adapter", f"{DECLARED}:Bad", "--profile", "smoke", "--keep-results",
                 "--out", str(run_dir)]) == 1
    assert len(list((run_dir / "results").iterdir())) == len(case_set("smoke"))
    capsys.readouterr()
    bundle = tmp_path / "bundle"
    assert main(["certify", "--from-run", str(run_dir), "--out", str(bundle)]) == 1
    claim = capsys.readouterr().out.splitlines()[0]
    assert "is NOT CONFORMANT to conv-conformance" in claim
    assert failed(bundle) == {}
    assert _read(bundle, "command.json")["options"]["from_run"] == str(run_dir)
    assert main(["verify", str(bundle)]) == certify_mod.VERIFIED_NOT_CONFORMANT


def test_certify_from_a_run_without_results_is_a_usage_error(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert main(["run", "--adapter", "reference", "--profile", "smoke", "--layers", "Cropping1D",
                 "--out", str(run_dir)]) == 0
    capsys.readouterr()
    assert main(["certify", "--from-run", str(run_dir), "--out", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert "--layers" in err and "--keep-results" in err
    assert main(["certify", "--out", str(tmp_path / "c")]) == 2
    assert "--adapter, --profile are required" in capsys.readouterr().err


def test_rerun_and_adapter_go_together(good, capsys):
    assert main(["verify", str(good), "--rerun", "3"]) == 2
    assert "go together" in capsys.readouterr().err


# ---------------------------------------------------------------- stored results replay as scored

from conv_conformance.conformance import results_store  # noqa: E402
from conv_conformance.conformance.exec_protocol import ProtocolError  # noqa: E402
from conv_conformance.conformance.scoring import ScoringOptions, evaluate  # noqa: E402
from tests.conformance.fixtures import broken, declared, faults  # noqa: E402

class _VerySloppy(declared.Sloppy):
    fraction = 1.5  # outside the allowed error: fail, with its ratio


class _BreaksProtocol(declared.Bad):
    """Answers every forward by breaking the exec protocol: scoring treats that apart from an
    ordinary exception (an invalid case it "rejects" this way is an error, not a pass)."""

    def forward(self, spec, inputs, weights):
        raise ProtocolError("3", "the response is not JSON")


_REPLAYED = [(broken.WrongValues, 0), (broken.WrongShape, 0), (broken.Raises, 0), (broken.Declines, 0),
             (broken.ForwardOnly, 0), (broken.Mutates, 0), (broken.Flaky, 0), (broken.Jittery, 3),
             (broken.AcceptsInvalid, 0), (faults.MutatesInputs, 0), (faults.MutatesOutputGrad, 0),
             (declared.Sloppy, 0), (_VerySloppy, 0), (declared.ClaimsButDeclines, 0), (declared.NoGradients, 0),
             (_BreaksProtocol, 0)]


@pytest.mark.parametrize("adapter_class, repeat", _REPLAYED, ids=[c.__name__ for c, _ in _REPLAYED])
def test_a_replay_of_the_stored_results_scores_as_the_adapter_did(adapter_class, repeat, tmp_path):
    """Whatever an adapter did (wrong values or shapes, raising, declining, writing into its
    arguments, changing between calls), scoring its stored results gives the same verdicts and
    ratios as scoring the adapter: what verify relies on."""
    layers = {"Conv1D", "Conv2D", "Cropping2D", "UpSampling2D", broken.TARGET, faults.TARGET}
    cases = [c for c in case_set("smoke") if c.layer in layers]
    cases = [c for c in cases if c.kind == "invalid"][:2] + [c for c in cases if c.kind == "valid"][::4]
    adapter = adapter_class()
    differing, seen = [], set()
    for case in cases:
        direct = evaluate(adapter, case, ScoringOptions("float32", repeat=repeat, results=str(tmp_path)))
        head, arrays = results_store.read(results_store.path_for(tmp_path, case.id))
        replay = results_store.Replay(head, arrays, getattr(adapter, "declaration", None))
        again = evaluate(replay, case, ScoringOptions("float32", repeat=repeat))
        assert replay.exhausted
        mine = {k: v for k, v in again.verdicts.items() if k != "initializer"}
        theirs = {k: v for k, v in direct.verdicts.items() if k != "initializer"}
        seen |= set(theirs.values())
        if (mine, again.worst_ratio.get("output"), again.strict_ratio) != (
                theirs, direct.worst_ratio.get("output"), direct.strict_ratio):
            differing.append((case.id, theirs, mine))
    assert not differing
    assert len(cases) >= 5
    assert seen - {"pass"} or adapter_class is declared.Sloppy  # a fixture that does something besides passing
