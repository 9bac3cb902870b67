"""Batch size 0, which Keras accepts: every layer returns an empty output of the
right shape, an empty input gradient and zero weight gradients (a gradient is a
sum over the batch, and an empty sum is 0)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conv_conformance import reference

from .strategies import Drawn, layer_specs


def _empty(drawn: Drawn) -> Drawn:
    return Drawn(drawn.spec, (0, *drawn.input_shape[1:]))


@pytest.mark.parametrize("name", sorted(reference.LAYERS))
@settings(max_examples=15)
@given(data=st.data())
def test_batch_zero_gives_empty_output_and_zero_weight_gradients(name, data):
    drawn = _empty(data.draw(layer_specs(layers=[name])))
    rng = np.random.default_rng(0)
    w = {k: rng.standard_normal(s) for k, s in reference.weight_shapes(drawn.spec, drawn.input_shape).items()}
    x = np.zeros(drawn.input_shape)
    y = reference.forward(drawn.spec, x, w)
    out_shape = reference.output_shape(drawn.spec, drawn.input_shape)
    assert y.shape == out_shape and out_shape[0] == 0 and y.dtype == np.float64
    g = reference.vjp(drawn.spec, x, w, np.zeros(out_shape))
    assert set(g) == {"inputs", *w}
    assert g["inputs"].shape == drawn.input_shape
    for k in w:
        assert g[k].shape == w[k].shape, k
        assert not g[k].any(), f"{k}: gradient over an empty batch must be 0, got max {np.abs(g[k]).max()}"


@pytest.mark.parametrize("name", sorted(reference.LAYERS))
@settings(max_examples=5)
@given(data=st.data())
def test_batch_is_a_sum_of_samples_from_zero_up(name, data):
    """Weight gradients of a batch are the sum of per-sample ones, starting from the
    batch-0 value; outputs are the stacked per-sample outputs."""
    drawn = data.draw(layer_specs(layers=[name]))
    rng = np.random.default_rng(1)
    shape = (2, *drawn.input_shape[1:])
    w = {k: rng.standard_normal(s) for k, s in reference.weight_shapes(drawn.spec, shape).items()}
    x = rng.standard_normal(shape)
    dy = rng.standard_normal(reference.output_shape(drawn.spec, shape))
    total = reference.vjp(drawn.spec, x[:0], w, dy[:0])
    for i in range(2):
        gi = reference.vjp(drawn.spec, x[i:i + 1], w, dy[i:i + 1])
        total = {k: np.concatenate([total[k], gi[k]]) if k == "inputs" else total[k] + gi[k] for k in gi}
    full = reference.vjp(drawn.spec, x, w, dy)
    for k in full:
        np.testing.assert_allclose(total[k], full[k], rtol=1e-12, atol=1e-12, err_msg=k)
    ys = np.concatenate([reference.forward(drawn.spec, x[:0], w)] +
                        [reference.forward(drawn.spec, x[i:i + 1], w) for i in range(2)])
    np.testing.assert_allclose(ys, reference.forward(drawn.spec, x, w), rtol=1e-12, atol=1e-12)
