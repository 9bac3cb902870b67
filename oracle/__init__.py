"""The oracle: certifies the reference against TensorFlow and derives what the
harness checks against.

* :mod:`oracle.cases`: deterministic case sets (profiles smoke, standard,
  exhaustive), stable case ids, the corpus id, and materialization of a case
  into arrays, expected values and allowed errors.
* :mod:`oracle.tolerance`: allowed absolute errors from forward error bounds.
* :mod:`oracle.strategies`: Hypothesis strategies for valid and rejected
  configurations.
* :mod:`oracle.coverage`: which argument values and pairs a case set covers.
* :mod:`oracle.export`: writes a case set as JSON + ``.npy`` files.
* :mod:`oracle.hypothesis_profiles`: the ``ci``, ``dev`` and ``thorough`` profiles.
* :mod:`oracle.tf_layers`: runs a spec through tf.keras or tf-keras.

Only ``tf_layers`` imports TensorFlow, lazily; importing ``oracle`` is light.
"""
from __future__ import annotations

from conv_conformance import _compat

_compat.alias_top_level(__name__)
