"""What a careful tamperer does to a certification bundle after editing it, written from the
documented bundle format (docs/certification.md), not with the code under test: recompute the
hash chain from suite.json's genesis fields, the chain head in suite.json and STATEMENT.json,
and the manifest. tests/conformance/test_certify.py and test_forgery.py tamper with it."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

from conv_conformance.conformance import certify as certify_mod


def canonical(obj) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read(bundle: Path, name: str):
    return json.loads((bundle / name).read_text())


def write(bundle: Path, name: str, obj) -> None:
    (bundle / name).write_text(json.dumps(obj, indent=1, sort_keys=True) + "\n")


def records(bundle: Path) -> list[dict]:
    return [json.loads(line) for line in (bundle / "cases.jsonl").read_text().splitlines()]


def rechain(bundle: Path, cases: list[dict]) -> dict:
    """Rewrite cases.jsonl from ``cases`` (each replaced in the list by its resealed copy) with
    the chain recomputed, and suite.json's chain head; the new suite.json."""
    suite = read(bundle, "suite.json")
    prev = sha(canonical({k: suite[k] for k in ("suite_version", "suite_digest", "corpus_id",
                                                "required_hash", "profile", "dtype")}))
    for n, r in enumerate(cases):
        r = r.copy()
        r.pop("hash", None)
        r.update(seq=n, prev=prev)
        cases[n] = {**r, "hash": sha(canonical(r))}
        prev = cases[n]["hash"]
    (bundle / "cases.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in cases))
    suite["chain_head"] = prev
    write(bundle, "suite.json", suite)
    return suite


def remanifest(bundle: Path) -> None:
    names = sorted(p.name for p in bundle.iterdir() if p.is_file() and p.name != "MANIFEST.sha256")
    (bundle / "MANIFEST.sha256").write_text("".join(f"{sha((bundle / n).read_bytes())}  {n}\n" for n in names))


def reseal(bundle: Path, cases: list[dict] | None = None) -> None:
    """Recompute the chain (given ``cases``), the chain head in suite.json and STATEMENT.json,
    and the manifest."""
    if cases is not None:
        suite = rechain(bundle, cases)
        statement = read(bundle, "STATEMENT.json")
        statement["suite"] = suite
        write(bundle, "STATEMENT.json", statement)
    remanifest(bundle)


def failed(bundle: Path) -> dict[str, list[str]]:
    """The checks of ``verify`` that fail, with their details."""
    return {c.name: c.details for c in certify_mod.verify(bundle) if not c.ok}
