"""Every layer's VJP against float64 central differences, by random projection.

For random directions u (in an argument's space) and v (in the output's),
    <u, vjp(v)>  ==  (<f(a + h u), v> - <f(a - h u), v>) / (2 h)
checks the whole VJP with respect to that argument at once (JAX's
`public_test_util.check_vjp` does the same).
"""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from conv_conformance import reference
from conv_conformance.reference.activations import activate, activate_vjp

from .strategies import SMOOTH_ACTIVATIONS, arrays_for, layer_specs

H = 1e-5


def _projected_check(spec, x, w, seed):
    rng = np.random.default_rng(seed + 1)
    y = reference.forward(spec, x, w)
    v = rng.standard_normal(y.shape)
    grads = reference.vjp(spec, x, w, v)
    assert set(grads) == {"inputs", *w}, f"vjp returned {sorted(grads)}, expected inputs + {sorted(w)}"
    for name in grads:
        base = x if name == "inputs" else w[name]
        assert grads[name].shape == base.shape, f"d{name}.shape={grads[name].shape}, should be {base.shape}"
        u = rng.standard_normal(base.shape)

        def f(a, name=name):
            xx, ww = (a, w) if name == "inputs" else (x, {**w, name: a})
            return float(np.vdot(reference.forward(spec, xx, ww), v))

        numeric = (f(base + H * u) - f(base - H * u)) / (2 * H)
        analytic = float(np.vdot(u, grads[name]))
        scale = max(1.0, abs(numeric), float(np.abs(u).sum() * np.abs(grads[name]).max(initial=0)))
        assert abs(numeric - analytic) <= 1e-6 * scale, \
            f"<u, vjp(v)>[{name}] = {analytic!r}, but central differences give {numeric!r} [{spec}]"


@settings(max_examples=300)
@given(drawn=layer_specs(), seed=st.integers(0, 2**16))
def test_vjp_matches_central_differences(drawn, seed):
    x, w = arrays_for(drawn, seed)
    _projected_check(drawn.spec, x, w, seed)


@pytest.mark.parametrize("name", sorted(reference.ACTIVATIONS))
def test_activation_derivative_matches_central_differences(name):
    # Points at distance >= 0.05 from every kink of every activation (0, +-0.5, +-1, +-3, 6).
    z = np.array([[-4.1, -2.2, -1.3, -0.8, -0.31, 0.17, 0.62, 1.4, 2.5, 4.4, 6.7, 0.9]])
    g = np.random.default_rng(0).standard_normal(activate(name, z).shape)
    analytic = activate_vjp(name, z, g)
    numeric = np.zeros_like(z)
    for idx in np.ndindex(z.shape):
        e = np.zeros_like(z)
        e[idx] = 1e-6
        numeric[idx] = np.vdot(activate(name, z + e) - activate(name, z - e), g) / 2e-6
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8, err_msg=f"activation {name!r}")


def test_smooth_activation_list_is_known():
    assert set(SMOOTH_ACTIVATIONS) <= set(reference.ACTIVATIONS)
