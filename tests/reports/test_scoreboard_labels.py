"""Scoreboard columns of the same adapter are told apart by what differs between the runs,
including the kernels they ran (oneDNN on/off, its ISA: docs/divergences.md)."""
from __future__ import annotations

from conv_conformance.reports import environment_line
from conv_conformance.reports.scoreboard import _labels, kernels_tag


def _run(name: str, dtype: str = "float32", onednn: str | None = None, isa: str = "avx512") -> dict:
    env = {"cpu": {"vendor": "AuthenticAMD", "model": "AMD EPYC", "cores": "2", "isa": "avx2,avx512f"},
           "onednn_isa": isa}
    if onednn is not None:
        env["tensorflow"] = {"version": "2.21.0", "onednn": onednn}
    return {"adapter": {"name": name}, "dtype": dtype, "profile": "standard", "environment": env}


def test_runs_of_one_adapter_are_labelled_by_their_kernels():
    runs = [_run("keras", onednn="True"), _run("keras", onednn="False", isa="avx2"), _run("jax")]
    assert _labels(runs) == ["keras (oneDNN on, AVX-512)", "keras (oneDNN off, AVX2)", "jax"]


def test_only_differing_fields_qualify_a_label():
    runs = [_run("torch", "float32"), _run("torch", "float64")]
    assert _labels(runs) == ["torch (float32)", "torch (float64)"]


def test_identical_runs_are_numbered():
    assert _labels([_run("jax"), _run("jax")]) == ["jax #1", "jax #2"]


def test_kernels_tag_and_environment_line_read_the_recorded_state():
    run = _run("keras", onednn="False", isa="avx2")
    assert kernels_tag(run) == "oneDNN off, AVX2"
    line = environment_line(run)
    assert "AMD EPYC (AuthenticAMD), 2 cores" in line and "TensorFlow 2.21.0 oneDNN off" in line
    assert environment_line({"adapter": {"name": "x"}}) == "not recorded"


def test_cells_show_each_layers_level_and_a_coverage_row():
    from conv_conformance.reports.scoreboard import render_html, render_markdown
    from tests.reports import builders

    cases = [builders.case("Conv2D-1", builders.conv2d(), {"shape": "pass", "output": "pass"}),
             builders.case("Conv2D-2", builders.conv2d(groups=2), {"shape": "unsupported", "output": "unsupported"}),
             builders.case("Cropping1D-1", builders.cropping1d([0, 1]), {"shape": "pass", "output": "fail"})]
    runs = [builders.report(cases)]
    text = render_markdown(runs)
    assert "| Conv2D | 1 pass, 1 unsupported — conformant at the core (declined: groups) |" in text
    assert "— not conformant |" in text.split("| Cropping1D |")[1].splitlines()[0]
    assert "| **coverage** | coverage 2/3 cases fully scored (66.7%), 1 declined" in text
    page = render_html(runs)
    assert "conformant at the core (declined: groups)" in page and "coverage 2/3 cases fully scored" in page
