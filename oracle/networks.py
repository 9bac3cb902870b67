"""The ``networks`` profile: seed-layer configurations of real networks, with their real input shapes.

The configurations live in ``oracle/data/networks.json``, built once by
``scripts/networks_corpus.py`` from ``keras.applications`` models (``weights=None``)
and from architectures written out from their papers; this module reads that file
and needs neither TensorFlow nor a particular Keras version. Each case's id names
the first model and layer the configuration occurs in
(``Conv2D-ResNet50.conv1_conv-<digest>``); its ``meta`` lists every occurrence and,
for a layer shrunk along its spatial axes to fit two cores, the original input shape.
"""
from __future__ import annotations

import dataclasses
import functools
import json
import re
from importlib import resources

from .case import make_case

__all__ = ["DATA_FILE", "corpus", "cases"]

DATA_FILE = "networks.json"


@functools.lru_cache(maxsize=None)
def corpus() -> dict:
    """The parsed data file: format_version, keras_version, models, papers, layers."""
    text = resources.files("conv_conformance.oracle").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


def _slug(occurrence: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", occurrence.replace("/", "."))


@functools.lru_cache(maxsize=None)
def cases() -> tuple:
    """Every configuration of the data file as a valid case with gradients, in file order."""
    doc = corpus()
    out = []
    for record in doc["layers"]:
        base = make_case(record["spec"], record["input_shape"], "valid")
        meta = {"source": record["source"], "occurrences": list(record["occurrences"]),
                "keras_version": doc["keras_version"]}
        if "shrunk_from" in record:
            meta["shrunk_from"] = list(record["shrunk_from"])
        digest = base.id.rsplit("-", 1)[1]
        out.append(dataclasses.replace(base, id=f"{base.layer}-{_slug(record['occurrences'][0])}-{digest}",
                                       meta=meta))
    return tuple(out)
